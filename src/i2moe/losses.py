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
    evidence = getattr(output, "evidence", None)
    if evidence is not None:
        total = total + evidence.weight * evidence_loss(
            evidence.outputs,
            output.weights,
            target,
            task,
            roles=evidence.roles,
            perturbed=evidence.perturbed,
        )
    return LossParts(total, main, interaction, output.aux_loss)


class InteractionEvidence(NamedTuple):
    """Training passes kept for evidence-supervised reweighting (``docs/faithfulness.md``)."""

    outputs: Tensor  # [E, P, B, C] every expert on the intact and the perturbed passes
    perturbed: tuple[int, ...]  # the modality replaced in passes 1..P-1
    roles: tuple[Role, ...]  # the experts' roles
    weight: float  # lambda_ev


def _true_class_fit(outputs: Tensor, target: Tensor, task: str) -> Tensor:
    """How well outputs [..., B, C] predict the target, 0 at chance and 1 when certain."""
    if task == "classification":
        chance = 1.0 / outputs.shape[-1]
        index = target.view(*([1] * (outputs.dim() - 2)), -1, 1).expand(*outputs.shape[:-1], 1)
        probability = outputs.softmax(-1).gather(-1, index).squeeze(-1)
        return ((probability - chance) / (1.0 - chance)).clamp(0.0, 1.0)
    if task == "multilabel":
        probability = torch.where(target.bool(), outputs.sigmoid(), 1.0 - outputs.sigmoid())
        return (2.0 * probability.mean(-1) - 1.0).clamp(0.0, 1.0)
    error = (outputs - target.view(-1, 1).to(outputs.dtype)).pow(2).sum(-1)
    return torch.exp(-error)


def _required_passes(role: Role, perturbed: Sequence[int]) -> list[int]:
    """Passes an expert of this role must still predict from: the intact pass, plus every pass
    whose replaced modality the role does not need (uni_m: all but m; red: all; syn: none)."""
    if role == "syn":
        return [0]
    if role == "red":
        return list(range(len(perturbed) + 1))
    return [0] + [q + 1 for q, m in enumerate(perturbed) if m != role]


def evidence_targets(
    outputs: Tensor,
    target: Tensor,
    task: str,
    *,
    roles: Sequence[Role] | None = None,
    perturbed: Sequence[int] | None = None,
) -> Tensor:
    """Per-sample interaction evidence from the perturbed passes, as target weights [B, E].

    The fit f_e of expert e is the worst chance-normalised prediction of the true target over
    the passes its role must survive (:func:`_required_passes`). The most constrained role that
    fits wins: redundancy first (survives losing any one modality), then uniqueness (survives
    losing every other modality), then synergy (needs all)::

        t_red = f_red,   s = prod_m (1 - f_uni_m),
        t_syn = (1 - f_red) * s,   t_uni_m = (1 - f_red) * (1 - s) * f_uni_m / sum_k f_uni_k

    Unlike the output-similarity losses (paper section 3.2), these fits cannot be met by
    recognising the replacement noise: a label is predictable without a modality only if the
    remaining modalities carry it. Detached; the rows sum to 1.

    Args:
        outputs: [E, P, B, C] expert outputs, pass 0 intact.
        target: the training target of the batch.
        task: "classification", "multilabel" or "regression".
        roles: the experts' roles (default [0 .. n-1, "syn", "red"]).
        perturbed: the modality replaced in each pass 1..P-1 (default 0 .. P-2).
    """
    num_passes = outputs.shape[1]
    perturbed = list(range(num_passes - 1)) if perturbed is None else list(perturbed)
    roles = default_roles(num_passes - 1) if roles is None else list(roles)
    with torch.no_grad():
        fits = torch.stack(
            [
                _true_class_fit(outputs[e, _required_passes(role, perturbed)], target, task)
                .min(0)
                .values
                for e, role in enumerate(roles)
            ]
        )  # [E, B]
        uni = [e for e, role in enumerate(roles) if role not in ("syn", "red")]
        targets = torch.zeros_like(fits)
        red = fits[roles.index("red")] if "red" in roles else torch.zeros_like(fits[0])
        rest = 1.0 - red
        if uni:
            none = (1.0 - fits[uni]).prod(0)
            share = fits[uni] / fits[uni].sum(0).clamp_min(1e-8)
            targets[uni] = rest * (1.0 - none) * share
        else:
            none = torch.ones_like(red)
        if "syn" in roles:
            targets[roles.index("syn")] = rest * none
        if "red" in roles:
            targets[roles.index("red")] = red
        targets = targets / targets.sum(0).clamp_min(1e-8)
    return targets.T  # [B, E]


def evidence_loss(
    outputs: Tensor,
    weights: Tensor,
    target: Tensor,
    task: str,
    *,
    roles: Sequence[Role] | None = None,
    perturbed: Sequence[int] | None = None,
) -> Tensor:
    """Role task losses for the experts plus the reweighter's cross-entropy to the evidence.

    Every expert is trained on the target on each pass its role must survive (so its fit is
    measured, not assumed), and the reweighting weights [B, E] are trained towards
    :func:`evidence_targets`. Not in the paper: our change for faithful weights
    (``docs/faithfulness.md``).
    """
    num_passes = outputs.shape[1]
    perturbed = list(range(num_passes - 1)) if perturbed is None else list(perturbed)
    roles = default_roles(num_passes - 1) if roles is None else list(roles)
    role_losses = []
    for e, role in enumerate(roles):
        passes = outputs[e, _required_passes(role, perturbed)]  # [Q, B, C]
        role_losses.append(
            torch.stack([task_loss(p, target, task) for p in passes.unbind(0)]).mean()
        )
    targets = evidence_targets(outputs, target, task, roles=roles, perturbed=perturbed)
    routing = -(targets * weights.clamp_min(1e-8).log()).sum(-1).mean()
    return torch.stack(role_losses).mean() + routing
