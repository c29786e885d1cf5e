"""Training with PyTorch Lightning: runs into folders, checks before writing, using a finished run.

- :mod:`~i2moe.training.run`: ``fit`` (every seed) and ``fit_one`` (one seed);
- :mod:`~i2moe.training.grid`: ``fit_grid``, configurations x seeds, reused and resumed;
- :mod:`~i2moe.training.checks`: everything checked before a run folder is touched;
- :mod:`~i2moe.training.files`: the run folder's files, written atomically;
- :mod:`~i2moe.training.inference`: ``load_run``, ``evaluate_run``, ``predict_run``;
- :mod:`~i2moe.training.module`: ``FusionTask``, the LightningModule around any model;
- :mod:`~i2moe.training.metrics`: torchmetrics per task.
"""

import importlib
from typing import Any

# Public names and their modules, imported on first use: ``i2moe.training.metrics`` (used by
# the interpretation) must not pull in Lightning and the run machinery.
_EXPORTS = {
    "FusionTask": "module",
    "RunError": "files",
    "evaluate_run": "inference",
    "fit": "run",
    "fit_grid": "grid",
    "fit_one": "run",
    "load_checkpoint": "inference",
    "load_run": "inference",
    "predict_run": "inference",
    "predict_split": "inference",
    "run_data": "inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'i2moe.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"i2moe.training.{_EXPORTS[name]}"), name)
