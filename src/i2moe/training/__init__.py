"""Training with PyTorch Lightning: the module, the one training path and its callbacks.

- :mod:`~i2moe.training.module`: ``FusionLightningModule``, any model with a loss object;
- :mod:`~i2moe.training.loop`: ``train_module``, loaders and the Trainer;
- :mod:`~i2moe.training.callbacks`: atomic checkpoints, random states, continued CSV logs;
- :mod:`~i2moe.training.distributed`: which process of a distributed run writes files.

Run folders (``fit``, ``load_run``, ``evaluate_run``, ``predict_run``) are :mod:`i2moe.runs`;
their old names here still resolve, with a DeprecationWarning.
"""

import importlib
import warnings
from typing import Any

from i2moe.training.distributed import is_primary_process
from i2moe.training.loop import TrainingResult, train_module
from i2moe.training.module import FusionLightningModule

# Names that moved to the run-folder layer, resolved on use only (this layer imports nothing
# above it): old name -> (module, new name).
_MOVED = {
    "FusionTask": ("i2moe.training.module", "FusionLightningModule"),
    "RunError": ("i2moe.runs.files", "RunError"),
    "evaluate_run": ("i2moe.runs.evaluation", "evaluate_run"),
    "fit": ("i2moe.runs.fitting", "fit"),
    "fit_grid": ("i2moe.runs.grid", "fit_grid"),
    "fit_one": ("i2moe.runs.fitting", "fit_one"),
    "load_checkpoint": ("i2moe.runs.loading", "load_checkpoint"),
    "load_run": ("i2moe.runs.loading", "load_run"),
    "predict_run": ("i2moe.runs.prediction", "predict_run"),
    "predict_split": ("i2moe.runs.prediction", "predict_split"),
    "run_data": ("i2moe.runs.loading", "run_data"),
}

__all__ = ["FusionLightningModule", "TrainingResult", "is_primary_process", "train_module"]


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'i2moe.training' has no attribute {name!r}")
    module, new_name = _MOVED[name]
    warnings.warn(
        f"i2moe.training.{name} is deprecated; use {module}.{new_name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), new_name)
