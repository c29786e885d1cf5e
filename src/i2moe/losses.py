"""The weakly supervised interaction losses and the training loss (docs/method.md section 3).

Shape letters: E experts, P passes (intact + one per perturbed modality), B batch, C outputs.
Pass 0 is the intact input; pass q >= 1 has modality ``perturbed[q - 1]`` replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Role = int | str  # a modality index (its uniqueness expert), "syn" or "red"


def default_roles(num_modalities: int) -> list[Role]:
    """Expert order everywhere: [uni_1 .. uni_n, syn, red]."""
    return [*range(num_modalities), "syn", "red"]


def _distances(anchor: Tensor, others: Tensor, regression: bool) -> Tensor:
    """[E, B, C] anchors, [E, Q, B, C] perturbed outputs -> [E, Q, B] distances."""
    difference = anchor.unsqueeze(1) - others
    if regression:
        return difference.pow(2).sum(-1)  # squared error
    # Euclidean, with the same eps as torch's pairwise_distance / TripletMarginLoss.
    return (difference + 1e-6).norm(dim=-1)


def interaction_losses(
    outputs: Tensor,
    task: str,
    *,
    roles: Sequence[Role] | None = None,
    perturbed: Sequence[int] | None = None,
    valid: Tensor | None = None,
    margin: float = 1.0,
) -> Tensor:
    """One interaction loss per expert, computed for all experts at once.

    Uniqueness expert i (paper eq. for L_uni): mean over the passes j != i of the triplet loss
    with anchor = intact output, positive = modality j replaced, negative = modality i replaced
    (margin 1, Euclidean; for regression a hinge on squared errors). Synergy: mean cosine
    similarity between intact and perturbed outputs (for regression exp(-squared error), which
    pushes away and is bounded). Redundancy: mean (1 - cosine) (regression: squared error).

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
    num_experts, num_passes, batch = outputs.shape[:3]
    perturbed = list(range(num_passes - 1)) if perturbed is None else list(perturbed)
    if len(perturbed) != num_passes - 1:
        raise ValueError(f"{len(perturbed)} perturbed modalities for {num_passes - 1} passes")
    roles = default_roles(num_passes - 1) if roles is None else list(roles)
    if len(roles) != num_experts:
        raise ValueError(f"{len(roles)} roles for {num_experts} experts")
    regression = task == "regression"
    device, dtype = outputs.device, outputs.dtype
    pass_weights = (
        outputs.new_ones(num_passes - 1, batch) if valid is None else valid.to(dtype)
    )  # [Q, B]
    anchor, others = outputs[:, 0], outputs[:, 1:]  # [E, B, C], [E, Q, B, C]

    distance = _distances(anchor, others, regression)  # [E, Q, B]
    # Agreement terms (synergy, redundancy) for every expert and pass: [E, Q, B].
    if regression:
        synergy_terms, redundancy_terms = torch.exp(-distance), distance
    else:
        cosine = F.cosine_similarity(anchor.unsqueeze(1).expand_as(others), others, dim=-1)
        synergy_terms, redundancy_terms = cosine, 1.0 - cosine

    # Uniqueness terms: the negative of expert e is the pass that replaced e's own modality.
    modality_of = torch.tensor([r if isinstance(r, int) else -1 for r in roles], device=device)
    pass_modality = torch.tensor(perturbed, device=device)
    is_negative = modality_of[:, None] == pass_modality[None, :]  # [E, Q]
    has_negative = is_negative.any(dim=1)  # [E]
    negative = (distance * is_negative[..., None].to(dtype)).sum(dim=1, keepdim=True)  # [E, 1, B]
    negative_weight = (pass_weights[None] * is_negative[..., None].to(dtype)).sum(1, keepdim=True)
    uniqueness_terms = F.relu(distance - negative + margin)
    # Pairs count when the pass is a positive (another modality) and both passes are valid.
    positive = (~is_negative & has_negative[:, None]).to(dtype)  # [E, Q]
    uniqueness_weights = positive[..., None] * pass_weights[None] * negative_weight

    is_syn = torch.tensor([r == "syn" for r in roles], device=device)[:, None, None]
    is_red = torch.tensor([r == "red" for r in roles], device=device)[:, None, None]
    terms = torch.where(
        is_syn, synergy_terms, torch.where(is_red, redundancy_terms, uniqueness_terms)
    )
    weights = torch.where(is_syn | is_red, pass_weights[None].expand_as(terms), uniqueness_weights)
    # Mean over the counted (pass, sample) pairs; 0 (still differentiable) where none count.
    return (terms * weights).sum(dim=(1, 2)) / weights.sum(dim=(1, 2)).clamp_min(1.0)


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
    """The training loss and its terms, each term unweighted."""

    total: Tensor
    task: Tensor
    interaction: Tensor  # mean over experts
    aux: Tensor
    evidence: Tensor | None = None  # 0 where the output carries no interaction evidence


