"""Run folders and the files in them, written so that a killed run never leaves half a file.

A run folder holds ``run.json`` (written first: it marks a run), ``config.yaml``,
``checkpoints/`` (``best.ckpt``, ``last.ckpt``), ``logs/`` (CSV and TensorBoard),
``predictions.csv``, ``interpretation/`` and ``metrics.json`` (written last: it marks a finished
run). Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from i2moe.config import RunConfig, config_to_dict


class RunError(RuntimeError):
    """A run folder cannot be used as asked (exists already, missing, or damaged)."""


# A run's data description, written first by every run: a folder holding one (itself, in a
# seed folder ``seed_<s>/``, or in a comparison's ``<row>/seed_<s>/``) holds runs.
RUN_MARKERS: tuple[str, ...] = ("run.json", "seed_*/run.json", "*/seed_*/run.json")


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
