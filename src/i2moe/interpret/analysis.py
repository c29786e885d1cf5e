"""The numbers that explain an I2MoE model on a data split (docs/method.md section 5).

Shape letters: N samples, E experts (n+2), M modalities, C outputs, B batch, T tokens, D width.

- local: every expert's output, weight and weighted contribution for each sample (paper
  Figure 3); the contributions of a sample sum to its final output;
- global: the distribution of each expert's weight (Figure 4), over all samples, by true class
  and by whether the final prediction is right;
- each expert alone against the weighted model, with the task's metrics (Figure 5);
- expert agreement crossed with correctness (Table 3);
- modality sensitivity: how much the final prediction changes when one modality's embedding is
  replaced by the model's perturbation (what the model does, to set beside what its weights say).

Definitions per task (the documentation repeats them):

- correct: classification, the arg-max class is the target; multi-label, the whole predicted
  label set (logit > 0) equals the target set; regression, ``|prediction - target| <= tolerance``.
- experts agree: classification, every expert has the same arg-max class; multi-label, every
  expert predicts the same label set; regression, ``max - min`` of the experts' outputs is at most
  ``tolerance``.
- prediction change: classification, total-variation distance between the class probabilities;
  multi-label, mean over labels of the absolute change of the label probability; regression, the
  absolute change of the prediction. A flip is a change of the predicted class (label set).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from i2moe.metrics import metric_inputs, task_metrics
from i2moe.model import I2MoE

MODEL_ROW = "model"  # the weighted model's row in the performance table
FINAL_ROW = "final"  # the final output's row in the local table
AGREEMENT_ROWS = ("agree", "disagree")
AGREEMENT_COLUMNS = ("correct", "incorrect")


# --------------------------------------------------------------------------- per-task rules


def output_names(
    task: str, num_outputs: int, class_names: Sequence[str] | None = None
) -> list[str]:
    """Names of the C outputs: the class (label) names, ``0..C-1``, or ``value`` (regression)."""
    if task == "regression":
        return ["value"]
    if class_names is not None and len(class_names) == num_outputs:
        return [str(name) for name in class_names]
    return [str(c) for c in range(num_outputs)]


def predicted_labels(task: str, outputs: Tensor) -> Tensor:
    """What outputs [..., C] predict: class ids [...], label sets [..., C] (bool), or values."""
    if task == "classification":
        return outputs.argmax(-1)
    if task == "multilabel":
        return outputs > 0  # sigmoid > 0.5
    return outputs[..., 0]


def prediction_correct(task: str, prediction: Tensor, target: Tensor, tolerance: float) -> Tensor:
    """[N] bool: is the final prediction [N, C] right (see the module docstring)?"""
    if task == "classification":
        return prediction.argmax(-1) == target.long()
    if task == "multilabel":
        return ((prediction > 0) == target.bool()).all(-1)
    return (prediction[:, 0] - target.reshape(-1).to(prediction.dtype)).abs() <= tolerance


def experts_agree(task: str, expert_outputs: Tensor, tolerance: float) -> Tensor:
    """[N] bool: do all experts predict the same (within ``tolerance`` for regression)?

    Args:
        task: the task.
        expert_outputs: [N, E, C].
        tolerance: largest spread (max - min) of the experts' outputs that counts as agreement
            (regression only).
    """
    labels = predicted_labels(task, expert_outputs)  # [N, E] or [N, E, C]
    if task == "regression":
        return labels.amax(1) - labels.amin(1) <= tolerance
    same = labels == labels[:, :1]
    return same.flatten(1).all(1)


def expert_contributions(weights: Tensor, expert_outputs: Tensor) -> Tensor:
    """Weighted contributions [N, E, C] = w [N, E] x outputs [N, E, C]; they sum to the output."""
    return weights.unsqueeze(-1) * expert_outputs


def prediction_change(task: str, base: Tensor, changed: Tensor) -> tuple[Tensor, Tensor]:
    """How far ``changed`` [N, C] moved from ``base`` [N, C], and whether the label flipped.

    Returns:
        (change [N], flip [N] float: 1.0 where the predicted class or label set changed; NaN for
        regression, where nothing flips).
    """
    if task == "classification":
        p, q = base.softmax(-1), changed.softmax(-1)
        change = 0.5 * (p - q).abs().sum(-1)
        flip = (base.argmax(-1) != changed.argmax(-1)).to(base.dtype)
    elif task == "multilabel":
        change = (base.sigmoid() - changed.sigmoid()).abs().mean(-1)
        flip = ((base > 0) != (changed > 0)).any(-1).to(base.dtype)
    else:
        change = (base[:, 0] - changed[:, 0]).abs()
        flip = torch.full_like(change, math.nan)
    return change, flip


# --------------------------------------------------------------------------- tables


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


def expert_performance(
    task: str,
    prediction: Tensor,
    expert_outputs: Tensor,
    target: Tensor,
    expert_names: Sequence[str],
) -> pd.DataFrame:
    """The task's metrics of the weighted model and of each expert's intact output alone.

    Args:
        task: the task.
        prediction: [N, C] final outputs.
        expert_outputs: [N, E, C].
        target: the targets.
        expert_names: E names.

    Returns:
        One row per model (``model`` first, then the experts), one column per metric.
    """
    num_outputs = prediction.shape[-1]
    rows = {}
    candidates = [(MODEL_ROW, prediction)]
    candidates += [(name, expert_outputs[:, e]) for e, name in enumerate(expert_names)]
    for name, outputs in candidates:
        metrics = task_metrics(task, num_outputs, sync=False)
        with warnings.catch_warnings():  # tiny splits: absent classes, constant outputs
            warnings.simplefilter("ignore")
            metrics.update(*metric_inputs(task, outputs.float().cpu(), target.cpu()))
            rows[name] = {k: float(v) for k, v in metrics.compute().items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "name"
    return frame


def choose_samples(correct: Tensor, count: int = 3) -> list[int]:
    """Default samples to show: up to ``count`` correct and ``count`` wrong predictions, spread
    evenly over the split (deterministic), in split order."""
    chosen: list[int] = []
    flags = correct.bool().cpu()
    for group in (flags, ~flags):
        positions = torch.nonzero(group).flatten().tolist()
        if positions and count > 0:
            picks = np.linspace(0, len(positions) - 1, num=min(count, len(positions)))
            chosen += [positions[int(round(p))] for p in picks]
    return sorted(set(chosen))


def resolve_samples(
    num_samples: int,
    sample_ids: Sequence[Any],
    samples: Sequence[int] | None = None,
    ids: Sequence[Any] | None = None,
) -> list[int] | None:
    """Positions in the split of the samples a user asked for, by position or by id.

    Returns:
        The positions (in the order asked, without repeats), or None when nothing was asked.

    Raises:
        ValueError: for a position out of range or an id the split does not hold.
    """
    if samples is None and ids is None:
        return None
    positions: list[int] = []
    for position in samples or []:
        if not -num_samples <= int(position) < num_samples:
            raise ValueError(
                f"sample {position} is out of range: the split has {num_samples} samples "
                f"(positions 0..{num_samples - 1})"
            )
        positions.append(int(position) % num_samples)
    if ids:
        lookup = {str(sample_id): p for p, sample_id in enumerate(sample_ids)}
        unknown = [str(i) for i in ids if str(i) not in lookup]
        if unknown:
            shown = ", ".join(str(s) for s in list(sample_ids)[:5])
            raise ValueError(
                f"unknown sample id(s) {', '.join(unknown)}; ids in this split look like: {shown}"
            )
        positions += [lookup[str(i)] for i in ids]
    return list(dict.fromkeys(positions))


# --------------------------------------------------------------------------- running the model


@dataclass
class Collected:
    """Everything the model says about a split (eval mode, intact pass), on the CPU."""

    prediction: Tensor  # [N, C]
    expert_outputs: Tensor  # [N, E, C]
    weights: Tensor  # [N, E]
    target: Tensor  # [N] class ids, [N, C] multi-hot, or [N, 1] values
    observed: Tensor  # [N, M] bool
    change: Tensor  # [N, M] prediction change when modality m is replaced; NaN where missing
    flip: Tensor  # [N, M] share of draws whose predicted label flips; NaN where undefined
    sample_ids: list[Any]


def intact_pass(model: I2MoE, embeddings: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """The eval-mode forward from embeddings: (prediction [B, C], expert outputs [B, E, C],
    weights [B, E]). Equals ``model(inputs)`` in eval mode for ``embeddings = model.embed(...)``.
    """
    pooled = torch.cat([emb.mean(dim=1) for emb in embeddings], dim=-1)  # [B, M*D]
    weights = model.reweighting(pooled)  # [B, E]
    outputs = model.experts(list(embeddings)).output  # [E, B, C]
    prediction = torch.einsum("be,ebc->bc", weights, outputs)
    return prediction, outputs.transpose(0, 1), weights


def as_loader(data: DataLoader | Dataset, batch_size: int = 256) -> DataLoader:
    """A DataLoader in the data's own order (a shuffled loader is refused)."""
    if isinstance(data, DataLoader):
        if isinstance(data.sampler, RandomSampler):
            raise ValueError(
                "the DataLoader shuffles; pass the dataset or a loader with shuffle=False so that "
                "sample positions mean something"
            )
        return data
    return DataLoader(data, batch_size=batch_size, shuffle=False)


