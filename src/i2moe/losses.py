"""The weakly supervised interaction losses and the total training loss (METHOD.md section 3).

Shape letters: E experts, P passes (intact + one per perturbed modality), B batch, C outputs.
Pass 0 is the intact input; pass q >= 1 has modality ``perturbed[q - 1]`` replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

Role = int | str  # a modality index (its uniqueness expert), "syn" or "red"


def default_roles(num_modalities: int) -> list[Role]:
    """Expert order everywhere: [uni_1 .. uni_n, syn, red]."""
    return [*range(num_modalities), "syn", "red"]


def _masked_mean(values: Tensor, weights: Tensor) -> Tensor:
    # Mean over entries with weight 1; zero (still differentiable) where none count.
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def _uniqueness(
    anchor: Tensor, positives: Tensor, negative: Tensor, regression: bool, margin: float
) -> Tensor:
    """Per-sample triplet terms [Q, B]: anchor [B, C], positives [Q, B, C], negative [B, C]."""
    if regression:
        # Hinge on squared error (the authors' unbounded difference is an error).
        d_pos = (anchor - positives).pow(2).sum(-1)  # [Q, B]
        d_neg = (anchor - negative).pow(2).sum(-1)  # [B]
        return F.relu(d_pos - d_neg + margin)
    # TripletMarginLoss(margin, p=2) per sample, METHOD.md section 3 (paper eq. for L_uni).
    q = len(positives)
    return F.triplet_margin_loss(
        anchor.expand_as(positives).reshape(-1, anchor.shape[-1]),
        positives.reshape(-1, anchor.shape[-1]),
        negative.expand_as(positives).reshape(-1, anchor.shape[-1]),
        margin=margin,
        p=2,
        reduction="none",
    ).view(q, -1)


def _agreement(anchor: Tensor, perturbed: Tensor, regression: bool, synergy: bool) -> Tensor:
    """Per-sample synergy / redundancy terms [Q, B]: anchor [B, C], perturbed [Q, B, C]."""
    if regression:
        distance = (anchor - perturbed).pow(2).sum(-1)
        # Synergy pushes away with a bounded term; redundancy pulls together.
        return torch.exp(-distance) if synergy else distance
    cosine = F.cosine_similarity(anchor.expand_as(perturbed), perturbed, dim=-1)
    return cosine if synergy else 1.0 - cosine


def interaction_losses(
    outputs: Tensor,
    task: str,
    *,
    roles: Sequence[Role] | None = None,
    perturbed: Sequence[int] | None = None,
    valid: Tensor | None = None,
    margin: float = 1.0,
) -> Tensor:
    """One interaction loss per expert.

    Args:
        outputs: [E, P, B, C] expert outputs (or latents) on the intact pass and the perturbed
            passes.
        task: "classification", "multilabel" or "regression" (squared-error forms).
        roles: each expert's role; defaults to [0 .. n-1, "syn", "red"] with n = P - 1.
        perturbed: the modality replaced in each pass 1..P-1; defaults to 0 .. P-2.
        valid: [P-1, B] bool, False where a pass's modality was missing for that sample (the
            pass then equals the intact one and is left out of the losses).
        margin: triplet margin for the uniqueness losses.

    Returns:
        [E] losses in the experts' order. A uniqueness expert whose modality was not perturbed
        in this step (less-forward) has loss 0.
    """
    num_passes = outputs.shape[1]
    perturbed = list(range(num_passes - 1)) if perturbed is None else list(perturbed)
    if len(perturbed) != num_passes - 1:
        raise ValueError(f"{len(perturbed)} perturbed modalities for {num_passes - 1} passes")
    roles = default_roles(num_passes - 1) if roles is None else list(roles)
    if len(roles) != outputs.shape[0]:
        raise ValueError(f"{len(roles)} roles for {outputs.shape[0]} experts")
    regression = task == "regression"
    weights = outputs.new_ones(num_passes - 1, outputs.shape[2])
    if valid is not None:
        weights = valid.to(outputs.dtype)

    losses = []
    for expert, role in enumerate(roles):
        anchor, others = outputs[expert, 0], outputs[expert, 1:]  # [B, C], [P-1, B, C]
        if role in ("syn", "red"):
            terms = _agreement(anchor, others, regression, synergy=role == "syn")
            losses.append(_masked_mean(terms, weights))
            continue
        if role not in perturbed:
            losses.append(outputs.new_zeros(()))
            continue
        negative_pass = perturbed.index(role)
        positive_passes = [q for q, m in enumerate(perturbed) if m != role]
        if not positive_passes:
            losses.append(outputs.new_zeros(()))
            continue
        terms = _uniqueness(
            anchor, others[positive_passes], others[negative_pass], regression, margin
        )
        pair_weights = weights[positive_passes] * weights[negative_pass]
        losses.append(_masked_mean(terms, pair_weights))
    return torch.stack(losses)


def task_loss(
    prediction: Tensor,
    target: Tensor,
    task: str,
    *,
    class_weights: Tensor | None = None,
    regression_loss: str = "mse",
) -> Tensor:
    """Cross-entropy, BCE-with-logits, or MSE / SmoothL1 for regression.

    Args:
        prediction: [B, C] logits (or [B, 1] values).
        target: [B] class ids, [B, C] multi-hot, or [B, 1] values.
    """
    if task == "classification":
        return F.cross_entropy(prediction, target, weight=class_weights)
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(prediction, target.float())
    target = target.view_as(prediction).float()
    if regression_loss == "smooth_l1":
        return F.smooth_l1_loss(prediction, target)
    return F.mse_loss(prediction, target)


class LossParts(NamedTuple):
    total: Tensor
    task: Tensor
    interaction: Tensor  # mean over experts
    aux: Tensor


def total_loss(
    output,
    target: Tensor,
    task: str,
    *,
    interaction_weight: float,
    aux_weight: float = 0.01,
    class_weights: Tensor | None = None,
    regression_loss: str = "mse",
) -> LossParts:
    """L = L_task + lambda_int * mean_i L_int^i + lambda_gate * aux (METHOD.md section 3).

    ``output`` is an :class:`~i2moe.model.I2MoEOutput` or a vanilla model's output (which has
    no interaction losses).
    """
    main = task_loss(
        output.prediction,
        target,
        task,
        class_weights=class_weights,
        regression_loss=regression_loss,
    )
    interaction = getattr(output, "interaction_loss", None)
    interaction = interaction.mean() if interaction is not None else main.new_zeros(())
    total = main + interaction_weight * interaction + aux_weight * output.aux_loss
    return LossParts(total, main, interaction, output.aux_loss)
