"""The explanation of an I2MoE model on a data split (docs/method.md section 5):
:class:`Explanation`, and :func:`analyse`, which derives it from the model's outputs
(:mod:`i2moe.interpret.outputs`).

Shape letters: N samples, S samples shown in a table, E experts (n+2), M modalities (n),
C outputs.

- local: every expert's output, weight and weighted contribution for each sample (paper
  Figure 3); the contributions of a sample sum to its final output;
- global: the distribution of each expert's weight (Figure 4), over all samples, by true class
  and by whether the final prediction is right;
- each expert alone against the weighted model, with the task's metrics (Figure 5);
- expert agreement crossed with correctness (Table 3);
- modality sensitivity: how much the final prediction changes when one modality's embedding is
  replaced by the model's perturbation (what the model does, to set beside what its weights say).

What counts as correct, as agreement and as a change, per task: :mod:`i2moe.interpret.rules`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from i2moe.interpret.outputs import SplitOutputs
from i2moe.interpret.rules import (
    expert_contributions,
    experts_agree,
    output_names,
    predicted_labels,
    prediction_correct,
)
from i2moe.interpret.samples import choose_samples, resolve_samples
from i2moe.interpret.tables import (
    agreement_table,
    expert_performance,
    sensitivity_tables,
    weight_statistics,
)

FINAL_ROW = "final"  # the final output's row in the local table
STATISTICS = ("samples", "mean", "median", "min", "max", "std")


@dataclass
class Explanation(SplitOutputs):
    """The numbers that explain a model on a split: its outputs (:class:`SplitOutputs`) and
    what is derived from them; tensors on the CPU.

    Tables (pandas DataFrames) are documented in ``docs/interpretation.md``. ``files`` (tables,
    report, summary) and ``figures`` map names to what was written; empty when nothing was.
    """

    output_names: list[str]
    class_names: list[str] | None
    correct: Tensor  # [N] bool
    agree: Tensor  # [N] bool
    tolerance: float
    chosen: list[int]
    weight_summary: pd.DataFrame
    weight_groups: pd.DataFrame
    performance: pd.DataFrame
    agreement: pd.DataFrame
    agreement_counts: pd.DataFrame
    sensitivity: pd.DataFrame
    sensitivity_summary: pd.DataFrame
    groups: dict[str, list[str]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return len(self.prediction)

    @property
    def contributions(self) -> Tensor:
        """[N, E, C] weight x output; summed over experts they give ``prediction``."""
        return expert_contributions(self.weights, self.expert_outputs)

    def missing_modalities(self, sample: int) -> list[str]:
        """Names of the modalities missing from sample ``sample``."""
        observed = self.observed[sample].tolist()
        return [m for m, seen in zip(self.modality_names, observed, strict=True) if not seen]

    def label_text(self, outputs: Tensor) -> str | float:
        """What outputs [C] predict, as text: a class name, a label set, or a value."""
        return self._texts(predicted_labels(self.task, outputs.unsqueeze(0)))[0]

    def target_text(self, sample: int) -> str | float:
        """The target of sample ``sample`` as text (or a value for regression)."""
        target = self.target[sample : sample + 1]
        if self.task == "multilabel":
            return self._texts(target.bool())[0]
        return self._texts(target.reshape(1))[0]

    def _texts(self, labels: Tensor) -> list[Any]:
        """Class ids [R], label sets [R, C] or values [R] as class names, ``a;b``, or floats."""
        if self.task == "classification":
            return [self.output_names[i] for i in labels.tolist()]
        if self.task == "multilabel":
            names = np.asarray(self.output_names, dtype=object)
            return [";".join(names[row]) or "(none)" for row in labels.numpy()]
        return [float(v) for v in labels.tolist()]

    def weights_frame(self) -> pd.DataFrame:
        """``sample``, then one column per expert (``uni_<modality>`` ..., ``syn``, ``red``)."""
        frame = pd.DataFrame({"sample": np.arange(self.num_samples)})
        for e, name in enumerate(self.expert_names):
            frame[name] = self.weights[:, e].numpy()
        return frame

    def local_table(self, samples: Sequence[int] | None = None) -> pd.DataFrame:
        """Per sample: one row per expert and one ``final`` row.

        Columns: ``sample``, ``id``, ``expert``, ``weight``, ``predicted`` (what that row's
        outputs predict), ``target``, ``correct`` (of the final prediction), ``missing`` (the
        sample's missing modalities, ``;``-separated), ``modality_missing`` (a uniqueness expert
        whose modality is missing), then ``output_<name>`` and ``contribution_<name>`` per output.
        The final row holds the weighted output in both; per sample and output the experts'
        contributions sum to it.
        """
        positions = torch.arange(self.num_samples) if samples is None else torch.tensor(samples)
        positions = positions.long().reshape(-1)
        rows_per_sample = len(self.expert_names) + 1
        final = self.prediction[positions].unsqueeze(1)  # [S, 1, C]
        outputs = torch.cat([self.expert_outputs[positions], final], dim=1)  # [S, E+1, C]
        contributions = torch.cat([self.contributions[positions], final], dim=1)
        weights = self.weights[positions]
        weights = torch.cat([weights, weights.sum(-1, keepdim=True)], dim=1)  # [S, E+1]
        observed = self.observed[positions]  # [S, M]
        modality_of = {f"uni_{name}": m for m, name in enumerate(self.modality_names)}
        modality_missing = torch.zeros(len(positions), rows_per_sample, dtype=torch.bool)
        for e, expert in enumerate(self.expert_names):
            if expert in modality_of:
                modality_missing[:, e] = ~observed[:, modality_of[expert]]
        index = positions.tolist()

        def per_sample(values: Sequence[Any]) -> np.ndarray:
            return np.repeat(np.asarray(values, dtype=object), rows_per_sample)

        frame = pd.DataFrame(
            {
                "sample": np.repeat(np.asarray(index, dtype=np.int64), rows_per_sample),
                "id": per_sample([self.sample_ids[i] for i in index]),
                "expert": np.tile([*self.expert_names, FINAL_ROW], len(index)),
                "weight": weights.reshape(-1).numpy(),
                "predicted": self._texts(predicted_labels(self.task, outputs.flatten(0, 1))),
                "target": per_sample([self.target_text(i) for i in index]),
                "correct": np.repeat(self.correct[positions].numpy(), rows_per_sample),
                "missing": per_sample([";".join(self.missing_modalities(i)) for i in index]),
                "modality_missing": modality_missing.reshape(-1).numpy(),
            }
        )
        for prefix, values in (("output", outputs), ("contribution", contributions)):
            flat = values.flatten(0, 1).numpy()  # [S*(E+1), C]
            for c, name in enumerate(self.output_names):
                frame[f"{prefix}_{name}"] = flat[:, c]
        return frame

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain JSON-ready values (NaN becomes None)."""
        groups: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self.weight_groups.itertuples(index=False):
            if row.breakdown == "all":
                continue
            by_group = groups.setdefault(row.breakdown, {}).setdefault(row.group, {})
            by_group[row.expert] = _row_stats(row)
        summary = {
            **self.context,
            "task": self.task,
            "samples": self.num_samples,
            "experts": self.expert_names,
            "modalities": self.modality_names,
            "outputs": self.output_names,
            "tolerance": self.tolerance,
            "correct_share": float(self.correct.float().mean()),
            "agree_share": float(self.agree.float().mean()),
            "weights": {
                row.expert: _row_stats(row) for row in self.weight_summary.itertuples(index=False)
            },
            "weights_by_group": groups,
            "performance": self.performance.to_dict(orient="index"),
            "agreement": {
                "percent": self.agreement.to_dict(orient="index"),
                "counts": self.agreement_counts.to_dict(orient="index"),
            },
            "sensitivity": self.sensitivity_summary.set_index("modality").to_dict(orient="index"),
            "chosen_samples": [
                {"sample": s, "id": self.sample_ids[s], "correct": bool(self.correct[s])}
                for s in self.chosen
            ],
        }
        return _jsonable(summary)


