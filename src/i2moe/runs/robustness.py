"""Robustness to missing modalities at test time, without retraining (``docs/robustness.md``).

A run's best checkpoint is evaluated once per subset of its modalities: the modalities left out
are marked missing for every sample (:class:`~i2moe.runs.evaluation.WithoutModalities`), so the
model takes its missing-modality path (zeroed raw inputs, keyed replacement embeddings). Each
subset gets the task metrics of ``i2moe test`` and, for an I2MoE run, the dataset-level share
of each interaction by the run's default attribution method
(:func:`i2moe.interpret.attribution.default_method`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from i2moe.data.base import DataBundle
from i2moe.model import I2MoE
from i2moe.runs.evaluation import WithoutModalities
from i2moe.runs.files import write_atomic
from i2moe.runs.loading import load_run, run_data
from i2moe.runs.prediction import predict_split
from i2moe.training.module import FusionLightningModule

log = logging.getLogger(__name__)

# Up to this many modalities every non-empty subset is evaluated (2^n - 1); beyond, the full
# set, each modality left out and each modality alone (2n + 1).
ALL_SUBSETS_UP_TO = 4


@dataclass
class RobustnessRow:
    """One subset of modalities: what was present, the metrics, the attribution."""

    present: list[str]
    absent: list[str]
    metrics: dict[str, float]
    # "method" and interaction -> share (summing to 1); None for a vanilla run.
    attribution: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The row as written to ``robustness.json``; undefined metrics become null."""
        return {
            "present": self.present,
            "absent": self.absent,
            "metrics": {name: _finite_or_none(value) for name, value in self.metrics.items()},
            "attribution": self.attribution,
        }


def modality_subsets(modality_names: Sequence[str]) -> list[tuple[str, ...]]:
    """The subsets of modalities to evaluate, largest first, each in the modalities' order.

    Up to :data:`ALL_SUBSETS_UP_TO` modalities: every non-empty subset (2^n - 1). Beyond: the
    full set, each modality left out and each modality alone (2n + 1).
    """
    count = len(modality_names)
    if count <= ALL_SUBSETS_UP_TO:
        sizes: Sequence[int] = range(count, 0, -1)
    else:
        sizes = (count, count - 1, 1)
    return [subset for size in sizes for subset in combinations(modality_names, size)]


def split_metrics(module: FusionLightningModule, dataset: Dataset) -> dict[str, float]:
    """The task metrics of ``i2moe test`` on ``dataset``."""
    from i2moe.metrics import metric_inputs, task_metrics

    result = predict_split(module, dataset)
    metrics = task_metrics(module.task, module.num_outputs, sync=False)
    metrics.update(*metric_inputs(module.task, result["prediction"], result["target"]))
    left_without_any = int((~result["observed"].bool().any(dim=1)).sum())
    if left_without_any:
        log.warning("%d samples have none of the present modalities observed", left_without_any)
    return {name: float(value) for name, value in metrics.compute().items()}


def robustness(
    module: FusionLightningModule, bundle: DataBundle, split: str = "test", *, seed: int = 0
) -> list[RobustnessRow]:
    """Evaluate a trained model on ``split`` with each subset of :func:`modality_subsets`.

    Args:
        module: the trained model (a run's best checkpoint).
        bundle: the data it was trained on (its modalities in the model's order).
        split: "train", "val" or "test".
        seed: seed of the attribution (the run's seed reproduces its ``attribution.json``).

    Returns:
        One row per subset, the full set first. The attribution's probes (method ``rule``) are
        fitted on the training split with the same modalities left out, so they imitate the
        model as it predicts under that subset.
    """
    from i2moe.interpret.attribution import attribute, default_method

    names = bundle.modality_names
    model = module.model
    method = default_method(model) if isinstance(model, I2MoE) else None
    if method is None:
        log.info("a vanilla run has no experts: rows carry metrics only, no attribution")
    rows = []
    for present in modality_subsets(names):
        missing = torch.tensor([name not in present for name in names], dtype=torch.bool)
        dataset, reference = bundle.split(split), bundle.train
        if bool(missing.any()):
            dataset = WithoutModalities(dataset, missing)
            reference = WithoutModalities(reference, missing)
        metrics = split_metrics(module, dataset)
        attribution = None
        if method is not None:
            result = attribute(model, dataset, [method], reference=reference, seed=seed)[method]
            attribution = {"method": method, **result.shares}
        absent = [name for name in names if name not in present]
        log.info("present %s: %s", ", ".join(present), _metrics_text(metrics))
        rows.append(RobustnessRow(list(present), absent, metrics, attribution))
    return rows


def default_output(run_dir: str | Path, split: str = "test") -> Path:
    """``<run>/robustness.json`` for the test split, ``<run>/robustness_<split>.json`` else."""
    name = "robustness.json" if split == "test" else f"robustness_{split}.json"
    return Path(run_dir) / name


def robustness_run(
    run: str | Path, *, split: str = "test", output: str | Path | None = None
) -> list[RobustnessRow]:
    """Evaluate a run folder's best checkpoint with modalities missing; write the rows as JSON.

    Args:
        run: the run folder (one seed).
        split: "train", "val" or "test" of the run's own data.
        output: the JSON file to write (default :func:`default_output`), atomically: a list
            with one object per subset, ``present``, ``absent``, ``metrics`` and
            ``attribution`` (``method`` and interaction -> share, or null for a vanilla run).

    Returns:
        The rows of :func:`robustness`.

    Raises:
        RunError: not a run folder, or a damaged file in it.
    """
    module, config, info = load_run(run)
    bundle = run_data(config, info, None)
    rows = robustness(module, bundle, split, seed=config.train.seeds[0])
    path = default_output(run, split) if output is None else Path(output)
    text = json.dumps([row.to_json() for row in rows], indent=2, allow_nan=False)
    write_atomic(path, text + "\n")
    log.info("wrote %s", path)
    if path == default_output(run) and (Path(run) / "metrics.json").exists():
        from i2moe.runs.model_card import write_model_card

        write_model_card(run)  # the card shows the test split's robustness table
    return rows


def robustness_table(rows: Sequence[RobustnessRow]) -> str:
    """The rows as a Markdown table: modalities present and absent, the metrics, and the
    share of each interaction, with a closing line naming the attribution method."""
    metric_names = list(rows[0].metrics)
    attribution = rows[0].attribution
    interactions = [name for name in attribution if name != "method"] if attribution else []
    header = ["present", "absent", *metric_names, *interactions]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [", ".join(row.present), ", ".join(row.absent) or "none"]
        cells += [_number(row.metrics[name], 4) for name in metric_names]
        cells += [_number(row.attribution[name], 3) for name in interactions if row.attribution]
        lines.append("| " + " | ".join(cells) + " |")
    if attribution:
        footnote = (
            f"Interaction shares by the run's default attribution method "
            f"'{attribution['method']}'; each row sums to 1. A share on an absent modality is "
            "predictions following the noise that stands in for it (docs/robustness.md)."
        )
    else:
        footnote = "No attribution: a vanilla run has no experts whose interactions to share out."
    return "\n".join(lines) + "\n\n" + footnote


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {_number(value, 4)}" for name, value in metrics.items())
