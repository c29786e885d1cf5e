"""Training with PyTorch Lightning: runs into folders, checks before writing, using a finished run.

- :mod:`~i2moe.training.run`: ``fit`` (every seed) and ``fit_one`` (one seed);
- :mod:`~i2moe.training.grid`: ``fit_grid``, configurations x seeds, reused and resumed;
- :mod:`~i2moe.training.checks`: everything checked before a run folder is touched;
- :mod:`~i2moe.training.files`: the run folder's files, written atomically;
- :mod:`~i2moe.training.inference`: ``load_run``, ``evaluate_run``, ``predict_run``;
- :mod:`~i2moe.training.module`: ``FusionTask``, the LightningModule around any model;
- :mod:`~i2moe.training.metrics`: torchmetrics per task.
"""

from i2moe.training.files import RunError
from i2moe.training.inference import (
    evaluate_run,
    load_checkpoint,
    load_run,
    predict_run,
    predict_split,
    run_data,
)
from i2moe.training.module import FusionTask
from i2moe.training.run import fit, fit_one

__all__ = [
    "FusionTask",
    "RunError",
    "evaluate_run",
    "fit",
    "fit_one",
    "load_checkpoint",
    "load_run",
    "predict_run",
    "predict_split",
    "run_data",
]
