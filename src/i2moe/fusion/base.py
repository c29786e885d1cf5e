"""The fusion-backbone interface and its registry.

A fusion backbone maps the M modality embeddings of one sample batch to a fused vector:

    forward(embeddings: list[Tensor]) -> Fused | Tensor

``embeddings[m]`` is [B, T_m, D] (a vector embedding arrives as T_m = 1). The result is
``Fused(latent [B, H], aux_loss scalar)``; a backbone without an auxiliary loss may return the
latent tensor alone. The backbone exposes ``out_dim`` (H).

Backbones run under ``torch.func.vmap`` over the expert axis (see ``i2moe.execution``), so a
built-in backbone must be functional: no in-place writes to inputs or buffers, no Python branch
on tensor values, no ``.item()``. Randomness (dropout, Gumbel noise) is allowed.

A backbone whose first step looks at one modality at a time can say so by deriving from
:class:`SeparableFusion`; I2MoE's fast path then reuses that step across its perturbed passes.

Builders are registered by name with :func:`register_fusion` and called as
``builder(num_modalities=M, dim=D, tokens=[T_1..T_M], **options)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn


class Fused(NamedTuple):
    """What a fusion backbone returns."""

    latent: Tensor  # [B, H]
    aux_loss: Tensor  # scalar; 0 for dense backbones


class SeparableFusion(nn.Module):
    """A backbone whose first step sees one modality at a time.

    Such a backbone's forward equals ``fuse_parts([modality_part(m, x_m) for each m])``:
    ``modality_part`` depends on modality m's embedding alone and returns a tuple of tensors
    with the batch first; everything that mixes modalities happens in ``fuse_parts``.

    I2MoE's perturbed passes each replace one modality, so a pass shares all other
    modalities' parts with the intact pass. The fast path (``i2moe.execution.fuse_passes``)
    computes each modality's part twice per expert (intact and replaced) instead of once per
    pass, then fuses all passes in one batch; the reference path runs ``forward`` on every
    pass. Dropout inside ``modality_part`` draws one mask per sample for the passes that share
    the part.

    A subclass implements ``modality_part`` and ``fuse_parts``; it may keep a ``forward`` of
    its own (one fused computation is often cheaper than M parts) and may override
    ``modality_parts`` to compute several modalities' parts in one go.
    """

    def modality_part(self, m: int, embedding: Tensor) -> tuple[Tensor, ...]:
        """Modality ``m``'s embedding [B, T_m, D] -> its part (tensors with batch first)."""
        raise NotImplementedError

    def modality_parts(self, items: Sequence[tuple[int, Tensor]]) -> list[tuple[Tensor, ...]]:
        """The parts of several (modality, embedding [B, T_m, D]) pairs, in order.

        A modality may come more than once (its intact embedding and its replacement): its
        embeddings are then stacked along the batch and its part computed in one call, which
        relies on ``modality_part`` treating the rows of a batch independently.
        """
        rows: dict[int, list[int]] = {}
        for i, (m, _) in enumerate(items):
            rows.setdefault(m, []).append(i)
        parts: list[tuple[Tensor, ...]] = [()] * len(items)
        for m, indices in rows.items():
            inputs = [items[i][1] for i in indices]
            if len(inputs) == 1:
                parts[indices[0]] = self.modality_part(m, inputs[0])
                continue
            joint = self.modality_part(m, torch.cat(inputs))
            pieces = [tensor.split([len(x) for x in inputs]) for tensor in joint]
            for j, i in enumerate(indices):
                parts[i] = tuple(piece[j] for piece in pieces)
        return parts

    def fuse_parts(self, parts: list[tuple[Tensor, ...]]) -> Fused | Tensor:
        """The M modalities' parts, in modality order -> the fused result."""
        raise NotImplementedError

    def forward(self, embeddings: list[Tensor]) -> Fused | Tensor:
        """[B, T_m, D] per modality -> Fused(latent [B, H], aux_loss)."""
        return self.fuse_parts(self.modality_parts(list(enumerate(embeddings))))


FusionBuilder = Callable[..., nn.Module]
FUSIONS: dict[str, FusionBuilder] = {}


def register_fusion(name: str) -> Callable[[FusionBuilder], FusionBuilder]:
    """Register a backbone builder under ``name`` (used by ``--fusion NAME``)."""

    def decorator(builder: FusionBuilder) -> FusionBuilder:
        if name in FUSIONS:
            raise ValueError(f"fusion '{name}' is already registered")
        FUSIONS[name] = builder
        return builder

    return decorator


def build_fusion(
    name: str, *, num_modalities: int, dim: int, tokens: Sequence[int], **options
) -> nn.Module:
    """Build a registered backbone; an unknown name lists the valid ones."""
    if name not in FUSIONS:
        raise KeyError(f"unknown fusion '{name}'; valid names: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name](num_modalities=num_modalities, dim=dim, tokens=list(tokens), **options)


def check_tokens(num_modalities: int, tokens: Sequence[int]) -> list[int]:
    """Validate the per-modality token counts a builder receives."""
    tokens = list(tokens)
    if len(tokens) != num_modalities:
        raise ValueError(f"tokens has {len(tokens)} entries for {num_modalities} modalities")
    if num_modalities < 1 or any(t < 1 for t in tokens):
        raise ValueError(f"need at least one modality and one token per modality, got {tokens}")
    return tokens


def as_fused(result: Fused | Tensor) -> Fused:
    """Normalise a backbone's return value to :class:`Fused`."""
    if isinstance(result, Fused):
        return result
    if isinstance(result, tuple) and len(result) == 2:
        return Fused(*result)
    return Fused(result, result.new_zeros(()))


def mean_pool(embedding: Tensor) -> Tensor:
    """[B, T, D] -> [B, D]."""
    return embedding.mean(dim=1)


def zero_loss(like: Tensor) -> Tensor:
    return torch.zeros((), dtype=like.dtype, device=like.device)
