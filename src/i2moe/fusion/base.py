"""The fusion-backbone interface and the builder that makes a backbone from its options.

A fusion backbone maps the M modality embeddings of one sample batch to a fused vector:

    forward(embeddings: list[Tensor]) -> Fused | Tensor

``embeddings[m]`` is [B, T_m, D] (a vector embedding arrives as T_m = 1). The result is
``Fused(latent [B, H], aux_loss scalar)``; a backbone without an auxiliary loss may return the
latent tensor alone. The backbone exposes ``out_dim`` (H).

Backbones run under ``torch.func.vmap`` over the expert axis (see ``i2moe.execution``), so a
built-in backbone must be functional: no in-place writes to inputs or buffers, no Python branch
on tensor values, no ``.item()``. Randomness (dropout, Gumbel noise) is allowed.

I2MoE's training folds its P passes into the batch, pass-major (``execution.fold_passes``), so
the rows of a batch must not interact. A backbone whose rows do (a sparse MoE layer's expert
capacity and load-balancing loss count the tokens of a call) sets the class
attribute ``batch_groups = True`` and takes ``forward(embeddings, *, groups: int = 1)``:
``execution.fuse_passes`` then calls it with ``groups=P``, and it must compute each of the G
equal blocks of B / G rows exactly as a call of its own on that block (its ``aux_loss`` the mean
of the G blocks' losses); ``groups=1`` is the plain call.

A backbone whose first step looks at one modality at a time can say so by deriving from
:class:`SeparableFusion`; I2MoE's fast path then reuses that step across its perturbed passes.

A builder is called as ``builder(num_modalities=M, dim=D, tokens=[T_1..T_M], **options)``;
:class:`FusionBuilder` makes one from a backbone class (or a function that computes its parts)
whose keyword parameters are ``dim``, ``tokens`` and the options with their defaults. The
registry of builders by name is ``i2moe.fusion.FUSIONS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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


class FusionBuilder:
    """Builds a backbone from the shared arguments and its options.

    ``builder(num_modalities=M, dim=D, tokens=[T_1..T_M], **options)`` checks the token counts
    against M and returns ``make(dim=D, tokens=[T_1..T_M], **options)``; ``make``'s keyword
    parameters other than ``dim`` and ``tokens`` are the backbone's options, and their defaults
    its defaults. An option ``make`` does not take is a ``TypeError`` naming the backbone and
    its options.

    Args:
        name: the backbone's registered name, used in messages.
        make: a backbone class, or a function that builds the backbone's parts.
    """

    def __init__(self, name: str, make: Callable[..., nn.Module]) -> None:
        self.name = name
        self.make = make
        self.options = tuple(
            p for p in inspect.signature(make).parameters if p not in ("dim", "tokens")
        )

    def __call__(
        self, *, num_modalities: int, dim: int, tokens: Sequence[int], **options: Any
    ) -> nn.Module:
        unknown = [option for option in options if option not in self.options]
        if unknown:
            raise TypeError(
                f"fusion '{self.name}' takes no option {', '.join(map(repr, unknown))}; "
                f"valid options: {', '.join(self.options)}"
            )
        return self.make(dim=dim, tokens=check_tokens(num_modalities, tokens), **options)


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