def _loss_parts(
    output,
    target: Tensor,
    task: str,
    *,
    interaction_weight: float,
    gate_weight: float,
    evidence_weight: float,
    class_weights: Tensor | None,
    regression_loss: str,
) -> LossParts:
    main = task_loss(
        output.prediction,
        target,
        task,
        class_weights=class_weights,
        regression_loss=regression_loss,
    )
    interaction = getattr(output, "interaction_loss", None)
    interaction = interaction.mean() if interaction is not None else main.new_zeros(())
    total = main + interaction_weight * interaction + gate_weight * output.aux_loss
    evidence = getattr(output, "evidence", None)
    if evidence is None:
        evidence_term = main.new_zeros(())
    else:
        evidence_term = evidence_loss(
            evidence.outputs,
            output.weights,
            target,
            task,
            roles=evidence.roles,
            perturbed=evidence.perturbed,
        )
        total = total + evidence_weight * evidence_term
    return LossParts(total, main, interaction, output.aux_loss, evidence_term)


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
    """L = L_task + lambda_int * mean_i L_int^i + lambda_gate * aux (docs/method.md section 3.5).

    ``output`` is an :class:`~i2moe.model.I2MoEOutput` or a vanilla model's output (which has
    no interaction losses). Interaction evidence in the output adds its evidence loss, weighted
    by the weight it carries (``InteractionEvidence.weight``). :class:`I2MoELoss` computes the
    same with the weights held by the loss.
    """
    evidence = getattr(output, "evidence", None)
    return _loss_parts(
        output,
        target,
        task,
        interaction_weight=interaction_weight,
        gate_weight=aux_weight,
        evidence_weight=evidence.weight if evidence is not None else 0.0,
        class_weights=class_weights,
        regression_loss=regression_loss,
    )


TASKS = ("classification", "multilabel", "regression")
REGRESSION_LOSSES = ("mse", "smooth_l1")


