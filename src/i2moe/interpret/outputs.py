"""What an I2MoE says about a data split (eval mode, kept on the CPU), and running it to get that.

Shape letters: N samples, E experts (n+2), M modalities (n), B batch, D width, C outputs.

:func:`collect` gives the explanation's :class:`SplitOutputs` (outputs, weights and modality
sensitivity); :func:`collect_pooled` gives the attribution methods' :class:`PooledOutputs`
(pooled embeddings, probabilities, weights). Both encode each batch once with
:meth:`~i2moe.model.I2MoE.embed` and run the rest with
:meth:`~i2moe.model.I2MoE.forward_embeddings`, which in eval mode is the model's forward.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from i2moe.interpret.sensitivity import batch_sensitivity
from i2moe.model import I2MoE, I2MoEOutput


@dataclass
class SplitOutputs:
    """What an I2MoE says about a split (eval mode, intact input) and how far replacing each
    modality moves it; tensors on the CPU."""

    task: str
    expert_names: list[str]
    modality_names: list[str]
    sample_ids: list[Any]
    prediction: Tensor  # [N, C]
    expert_outputs: Tensor  # [N, E, C]
    weights: Tensor  # [N, E]
    target: Tensor  # [N] class ids, [N, C] multi-hot, or [N, 1] values
    observed: Tensor  # [N, M] bool
    change: Tensor  # [N, M] prediction change when modality m is replaced; NaN where missing
    flip: Tensor  # [N, M] share of draws whose predicted label flips; NaN where undefined


@dataclass
class PooledOutputs:
    """The pooled embeddings, class probabilities and weights of an I2MoE on a split."""

    pooled: list[Tensor]  # M tensors [N, D], token-mean-pooled clean embeddings
    probabilities: np.ndarray  # [N, C] class probabilities (other tasks: the raw outputs)
    weights: np.ndarray  # [N, E] reweighting weights


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


def _require_experts(model: Any) -> None:
    if not isinstance(model, I2MoE):
        raise ValueError(
            f"{type(model).__name__} has no experts to explain: interpretation needs an I2MoE "
            "model (a vanilla fusion model has no expert weights)"
        )


@contextmanager
def _evaluating(model: I2MoE) -> Iterator[None]:
    """Eval mode inside, the model's own mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _forward_batches(
    model: I2MoE, loader: DataLoader, device: torch.device
) -> Iterator[tuple[list[Tensor], I2MoEOutput, Tensor, Tensor]]:
    """Per batch: the M embeddings (missing modalities replaced), the model's output on them,
    the target and ``observed`` [B, M] (on the CPU)."""
    for inputs, target, observed in _batches(loader, device):
        replace_missing = None if bool(observed.all()) else observed.to(device)
        embeddings = model.embed(inputs, replace_missing)
        yield embeddings, model.forward_embeddings(embeddings), target, observed


@torch.no_grad()
def collect(
    model: I2MoE,
    data: DataLoader | Dataset,
    *,
    draws: int = 3,
    seed: int = 0,
    batch_size: int = 256,
) -> SplitOutputs:
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
    _require_experts(model)
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    loader = as_loader(data, batch_size)
    device = next(model.parameters()).device
    keys = ("prediction", "expert_outputs", "weights", "target", "observed", "change", "flip")
    parts: dict[str, list[Tensor]] = {key: [] for key in keys}
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with _evaluating(model), torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        for embeddings, output, target, observed in _forward_batches(model, loader, device):
            change, flip = batch_sensitivity(model, embeddings, output.prediction, observed, draws)
            batch = (output.prediction, output.expert_outputs, output.weights, target, observed)
            for key, value in zip(keys, (*batch, change, flip), strict=True):
                parts[key].append(value.cpu())
    if not parts["prediction"]:
        raise ValueError("the data holds no samples to explain")
    joined = {key: torch.cat(values) for key, values in parts.items()}
    for key in ("prediction", "expert_outputs", "weights"):  # e.g. from a bf16 model
        joined[key] = joined[key].float()
    return SplitOutputs(
        task=model.task,
        expert_names=model.expert_names,
        modality_names=model.modality_names,
        sample_ids=dataset_sample_ids(loader, len(joined["prediction"])),
        **joined,
    )


@torch.no_grad()
def collect_pooled(
    model: I2MoE, data: DataLoader | Dataset, batch_size: int = 512
) -> PooledOutputs:
    """Run the model (eval mode) over a split; keep pooled embeddings, outputs and weights.

    Args:
        model: the I2MoE (restored to its training mode afterwards).
        data: a Dataset or an unshuffled DataLoader of i2moe items.
        batch_size: used when ``data`` is a Dataset.
    """
    _require_experts(model)
    loader = as_loader(data, batch_size)
    pooled: list[list[Tensor]] = [[] for _ in model.modality_names]
    probabilities, weights = [], []
    device = next(model.parameters()).device
    with _evaluating(model):
        for embeddings, output, _, _ in _forward_batches(model, loader, device):
            for m, emb in enumerate(embeddings):
                pooled[m].append(emb.mean(dim=1).cpu())  # [B, D]
            prediction = output.prediction
            if model.task == "classification":
                prediction = prediction.softmax(-1)
            probabilities.append(prediction.float().cpu())
            weights.append(output.weights.float().cpu())
    return PooledOutputs(
        pooled=[torch.cat(chunks) for chunks in pooled],
        probabilities=torch.cat(probabilities).numpy(),
        weights=torch.cat(weights).numpy(),
    )