def dataset_sample_ids(loader: DataLoader, num_samples: int) -> list[Any]:
    """The dataset's ``sample_ids`` when it has one per sample, else the positions."""
    ids = getattr(loader.dataset, "sample_ids", None)
    if ids is not None and len(ids) == num_samples:
        return [i.item() if isinstance(i, np.generic) else i for i in ids]
    return list(range(num_samples))


def _batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[dict, Tensor, Tensor]]:
    for batch in loader:
        if not isinstance(batch, Mapping) or "inputs" not in batch or "target" not in batch:
            raise ValueError(
                "each batch must be a dict with 'inputs' (modality -> tensor) and 'target' "
                "(and optionally 'observed'), as i2moe's datasets produce"
            )
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        target = batch["target"]
        observed = batch.get("observed")
        if observed is None:
            observed = torch.ones(len(target), len(inputs), dtype=torch.bool)
        yield inputs, target, observed.bool()


@torch.no_grad()
def collect(
    model: I2MoE,
    data: DataLoader | Dataset,
    *,
    draws: int = 3,
    seed: int = 0,
    batch_size: int = 256,
) -> Collected:
    """Run the model (eval mode) over a split and measure its modality sensitivity.

    Each modality's embedding is replaced in turn by the model's own perturbation (what also
    stands in for a missing modality); the reweighting sees the replaced embedding too, so the
    change is what the model would do without that modality. The ``random`` strategy is averaged
    over ``draws`` draws, seeded with ``seed`` (the same seed and batch size give the same
    numbers); the global random state is left as it was.

    Args:
        model: the I2MoE (restored to its training mode afterwards).
        data: a Dataset or an unshuffled DataLoader of i2moe items.
        draws: replacements averaged per modality (``random`` strategy only).
        seed: seed of the replacements (and of a missing modality's replacement).
        batch_size: used when ``data`` is a Dataset.
    """
    if not isinstance(model, I2MoE):
        raise ValueError(
            f"{type(model).__name__} has no experts to explain: interpretation needs an I2MoE "
            "model (a vanilla fusion model has no expert weights)"
        )
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    loader = as_loader(data, batch_size)
    device = next(model.parameters()).device
    draws = draws if model.perturbation.strategy == "random" else 1
    keys = ("prediction", "expert_outputs", "weights", "target", "observed", "change", "flip")
    parts: dict[str, list[Tensor]] = {key: [] for key in keys}
    task = model.task
    was_training = model.training
    model.eval()
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            for inputs, target, observed in _batches(loader, device):
                observed_device = observed.to(device)
                all_observed = bool(observed.all())
                embeddings = model.embed(inputs, None if all_observed else observed_device)
                prediction, outputs, weights = intact_pass(model, embeddings)
                change = torch.full(observed.shape, math.nan)  # [B, M]
                flip = torch.full(observed.shape, math.nan)
                for m, embedding in enumerate(embeddings):
                    replacements = model.perturbation.replacement(m, embedding, draws)
                    changes, flips = [], []
                    for replacement in replacements:  # [B, T, D] per draw
                        perturbed = list(embeddings)
                        perturbed[m] = replacement
                        changed, _, _ = intact_pass(model, perturbed)
                        one_change, one_flip = prediction_change(task, prediction, changed)
                        changes.append(one_change)
                        flips.append(one_flip)
                    present = observed[:, m]
                    change[present, m] = torch.stack(changes).mean(0).cpu().float()[present]
                    flip[present, m] = torch.stack(flips).mean(0).cpu().float()[present]
                batch = (prediction, outputs, weights, target, observed, change, flip)
                for key, value in zip(keys, batch, strict=True):
                    parts[key].append(value.cpu())
    finally:
        model.train(was_training)
    if not parts["prediction"]:
        raise ValueError("the data holds no samples to explain")
    joined = {key: torch.cat(values) for key, values in parts.items()}
    for key in ("prediction", "expert_outputs", "weights"):  # e.g. from a bf16 model
        joined[key] = joined[key].float()
    return Collected(**joined, sample_ids=dataset_sample_ids(loader, len(joined["prediction"])))


