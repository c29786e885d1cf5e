"""A run's metrics on a split of its data or another file, with chosen modalities missing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from i2moe.runs.loading import load_run, run_data
from i2moe.runs.prediction import predict_split

log = logging.getLogger(__name__)

PREDICTION_SUFFIXES = (".csv", ".parquet")
# Rows of a prediction file predicted, attributed and written at a time, and rows per model call.
PREDICTION_BATCH = 4096
MODEL_BATCH = 256


class WithoutModalities(Dataset):
    """A split whose items have some modalities marked missing (``observed`` False) for every
    sample: the model's missing-modality path, no retraining.

    Args:
        dataset: a split of i2moe items.
        missing: [M] bool, True for the modalities to mark missing.
    """

    def __init__(self, dataset: Dataset, missing: torch.Tensor) -> None:
        self.dataset = dataset
        self.missing = missing.bool()
        self.sample_ids = getattr(dataset, "sample_ids", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        observed = torch.as_tensor(item["observed"], dtype=torch.bool)
        return {**item, "observed": observed & ~self.missing}


def missing_mask(modality_names: Sequence[str], drop: Sequence[str]) -> torch.Tensor:
    """[M] bool, True for the modalities named in ``drop``.

    Raises:
        ValueError: ``drop`` names a modality the run does not have, or every modality.
    """
    valid = ", ".join(modality_names)
    unknown = [name for name in drop if name not in modality_names]
    if unknown:
        raise ValueError(
            f"cannot drop {', '.join(map(repr, unknown))}: not a modality of the run; "
            f"expected names from: {valid}"
        )
    missing = torch.tensor([name in drop for name in modality_names], dtype=torch.bool)
    if bool(missing.all()):
        raise ValueError(
            f"cannot drop every modality ({valid}): nothing would be left to predict from; "
            f"expected at most {len(modality_names) - 1} of: {valid}"
        )
    return missing


def evaluate_run(
    run: str | Path, *, data: str | None = None, split: str = "test", drop: Sequence[str] = ()
) -> dict[str, float]:
    """Metrics of a run's best checkpoint on a split of its data (or of ``data``).

    Args:
        run: the run folder (one seed).
        data: another data file with the run's modalities (default: the run's own data).
        split: "train", "val" or "test".
        drop: modalities marked missing for every sample (:class:`WithoutModalities`).

    Raises:
        RunError: not a run folder, or a damaged file in it.
        ValueError: ``drop`` names an unknown modality, or every modality.
    """
    from i2moe.metrics import metric_inputs, task_metrics

    module, config, info = load_run(run)
    missing = missing_mask([m["name"] for m in info["modalities"]], drop)
    bundle = run_data(config, info, data)
    dataset = bundle.split(split)
    result = predict_split(module, WithoutModalities(dataset, missing) if drop else dataset)
    metrics = task_metrics(module.task, module.num_outputs, sync=False)
    metrics.update(*metric_inputs(module.task, result["prediction"], result["target"]))
    return {k: float(v) for k, v in metrics.compute().items()}
