"""Run folders: ``fit`` (train, evaluate, interpret, write), checks before writing, and using a
finished run (``load_run``, ``evaluate_run``, ``predict_run``).

- :mod:`~i2moe.runs.fitting`: ``fit`` (every seed) and ``fit_one`` (one seed);
- :mod:`~i2moe.runs.grid`: ``fit_grid``, configurations x seeds, reused and resumed;
- :mod:`~i2moe.runs.checks`: everything checked before a run folder is touched;
- :mod:`~i2moe.runs.files`: the run folder's files, written atomically;
- :mod:`~i2moe.runs.loading`: a finished run read back, and new data read as it read its own;
- :mod:`~i2moe.runs.evaluation`: its metrics, with chosen modalities missing;
- :mod:`~i2moe.runs.prediction`: its predictions for every row of a file;
- :mod:`~i2moe.runs.explain`: a run's interpretation folder;
- :mod:`~i2moe.runs.robustness`: the run with each subset of its modalities present;
- :mod:`~i2moe.runs.model_card`: ``MODEL_CARD.md``, made from the folder's files.
"""

import importlib
from typing import Any

# Public names and their modules, imported on first use: importing one module of this layer
# (the command line's explain, say) does not load Lightning and every run machinery.
_EXPORTS = {
    "RunError": "files",
    "evaluate_run": "evaluation",
    "fit": "fitting",
    "fit_grid": "grid",
    "fit_one": "fitting",
    "load_checkpoint": "loading",
    "model_card": "model_card",
    "load_run": "loading",
    "predict_run": "prediction",
    "predict_split": "prediction",
    "robustness": "robustness",
    "robustness_run": "robustness",
    "run_data": "loading",
    "write_interpretation": "explain",
    "write_model_card": "model_card",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'i2moe.runs' has no attribute {name!r}")
    return getattr(importlib.import_module(f"i2moe.runs.{_EXPORTS[name]}"), name)
