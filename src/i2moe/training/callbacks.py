"""Lightning callbacks, checkpoint I/O and logger that make a killed run resumable exactly."""

from __future__ import annotations

import csv
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


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


def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = state
    keys = torch.from_numpy(keys.astype(np.int64))
    return {"kind": kind, "keys": keys, "pos": position, "gauss": (has_gauss, cached)}


def _numpy_state_from_plain(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["kind"], keys, state["pos"], *state["gauss"])


class RandomStateCheckpoint(L.Callback):
    """Saves and restores the random generators with each checkpoint (exact resume on CPU;
    the CUDA generators too, where there are GPUs)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        state = {
            "torch": torch.get_rng_state(),
            # Kept as plain tensors and numbers so the file loads with weights_only=True.
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["i2moe_random_state"] = state

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("i2moe_random_state")
        if state is not None:
            torch.set_rng_state(state["torch"])
            np.random.set_state(_numpy_state_from_plain(state["numpy"]))
            random.setstate(state["python"])
            cuda = state.get("cuda")
            # Only onto the same number of GPUs: elsewhere the states would not match devices.
            if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
