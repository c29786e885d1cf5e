"""The explanation's tables, as pandas DataFrames: weight statistics (paper Figure 4), each
expert against the model (Figure 5), expert agreement (Table 3) and modality sensitivity.

Shape letters: N samples, E experts (n+2), M modalities (n), C outputs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from i2moe.metrics import metric_inputs, task_metrics

if TYPE_CHECKING:
    from i2moe.interpret.outputs import SplitOutputs

MODEL_ROW = "model"  # the weighted model's row in the performance table
AGREEMENT_ROWS = ("agree", "disagree")
AGREEMENT_COLUMNS = ("correct", "incorrect")


def agreement_table(agree: Tensor, correct: Tensor) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper Table 3: (percent of all samples, counts), rows agree/disagree, columns
    correct/incorrect. The four percentages sum to 100.
    """
    agree, correct = agree.bool().cpu(), correct.bool().cpu()
    counts = pd.DataFrame(
        [[int((rows & correct).sum()), int((rows & ~correct).sum())] for rows in (agree, ~agree)],
        index=list(AGREEMENT_ROWS),
        columns=list(AGREEMENT_COLUMNS),
    )
    total = max(len(agree), 1)
    return counts * (100.0 / total), counts


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "samples": len(values),
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "max": float(values.max()),
        "std": float(values.std()),
    }


def weight_statistics(
    weights: Tensor,
    expert_names: Sequence[str],
    groups: Mapping[str, Sequence[Any]] | None = None,
    preferred: Sequence[str] = (),
) -> pd.DataFrame:
    """Mean, median, min, max and std of each expert's weight, overall and per group.

    Args:
        weights: [N, E].
        expert_names: E names.
        groups: breakdown name -> one group label per sample (e.g. ``{"class": [...]}``).
        preferred: group labels in the order to list them first (e.g. the class names);
            other labels follow, sorted.

    Returns:
        Rows ``breakdown``, ``group``, ``expert``, ``samples``, ``mean``, ``median``, ``min``,
        ``max``, ``std``; the overall rows have breakdown and group ``all``.
    """
    values = weights.detach().cpu().double().numpy()
    rows = []
    breakdowns: dict[str, np.ndarray] = {"all": np.full(len(values), "all", dtype=object)}
    for name, labels in (groups or {}).items():
        labels = np.asarray([str(label) for label in labels], dtype=object)
        if len(labels) != len(values):
            raise ValueError(f"group '{name}' has {len(labels)} labels for {len(values)} samples")
        breakdowns[name] = labels
    for breakdown, labels in breakdowns.items():
        for group in ordered_unique(labels, preferred):
            rows_in_group = labels == group
            for e, expert in enumerate(expert_names):
                stats = _stats(values[rows_in_group, e])
                rows.append({"breakdown": breakdown, "group": group, "expert": expert, **stats})
    return pd.DataFrame(rows)


def ordered_unique(labels: Sequence[Any], preferred: Sequence[Any] = ()) -> list[Any]:
    """Unique labels: those in ``preferred`` first, in its order; then the rest, numerically
    sorted where they are numbers, otherwise in sorted order."""
    unique = list(dict.fromkeys(np.asarray(labels, dtype=object).tolist()))
    first = [label for label in dict.fromkeys(preferred) if label in unique]
    rest = [label for label in unique if label not in first]
    try:
        return first + sorted(rest, key=float)
    except (TypeError, ValueError):
        return first + sorted(rest, key=str)


def expert_performance(outputs: SplitOutputs) -> pd.DataFrame:
    """The task's metrics of the weighted model and of each expert's intact output alone.

    Returns:
        One row per model (``model`` first, then the experts), one column per metric.
    """
    num_outputs = outputs.prediction.shape[-1]
    rows = {}
    candidates = [(MODEL_ROW, outputs.prediction)]
    candidates += [
        (name, outputs.expert_outputs[:, e]) for e, name in enumerate(outputs.expert_names)
    ]
    for name, values in candidates:  # [N, C] each
        metrics = task_metrics(outputs.task, num_outputs, sync=False)
        with warnings.catch_warnings():  # tiny splits: absent classes, constant outputs
            warnings.simplefilter("ignore")
            metrics.update(*metric_inputs(outputs.task, values.float().cpu(), outputs.target.cpu()))
            rows[name] = {k: float(v) for k, v in metrics.compute().items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "name"
    return frame


def sensitivity_tables(outputs: SplitOutputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample and per-modality modality sensitivity.

    Returns:
        (per sample: ``sample``, ``id``, ``change_<m>``, ``flip_<m>``; per modality:
        ``modality``, ``samples`` (where it is observed), ``mean_change``, ``flip_share``,
        ``uni_weight_mean``: the mean weight of its uniqueness expert, to compare with).
    """
    change, flip, expert_names = outputs.change, outputs.flip, outputs.expert_names
    per_sample = pd.DataFrame({"sample": np.arange(len(change)), "id": list(outputs.sample_ids)})
    rows = []
    for m, name in enumerate(outputs.modality_names):
        per_sample[f"change_{name}"] = change[:, m].numpy()
        per_sample[f"flip_{name}"] = flip[:, m].numpy()
        present = ~torch.isnan(change[:, m])
        uni = f"uni_{name}"
        rows.append(
            {
                "modality": name,
                "samples": int(present.sum()),
                "mean_change": _nanmean(change[:, m]),
                "flip_share": _nanmean(flip[:, m]),
                "uni_weight_mean": float(outputs.weights[:, expert_names.index(uni)].mean())
                if uni in expert_names
                else math.nan,
            }
        )
    return per_sample, pd.DataFrame(rows)


def _nanmean(values: Tensor) -> float:
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if len(kept) else math.nan