def _row_stats(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in STATISTICS}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def analyse(
    outputs: SplitOutputs,
    *,
    class_names: Sequence[str] | None = None,
    tolerance: float = 0.5,
    samples: Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    num_examples: int = 3,
    groups: Mapping[str, Sequence[Any]] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Explanation:
    """Turn what the model said (:func:`~i2moe.interpret.outputs.collect`) into the explanation.

    Args:
        outputs: the model's outputs on a split.
        class_names: names of the C classes (labels); default their numbers.
        tolerance: regression: how far a correct prediction may be from the target and how far
            apart agreeing experts' outputs may be.
        samples: positions in the split to show in detail.
        sample_ids: ids (as in the dataset's ``sample_ids``) to show in detail.
        num_examples: with neither given, show this many correct and this many wrong samples.
        groups: further breakdowns of the weights: name -> one label per sample.
        context: free fields (run, split, data) put in the summary and the report's header.

    Raises:
        ValueError: for a bad tolerance, an unknown sample, or a group of the wrong length.
    """
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    task, expert_names = outputs.task, outputs.expert_names
    correct = prediction_correct(task, outputs.prediction, outputs.target, tolerance)
    agree = experts_agree(task, outputs.expert_outputs, tolerance)
    names = output_names(task, outputs.prediction.shape[-1], class_names)
    all_groups: dict[str, list[str]] = {}
    if task == "classification":
        all_groups["class"] = [names[int(t)] for t in outputs.target.reshape(-1)]
    all_groups["prediction"] = ["correct" if c else "incorrect" for c in correct.tolist()]
    for name, labels in (groups or {}).items():
        all_groups[name] = [str(label) for label in labels]
    preferred = [*names, "correct", "incorrect", *expert_names]
    weight_groups = weight_statistics(outputs.weights, expert_names, all_groups, preferred)
    weight_summary = weight_groups[weight_groups["breakdown"] == "all"].drop(
        columns=["breakdown", "group"]
    )
    percent, counts = agreement_table(agree, correct)
    per_sample, per_modality = sensitivity_tables(outputs)
    chosen = resolve_samples(len(outputs.prediction), outputs.sample_ids, samples, sample_ids)
    model_outputs = {f.name: getattr(outputs, f.name) for f in dataclasses.fields(SplitOutputs)}
    return Explanation(
        **model_outputs,
        output_names=names,
        class_names=list(class_names) if class_names is not None else None,
        correct=correct,
        agree=agree,
        tolerance=tolerance,
        chosen=chosen if chosen is not None else choose_samples(correct, num_examples),
        weight_summary=weight_summary.reset_index(drop=True),
        weight_groups=weight_groups,
        performance=expert_performance(outputs),
        agreement=percent,
        agreement_counts=counts,
        sensitivity=per_sample,
        sensitivity_summary=per_modality,
        groups=all_groups,
        context=dict(context or {}),
    )
