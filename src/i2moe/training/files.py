"""Run folders and the files in them, written so that a killed run never leaves half a file.

A run folder holds ``run.json`` (written first: it marks a run), ``config.yaml``,
``checkpoints/`` (``best.ckpt``, ``last.ckpt``), ``logs/`` (CSV and TensorBoard),
``predictions.csv``, ``interpretation/`` and ``metrics.json`` (written last: it marks a finished
run). Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from i2moe.config import RunConfig, config_to_dict


class RunError(RuntimeError):
    """A run folder cannot be used as asked (exists already, missing, or damaged)."""


# A run's data description, written first by every run: a folder holding one (itself, in a
# seed folder ``seed_<s>/``, or in a comparison's ``<row>/seed_<s>/``) holds runs.
RUN_MARKERS: tuple[str, ...] = ("run.json", "seed_*/run.json", "*/seed_*/run.json")


def is_primary_process() -> bool:
    """False in every process of a distributed run but global rank 0.

    Lightning's DDP launcher starts the command again in one process per further device (with
    ``LOCAL_RANK`` set; ``NODE_RANK`` on further nodes), and torchrun or SLURM start every rank
    with ``RANK`` or ``SLURM_PROCID``. Those processes train with the primary one but leave the
    output folder to it: they neither check, delete nor write it.
    """
    for name in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if name in os.environ:
            return os.environ[name].strip() in ("", "0")
    ranks = (os.environ.get(name, "0").strip() for name in ("LOCAL_RANK", "NODE_RANK"))
    return all(rank in ("", "0") for rank in ranks)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place, so a
    killed process leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def config_text(config: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it into place, so a killed run
    never leaves a half-written checkpoint for ``--resume`` to load."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


class FlushLogsOnCheckpoint(Callback):
    """Writes the buffered log rows with every checkpoint, so a killed run's CSV log holds every
    epoch its last checkpoint has seen (Lightning otherwise flushes every 100 steps)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        for logger in trainer.loggers:
            logger.save()


class _ContinuedExperimentWriter(ExperimentWriter):
    """Keeps the rows of the epochs a resumed checkpoint has seen instead of deleting the file
    (Lightning's writer empties an existing ``metrics.csv``)."""

    def __init__(self, log_dir: str, first_new_epoch: int) -> None:
        self.first_new_epoch = first_new_epoch
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            keys = list(reader.fieldnames or [])
            # Rows of later epochs belong to the killed attempt; the resumed run logs them again.
            rows = [row for row in reader if _row_epoch(row) < self.first_new_epoch]
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)


def _row_epoch(row: Mapping[str, str]) -> float:
    try:
        return float(row.get("epoch") or 0)
    except ValueError:
        return 0.0


class RunCSVLogger(CSVLogger):
    """Lightning's CSV logger that, when resuming, continues ``metrics.csv`` instead of
    replacing it.

    Args:
        save_dir: the run folder.
        resume_epoch: the epoch the resumed checkpoint finished (None for a new run).
    """

    def __init__(self, save_dir: Path, resume_epoch: int | None = None) -> None:
        super().__init__(save_dir, name="logs", version="")
        self.resume_epoch = resume_epoch

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.resume_epoch is not None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedExperimentWriter(self.log_dir, self.resume_epoch + 1)
        return super().experiment


def _holds_run(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in RUN_MARKERS)


def check_output(output: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check that ``output`` may be written as asked, writing nothing.

    Returns:
        Whether the folder already holds a run (to be resumed or replaced).

    Raises:
        RunError: ``resume`` with ``overwrite``; a file where the folder should be; a folder
            that is not empty, without ``resume`` or ``overwrite``; or, with one of them, a
            folder holding files that are not a run (never deleted or written into).
    """
    if resume and overwrite:
        raise RunError(
            "--resume and --overwrite exclude each other; expected --resume to continue the "
            "run or --overwrite to replace it"
        )
    if output.exists() and not output.is_dir():
        raise RunError(f"{output}: is a file; expected a folder for the run (new or empty)")
    contents = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if not contents:
        return False
    if not (resume or overwrite):
        raise RunError(
            f"{output}: the output folder is not empty (it may hold a run); "
            "pass --resume to continue it or --overwrite to replace it"
        )
    if not _holds_run(output):
        shown = ", ".join(contents[:5]) + (", ..." if len(contents) > 5 else "")
        flag = "--resume only continues" if resume else "--overwrite only replaces"
        raise RunError(
            f"{output}: holds files that are not an i2moe run ({shown}); {flag} a folder "
            "written by 'i2moe fit'; expected a new or empty folder"
        )
    return True


def prepare_output(output: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a folder holding a run unless asked to resume or overwrite; with
    ``overwrite`` delete the old run. Callers check everything else first (see :func:`fit`)."""
    holds_run = check_output(output, resume=resume, overwrite=overwrite)
    if holds_run and overwrite:
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


def read_json(path: Path, expected: str) -> Any:
    if not path.is_file():
        raise RunError(f"{path}: missing; expected {expected} (written by 'i2moe fit')")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path}: cannot be read ({error}); expected {expected}") from None


def read_checkpoint(path: str | Path, purpose: str = "load") -> dict[str, Any]:
    """Read an i2moe checkpoint file without running any code stored in it.

    Args:
        path: the ``.ckpt`` file.
        purpose: what it is read for, for messages (``"load"``, ``"resume from"``).

    Raises:
        RunError: the file is missing, damaged (e.g. truncated), not a torch checkpoint, or a
            checkpoint of something else.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: checkpoint not found; expected a file written by 'i2moe fit'")
    try:
        # weights_only: a foreign file may hold a pickle that runs code; ours hold only
        # tensors, numbers, strings and containers.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, not a torch file, unsafe pickle, ...
        raise RunError(
            f"{path}: cannot {purpose} this checkpoint ({type(error).__name__}); expected a "
            "complete file written by 'i2moe fit' (it may be truncated or come from elsewhere)"
        ) from None
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    required = ("modalities", "task", "num_outputs", "model")
    if not isinstance(hparams, dict) or not set(required) <= set(hparams):
        raise RunError(
            f"{path}: not an i2moe checkpoint; expected a file written by 'i2moe fit' (field "
            f"'hyper_parameters' with {', '.join(required)}, and 'state_dict')"
        )
    if not isinstance(checkpoint.get("state_dict"), dict):
        raise RunError(f"{path}: has no 'state_dict'; expected a file written by 'i2moe fit'")
    return checkpoint
