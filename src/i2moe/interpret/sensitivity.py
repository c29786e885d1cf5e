"""Modality sensitivity: how far a batch's final prediction moves when one modality's embedding
is replaced by the model's own perturbation.

Shape letters: E experts (n+2), M modalities (n), B batch, T tokens, D width, C outputs.

The weights say which interaction the model claims to use; this measures what it does without a
modality. The replacement is the one that also stands in for a missing modality, and the
reweighting sees the replaced embedding too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from i2moe.interpret.rules import prediction_change
from i2moe.model import I2MoE


def replacement_draws(model: I2MoE, m: int, embedding: Tensor, draws: int) -> Tensor:
    """Replacements [draws, B, T, D] of modality ``m``'s embedding [B, T, D] by the model's
    perturbation; a single one for the ``zero`` and ``mean`` strategies, which do not vary."""
    copies = draws if model.perturbation.strategy == "random" else 1
    return model.perturbation.replacement(m, embedding, copies)


def batch_sensitivity(
    model: I2MoE,
    embeddings: Sequence[Tensor],
    prediction: Tensor,
    observed: Tensor,
    draws: int,
) -> tuple[Tensor, Tensor]:
    """The prediction change and flip share of a batch, one modality replaced at a time.

    Args:
        model: the I2MoE, in eval mode.
        embeddings: M embeddings [B, T, D], as :meth:`~i2moe.model.I2MoE.embed` returns them.
        prediction: [B, C] the model's prediction on ``embeddings``.
        observed: [B, M] bool, on the CPU.
        draws: replacements averaged per modality (``random`` strategy only).

    Returns:
        (change [B, M], flip [B, M]: share of draws whose predicted label flips), on the CPU;
        NaN where the modality is missing (and for the flips of regression).
    """
    change = torch.full(observed.shape, math.nan)  # [B, M]
    flip = torch.full(observed.shape, math.nan)
    for m, embedding in enumerate(embeddings):
        changes, flips = [], []
        for replacement in replacement_draws(model, m, embedding, draws):  # [B, T, D] per draw
            perturbed = list(embeddings)
            perturbed[m] = replacement
            changed = model.forward_embeddings(perturbed).prediction
            one_change, one_flip = prediction_change(model.task, prediction, changed)
            changes.append(one_change)
            flips.append(one_flip)
        present = observed[:, m]
        change[present, m] = torch.stack(changes).mean(0).cpu().float()[present]
        flip[present, m] = torch.stack(flips).mean(0).cpu().float()[present]
    return change, flip