# --------------------------------------------------------------------------- the explanation


@dataclass
class Explanation:
    """The numbers that explain a model on a split; tensors on the CPU.

    Tables (pandas DataFrames) are documented in ``docs/interpretation.md``. ``files`` (tables,
    report, summary) and ``figures`` map names to what was written; empty when nothing was.
    """

    task: str
    expert_names: list[str]
    modality_names: list[str]
    output_names: list[str]
    class_names: list[str] | None
    sample_ids: list[Any]
    prediction: Tensor  # [N, C]
    expert_outputs: Tensor  # [N, E, C]
    weights: Tensor  # [N, E]
    target: Tensor
    observed: Tensor  # [N, M]
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
    return {k: getattr(row, k) for k in ("samples", "mean", "median", "min", "max", "std")}


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


def sensitivity_tables(
    change: Tensor,
    flip: Tensor,
    modality_names: Sequence[str],
    sample_ids: Sequence[Any],
    weights: Tensor,
    expert_names: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample and per-modality modality sensitivity.

    Returns:
        (per sample: ``sample``, ``id``, ``change_<m>``, ``flip_<m>``; per modality:
        ``modality``, ``samples`` (where it is observed), ``mean_change``, ``flip_share``,
        ``uni_weight_mean``: the mean weight of its uniqueness expert, to compare with).
    """
    per_sample = pd.DataFrame({"sample": np.arange(len(change)), "id": list(sample_ids)})
    rows = []
    for m, name in enumerate(modality_names):
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
                "uni_weight_mean": float(weights[:, expert_names.index(uni)].mean())
                if uni in expert_names
                else math.nan,
            }
        )
    return per_sample, pd.DataFrame(rows)


def _nanmean(values: Tensor) -> float:
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if len(kept) else math.nan


def analyse(
    collected: Collected,
    *,
    task: str,
    expert_names: Sequence[str],
    modality_names: Sequence[str],
    class_names: Sequence[str] | None = None,
    tolerance: float = 0.5,
    samples: Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    num_examples: int = 3,
    groups: Mapping[str, Sequence[Any]] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Explanation:
    """Turn what the model said (:func:`collect`) into the explanation's tables.

    Args:
        collected: the model's outputs on a split.
        task: "classification", "multilabel" or "regression".
        expert_names: E names in the model's order.
        modality_names: M names in the model's order.
        class_names: names of the C classes (labels); default their numbers.
        tolerance: regression: how far a correct prediction may be from the target and how far
            apart agreeing experts' outputs may be.
        samples: positions in the split to show in detail.
        sample_ids: ids (as in the dataset's ``sample_ids``) to show in detail.
        num_examples: with neither given, show this many correct and this many wrong samples.
        groups: further breakdowns of the weights: name -> one label per sample.
        context: free fields (run, split, data) put in the summary and the report's header.
    """
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    expert_names, modality_names = list(expert_names), list(modality_names)
    num_samples = len(collected.prediction)
    correct = prediction_correct(task, collected.prediction, collected.target, tolerance)
    agree = experts_agree(task, collected.expert_outputs, tolerance)
    names = output_names(task, collected.prediction.shape[-1], class_names)
    all_groups: dict[str, list[str]] = {}
    if task == "classification":
        all_groups["class"] = [names[int(t)] for t in collected.target.reshape(-1)]
    all_groups["prediction"] = ["correct" if c else "incorrect" for c in correct.tolist()]
    for name, labels in (groups or {}).items():
        all_groups[name] = [str(label) for label in labels]
    preferred = [*names, "correct", "incorrect", *expert_names]
    weight_groups = weight_statistics(collected.weights, expert_names, all_groups, preferred)
    weight_summary = weight_groups[weight_groups["breakdown"] == "all"].drop(
        columns=["breakdown", "group"]
    )
    percent, counts = agreement_table(agree, correct)
    per_sample, per_modality = sensitivity_tables(
        collected.change,
        collected.flip,
        modality_names,
        collected.sample_ids,
        collected.weights,
        expert_names,
    )
    chosen = resolve_samples(num_samples, collected.sample_ids, samples, sample_ids)
    return Explanation(
        task=task,
        expert_names=expert_names,
        modality_names=modality_names,
        output_names=names,
        class_names=list(class_names) if class_names is not None else None,
        sample_ids=list(collected.sample_ids),
        prediction=collected.prediction,
        expert_outputs=collected.expert_outputs,
        weights=collected.weights,
        target=collected.target,
        observed=collected.observed,
        correct=correct,
        agree=agree,
        tolerance=tolerance,
        chosen=chosen if chosen is not None else choose_samples(correct, num_examples),
        weight_summary=weight_summary.reset_index(drop=True),
        weight_groups=weight_groups,
        performance=expert_performance(
            task, collected.prediction, collected.expert_outputs, collected.target, expert_names
        ),
        agreement=percent,
        agreement_counts=counts,
        sensitivity=per_sample,
        sensitivity_summary=per_modality,
        groups=all_groups,
        context=dict(context or {}),
    )


def write_tables(explanation: Explanation, output_dir: str | Path) -> dict[str, Path]:
    """Write the machine-readable files (CSV, JSON) into ``output_dir``.

    Returns:
        name -> path of each file written (``summary.json`` is written last, by
        :func:`write_summary`, once figures and report are known).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "weights": output_dir / "weights.csv",
        "expert_outputs": output_dir / "expert_outputs.csv",
        "chosen_samples": output_dir / "chosen_samples.csv",
        "weight_summary": output_dir / "weight_summary.csv",
        "weight_groups": output_dir / "weight_groups.csv",
        "performance": output_dir / "expert_performance.csv",
        "agreement": output_dir / "agreement.csv",
        "sensitivity": output_dir / "sensitivity.csv",
        "sensitivity_summary": output_dir / "sensitivity_summary.csv",
    }
    explanation.weights_frame().to_csv(files["weights"], index=False)
    explanation.local_table().to_csv(files["expert_outputs"], index=False)
    explanation.local_table(explanation.chosen).to_csv(files["chosen_samples"], index=False)
    explanation.weight_summary.to_csv(files["weight_summary"], index=False)
    explanation.weight_groups.to_csv(files["weight_groups"], index=False)
    explanation.performance.to_csv(files["performance"])
    agreement = explanation.agreement.join(explanation.agreement_counts.add_suffix("_count"))
    agreement.index.name = "experts"
    agreement.to_csv(files["agreement"])
    explanation.sensitivity.to_csv(files["sensitivity"], index=False)
    explanation.sensitivity_summary.to_csv(files["sensitivity_summary"], index=False)
    return files


def write_summary(explanation: Explanation, output_dir: str | Path) -> Path:
    """Write ``summary.json``: :meth:`Explanation.summary` plus ``files``, every file written
    (paths relative to ``output_dir``)."""
    output_dir = Path(output_dir)
    path = output_dir / "summary.json"
    explanation.files["summary"] = path
    written = [*explanation.files.values(), *explanation.figures.values()]
    files = sorted(p.relative_to(output_dir).as_posix() for p in written)
    path.write_text(json.dumps({**explanation.summary(), "files": files}, indent=2) + "\n")
    return path