class I2MoELoss(nn.Module):
    """The training loss of an I2MoE or a vanilla fusion model, from the model's named terms.

        L = L_task + lambda_int * mean_i L_int^i + lambda_gate * L_gate + lambda_ev * L_ev

    - L_task: the task loss of the weighted prediction (:func:`task_loss`);
    - L_int^i: expert i's weakly supervised interaction loss (paper Section 3.2,
      :func:`interaction_losses`), which the model computes in training; absent from a vanilla
      model's output;
    - L_gate: the sparse backbones' load-balancing loss (SwitchGate: Fedus et al. 2022,
      Section 2.2; MoE++: Jin et al. 2024), mean over experts; 0 for dense backbones;
    - L_ev: the evidence loss (:func:`evidence_loss`; not in the paper, ``docs/faithfulness.md``)
      of a model built with ``evidence``, present only in its training outputs.

    docs/method.md sections 3.3 (classification, multi-label) and 3.4 (regression) give the forms.

    Args:
        task: "classification", "multilabel" or "regression".
        interaction_weight: lambda_int.
        gate_weight: lambda_gate.
        evidence_weight: lambda_ev. An output that carries interaction evidence is refused
            while it is 0: such a model's reweighter learns from that term alone.
        class_weights: [C] cross-entropy class weights (classification); kept as a buffer.
        regression_loss: "mse" or "smooth_l1".
    """

    def __init__(
        self,
        task: str,
        *,
        interaction_weight: float = 0.5,
        gate_weight: float = 0.01,
        evidence_weight: float = 0.0,
        class_weights: Tensor | Sequence[float] | None = None,
        regression_loss: str = "mse",
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
        if regression_loss not in REGRESSION_LOSSES:
            raise ValueError(
                f"unknown regression_loss {regression_loss!r}; "
                f"valid: {', '.join(REGRESSION_LOSSES)}"
            )
        self.task = task
        self.interaction_weight = interaction_weight
        self.gate_weight = gate_weight
        self.evidence_weight = evidence_weight
        self.regression_loss = regression_loss
        if isinstance(class_weights, Tensor):
            class_weights = class_weights.detach().clone()
        elif class_weights is not None and len(class_weights) > 0:
            class_weights = torch.tensor(list(class_weights), dtype=torch.float32)
        else:
            class_weights = None
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", class_weights)

    @classmethod
    def for_model(cls, model: nn.Module, **options) -> I2MoELoss:
        """The loss for ``model``'s task (its ``task`` attribute, unless ``task`` is given).

        ``options`` are the other constructor arguments. For a model built with ``evidence``,
        ``evidence_weight`` defaults to the model's ``evidence_weight`` and must end up above 0.
        """
        task = options.pop("task", None) or getattr(model, "task", None)
        if task is None:
            raise ValueError(f"{type(model).__name__} records no task; pass task=...")
        evidence = getattr(model, "evidence", False)
        if evidence:
            options.setdefault("evidence_weight", model.evidence_weight)
        loss = cls(task, **options)
        if evidence and loss.evidence_weight <= 0:
            raise ValueError(
                "the model trains its reweighter on interaction evidence alone; "
                "pass evidence_weight > 0"
            )
        return loss

    def forward(
        self, output, target: Tensor, *, interaction_weight: float | None = None
    ) -> LossParts:
        """The loss of one batch.

        Args:
            output: an :class:`~i2moe.model.I2MoEOutput` or :class:`~i2moe.model.FusionOutput`.
            target: [B] class ids, [B, C] multi-hot, or [B, 1] values.
            interaction_weight: lambda_int for this call (e.g. 0 during a warm-up), instead of
                the loss's own.

        Returns:
            The total and its unweighted terms.
        """
        if getattr(output, "evidence", None) is not None and self.evidence_weight <= 0:
            raise ValueError(
                "the output carries interaction evidence (its model trains the reweighter on "
                "it alone) but evidence_weight is 0; give the loss the model's evidence weight"
            )
        return _loss_parts(
            output,
            target,
            self.task,
            interaction_weight=(
                self.interaction_weight if interaction_weight is None else interaction_weight
            ),
            gate_weight=self.gate_weight,
            evidence_weight=self.evidence_weight,
            class_weights=self.class_weights,
            regression_loss=self.regression_loss,
        )

    def extra_repr(self) -> str:
        return (
            f"task={self.task!r}, interaction_weight={self.interaction_weight}, "
            f"gate_weight={self.gate_weight}, evidence_weight={self.evidence_weight}"
        )


class InteractionEvidence(NamedTuple):
    """Training passes kept for evidence-supervised reweighting (``docs/faithfulness.md``)."""

    outputs: Tensor  # [E, P, B, C] every expert on the intact and the perturbed passes
    perturbed: tuple[int, ...]  # the modality replaced in passes 1..P-1
    roles: tuple[Role, ...]  # the experts' roles
    weight: float  # the model's evidence_weight, lambda_ev of total_loss


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
    fits as well as the less constrained ones wins: redundancy first (survives losing any one
    modality), then uniqueness (survives losing every other modality), then synergy (needs
    all). With f_uni = max_m f_uni_m, the ratios r = f_red / max(f_red, f_uni, f_syn) and
    u = f_uni / max(f_uni, f_syn) (each 0/0 = 0) make it independent of how well trained the
    experts already are::

        t_red = r,   t_uni_m = (1 - r) * u * f_uni_m / sum_k f_uni_k,   t_syn = (1 - r) * (1 - u)

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
        zeros = torch.zeros_like(fits[0])
        red = fits[roles.index("red")] if "red" in roles else zeros
        syn = fits[roles.index("syn")] if "syn" in roles else zeros
        best_uni = fits[uni].max(0).values if uni else zeros
        red_ratio = red / torch.maximum(torch.maximum(red, best_uni), syn).clamp_min(1e-8)
        uni_ratio = best_uni / torch.maximum(best_uni, syn).clamp_min(1e-8)
        if "syn" not in roles:
            uni_ratio = torch.ones_like(uni_ratio)
        targets = torch.zeros_like(fits)
        if uni:
            share = fits[uni] / fits[uni].sum(0).clamp_min(1e-8)
            targets[uni] = (1.0 - red_ratio) * uni_ratio * share
        if "syn" in roles:
            targets[roles.index("syn")] = (1.0 - red_ratio) * (1.0 - uni_ratio)
        if "red" in roles:
            targets[roles.index("red")] = red_ratio
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
