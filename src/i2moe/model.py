"""The I2MoE model and the vanilla fusion model it is compared with (docs/method.md).

Shape letters: E experts (n+2), P passes (1 + perturbed modalities), M modalities (n),
B batch, T tokens, D width, H fused width, C outputs.

A missing modality (``observed`` False) has its raw input set to zeros before the encoders
(``torch.where``, so a NaN placeholder stays out of the encoders' outputs and gradients); the
models then replace its embedding (I2MoE: like a perturbed one; vanilla fusion: by zeros).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from i2moe.execution import ExpertStack, InteractionExpert
from i2moe.layers import mlp
from i2moe.losses import InteractionEvidence, Role, default_roles, interaction_losses
from i2moe.perturbation import Perturbation


class I2MoEOutput(NamedTuple):
    """What :class:`I2MoE` returns."""

    prediction: Tensor  # [B, C] weighted sum of the experts' intact outputs
    expert_outputs: Tensor  # [B, E, C]
    weights: Tensor  # [B, E], rows sum to 1
    interaction_loss: Tensor  # [E], zeros when no perturbed passes ran
    aux_loss: Tensor  # scalar, the backbones' auxiliary (load-balancing) loss
    evidence: InteractionEvidence | None = None  # training passes, when I2MoE.evidence


class FusionOutput(NamedTuple):
    """What :class:`VanillaFusion` (vanilla fusion) returns."""

    prediction: Tensor  # [B, C]
    aux_loss: Tensor  # scalar


class PredictionHead(nn.Module):
    """MLP head: [B, H] -> [B, C]; ``num_layers=1`` is a single Linear."""

    def __init__(
        self, in_features: int, num_outputs: int, *, hidden: int = 64, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.num_outputs = num_outputs
        self.net = mlp(in_features, num_outputs, hidden=hidden, num_layers=num_layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def head_outputs(head: nn.Module) -> int:
    """C of a prediction head: its ``num_outputs``, else its last Linear's ``out_features``."""
    if hasattr(head, "num_outputs"):
        return int(head.num_outputs)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise AttributeError(f"cannot tell the outputs of a {type(head).__name__} head")
    return linears[-1].out_features


def _zero_missing(x: Tensor, present: Tensor) -> Tensor:
    """x [B, ...] with the rows where ``present`` [B] is False set to zeros."""
    present = present.to(torch.bool).reshape(-1, *([1] * (x.dim() - 1)))
    return torch.where(present, x, x.new_zeros(()))


class ModalityEncoders(nn.Module):
    """Runs each modality's encoder once and returns token embeddings [B, T_m, D]."""

    def __init__(self, encoders: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.names = list(encoders)
        self.encoders = nn.ModuleDict(encoders)

    def forward(self, inputs: Mapping[str, Tensor], observed: Tensor | None = None) -> list[Tensor]:
        """Encode every modality.

        Args:
            inputs: modality name -> batch [B, ...].
            observed: [B, M] bool; where False, the raw input is replaced by zeros before its
                encoder runs, so whatever the missing rows hold (NaN included) reaches neither
                the embeddings nor the encoders' gradients.

        Returns:
            M embeddings [B, T_m, D] in modality order (a vector [B, D] becomes T_m = 1).
        """
        missing = [name for name in self.names if name not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing}; expected {self.names}")
        embeddings = []
        for m, name in enumerate(self.names):
            x = inputs[name] if observed is None else _zero_missing(inputs[name], observed[:, m])
            emb = self.encoders[name](x)
            embeddings.append(emb.unsqueeze(1) if emb.dim() == 2 else emb)  # [B, T, D]
        return embeddings


class VanillaFusion(nn.Module):
    """Vanilla fusion: one backbone and head on the encoders' embeddings.

    Args:
        encoders: modality name -> encoder, in the model's modality order.
        expert: the backbone with its head.
        task: "classification", "multilabel" or "regression" (None: not recorded; a loss
            built with :meth:`i2moe.losses.I2MoELoss.for_model` then needs it given).
    """

    def __init__(
        self,
        *,
        encoders: Mapping[str, nn.Module],
        expert: InteractionExpert,
        task: str | None = None,
    ) -> None:
        super().__init__()
        self.encoders = ModalityEncoders(encoders)
        self.expert = expert
        self.task = task

    @property
    def modality_names(self) -> list[str]:
        return self.encoders.names

    @property
    def num_outputs(self) -> int:
        """C, the width of a prediction."""
        return head_outputs(self.expert.head)

    def forward(self, inputs: Mapping[str, Tensor], observed: Tensor | None = None) -> FusionOutput:
        """inputs: name -> [B, ...]; observed: [B, M] bool -> FusionOutput(prediction [B, C])."""
        embeddings = self.encoders(inputs, observed)
        if observed is not None:  # missing modalities become zeros
            embeddings = [_zero_missing(emb, observed[:, m]) for m, emb in enumerate(embeddings)]
        _, output, aux = self.expert(embeddings)
        return FusionOutput(output, aux)


def _sample_keyed_noise(
    inputs: Sequence[Tensor], observed: Tensor, modality: int, like: Tensor
) -> Tensor:
    """Standard normal noise [B, T, D] for the samples lacking ``modality`` (zeros elsewhere).

    Each sample's generator is seeded by a hash of its observed modalities' input values, so the
    noise depends on the sample alone: not on the global random state, the batch, or the order.
    """
    noise = torch.zeros_like(like)
    rows = (~observed[:, modality]).nonzero().flatten()
    if len(rows) == 0:
        return noise
    chosen = [value.index_select(0, rows).detach().cpu() for value in inputs]
    seen = observed.index_select(0, rows).cpu()
    draws = []
    for i in range(len(rows)):
        digest = hashlib.blake2b(f"{modality}:{seen[i].tolist()}".encode(), digest_size=8)
        for q, value in enumerate(chosen):
            if seen[i, q]:
                digest.update(value[i].contiguous().reshape(-1).view(torch.uint8).numpy())
        generator = torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little") >> 1)
        draws.append(torch.randn(like.shape[1:], generator=generator))
    noise[rows] = torch.stack(draws).to(like)
    return noise


class I2MoE(nn.Module):
    """Interpretable multimodal interaction-aware mixture of experts.

    Args:
        encoders: modality name -> encoder (output [B, D] or [B, T, D], the same D for all),
            in the model's modality order.
        experts: E experts of one architecture (:class:`InteractionExpert`), in ``roles`` order.
            Their weights are copied into stacked parameters (:class:`ExpertStack`);
            :meth:`expert` gives one back as a module.
        reweighting: maps the pooled clean embeddings [B, M*D] to weights [B, E].
        task: "classification", "multilabel" or "regression".
        perturbation: what replaces a modality in a perturbed pass (and a missing modality).
        roles: the experts' roles, default [0 .. M-1, "syn", "red"].
        interaction: run the perturbed passes and interaction losses in training (False is the
            No-Interaction ablation).
        interaction_space: "output" (the method) or "latent" (Latent-Contrastive ablation).
        perturb_k: perturb only a random k of the M modalities per step (Less-Forward);
            None perturbs all.
        execution: "vmap" (fast path) or "loop" (reference path).
        expert_chunk_size: experts per vmap call (None: all in one call).
        evidence: evidence-supervised reweighting (our change, not in the paper;
            ``docs/faithfulness.md``): in training the output carries the interaction evidence
            of the perturbed passes (:class:`~i2moe.losses.InteractionEvidence`) and the
            prediction uses detached weights, so the reweighter learns from the evidence term
            of the loss (:class:`~i2moe.losses.I2MoELoss` ``evidence_weight``) instead of the
            task loss. False is the paper's training.
        evidence_weight: above 0 turns ``evidence`` on and is the weight
            :func:`~i2moe.losses.total_loss` gives the evidence term (carried in
            ``InteractionEvidence.weight``); :meth:`~i2moe.losses.I2MoELoss.for_model` takes
            it as its default.
    """

    def __init__(
        self,
        *,
        encoders: Mapping[str, nn.Module],
        experts: Sequence[nn.Module],
        reweighting: nn.Module,
        task: str,
        perturbation: Perturbation | None = None,
        roles: Sequence[Role] | None = None,
        interaction: bool = True,
        interaction_space: str = "output",
        perturb_k: int | None = None,
        execution: str = "vmap",
        expert_chunk_size: int | None = None,
        evidence: bool = False,
        evidence_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoders = ModalityEncoders(encoders)
        num_modalities = len(self.encoders.names)
        self.roles = list(roles) if roles is not None else default_roles(num_modalities)
        if len(self.roles) != len(experts):
            raise ValueError(f"{len(experts)} experts for roles {self.roles}")
        if interaction_space not in ("output", "latent"):
            raise ValueError(
                f"interaction_space must be 'output' or 'latent', not {interaction_space!r}"
            )
        if perturb_k is not None and not 1 <= perturb_k <= num_modalities:
            raise ValueError(f"perturb_k must be in 1..{num_modalities}, got {perturb_k}")
        self.experts = ExpertStack(experts, execution, expert_chunk_size)
        self.reweighting = reweighting
        self.perturbation = perturbation or Perturbation("random", num_modalities)
        self.task = task
        self.interaction = interaction
        self.interaction_space = interaction_space
        self.perturb_k = perturb_k
        self.evidence = evidence or evidence_weight > 0
        self.evidence_weight = evidence_weight

    @property
    def modality_names(self) -> list[str]:
        return self.encoders.names

    @property
    def expert_names(self) -> list[str]:
        return [r if isinstance(r, str) else f"uni_{self.modality_names[r]}" for r in self.roles]

    @property
    def num_outputs(self) -> int:
        """C, the width of a prediction (and of every expert's output)."""
        return head_outputs(self.experts.stacked.head)

    def expert(self, e: int | str) -> InteractionExpert:
        """Expert ``e`` (an index into, or a name of, :attr:`expert_names`) as its own module.

        Its parameters are views of the stacked weights (:meth:`ExpertStack.expert`: shared
        storage, no shared gradients), so ``model.expert(e)(embeddings)`` computes expert e's
        part of the model's forward.
        """
        if isinstance(e, str):
            if e not in self.expert_names:
                raise KeyError(f"no expert {e!r}; experts are {self.expert_names}")
            e = self.expert_names.index(e)
        return self.experts.expert(e)

    def embed(self, inputs: Mapping[str, Tensor], observed: Tensor | None = None) -> list[Tensor]:
        """Encode once; a missing modality's embedding is replaced like a perturbed one.

        A missing modality's raw input is zeroed before its encoder (see
        :class:`ModalityEncoders`). In eval mode the ``random`` strategy's noise for a missing
        modality is drawn from a generator seeded by the sample's observed inputs, so a
        prediction is the same on every call and in every batch (see ``docs/reliability.md``).

        Returns:
            M embeddings [B, T_m, D] in modality order, what :meth:`forward_embeddings` takes.
        """
        embeddings = self.encoders(inputs, observed)
        if self.training:
            self.perturbation.update(embeddings, observed)
        if observed is None:
            return embeddings
        keyed = not self.training and self.perturbation.strategy == "random"
        values = [inputs[name] for name in self.modality_names]
        return [
            torch.where(
                observed[:, m, None, None],
                emb,
                _sample_keyed_noise(values, observed, m, emb)
                if keyed
                else self.perturbation.replacement(m, emb, 1)[0],
            )
            for m, emb in enumerate(embeddings)
        ]

    def choose_perturbed(self) -> list[int]:
        """Modalities to perturb this step: all, or a random k (Less-Forward)."""
        num_modalities = len(self.modality_names)
        if self.perturb_k is None:
            return list(range(num_modalities))
        return sorted(torch.randperm(num_modalities)[: self.perturb_k].tolist())

    def replacements(
        self, embeddings: Sequence[Tensor], perturbed: Sequence[int]
    ) -> dict[int, Tensor]:
        """Fresh replacements [E, B, T, D] for each perturbed modality."""
        e = self.experts.num_experts
        return {m: self.perturbation.replacement(m, embeddings[m], e) for m in perturbed}

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        observed: Tensor | None = None,
        *,
        perturbed: Sequence[int] | None = None,
        replacements: Mapping[int, Tensor] | None = None,
    ) -> I2MoEOutput:
        """Predict, and in training also compute the interaction losses.

        Equals ``forward_embeddings(embed(inputs, observed), observed, ...)``.

        Args:
            inputs: modality name -> batch [B, ...].
            observed: [B, M] bool, False where a modality is missing.
            perturbed: modalities to perturb (default: by ``perturb_k``); training only.
            replacements: modality -> [E, B, T, D] replacements to use instead of fresh draws
                (lets the fast and the reference paths be compared on the same noise).
        """
        return self.forward_embeddings(
            self.embed(inputs, observed),
            observed,
            perturbed=perturbed,
            replacements=replacements,
        )

    def forward_embeddings(
        self,
        embeddings: Sequence[Tensor] | Mapping[str, Tensor],
        observed: Tensor | None = None,
        *,
        perturbed: Sequence[int] | None = None,
        replacements: Mapping[int, Tensor] | None = None,
    ) -> I2MoEOutput:
        """Everything after the encoders: reweighting, experts, prediction (paper Section 3).

        In eval mode this is the inference forward on the given embeddings, deterministic and
        without perturbed passes: interpretation code replaces one modality's embedding from
        :meth:`embed` and runs it again. In training mode the perturbed passes and the
        interaction losses run too.

        Args:
            embeddings: M tensors [B, T_m, D] in modality order (as :meth:`embed` returns
                them, a missing modality already replaced), or modality name -> [B, T_m, D].
            observed: [B, M] bool; in training, passes that perturb a modality missing from a
                sample are left out of its interaction losses. Unused in eval mode.
            perturbed: modalities to perturb (default: by ``perturb_k``); training only.
            replacements: modality -> [E, B, T, D] replacements to use instead of fresh draws.
        """
        if isinstance(embeddings, Mapping):
            missing = [name for name in self.modality_names if name not in embeddings]
            if missing:
                raise KeyError(f"embeddings lack modalities {missing}")
            embeddings = [embeddings[name] for name in self.modality_names]
        embeddings = list(embeddings)
        if len(embeddings) != len(self.modality_names):
            raise ValueError(f"{len(embeddings)} embeddings for modalities {self.modality_names}")
        pooled = torch.cat([emb.mean(dim=1) for emb in embeddings], dim=-1)  # [B, M*D]
        weights = self.reweighting(pooled)  # [B, E]
        batch = len(pooled)
        evidence = None
        weights_for_prediction = weights

        if self.training and self.interaction:
            perturbed = self.choose_perturbed() if perturbed is None else list(perturbed)
            if replacements is None:
                replacements = self.replacements(embeddings, perturbed)
            result = self.experts.run_passes(embeddings, perturbed, replacements)
            outputs = result.output.unflatten(1, (-1, batch))  # [E, P, B, C]
            compared = (
                outputs
                if self.interaction_space == "output"
                else result.latent.unflatten(1, (-1, batch))  # [E, P, B, H]
            )
            valid = None if observed is None else observed[:, perturbed].T  # [P-1, B]
            task = self.task if self.interaction_space == "output" else "classification"
            interaction_loss = interaction_losses(
                compared, task, roles=self.roles, perturbed=perturbed, valid=valid
            )
            intact = outputs[:, 0]  # [E, B, C]
            if self.evidence:
                evidence = InteractionEvidence(
                    outputs, tuple(perturbed), tuple(self.roles), self.evidence_weight
                )
                weights_for_prediction = weights.detach()  # the reweighter learns from evidence
        else:
            result = self.experts(embeddings)
            intact = result.output  # [E, B, C]
            interaction_loss = intact.new_zeros(self.experts.num_experts)

        prediction = torch.einsum("be,ebc->bc", weights_for_prediction, intact)
        return I2MoEOutput(
            prediction=prediction,
            expert_outputs=intact.transpose(0, 1),
            weights=weights,
            interaction_loss=interaction_loss,
            aux_loss=result.aux_loss.mean(),
            evidence=evidence,
        )


def __getattr__(name: str) -> type:
    if name == "FusionModel":
        warnings.warn(
            "i2moe.model.FusionModel is deprecated; use i2moe.model.VanillaFusion",
            DeprecationWarning,
            stacklevel=2,
        )
        return VanillaFusion
    raise AttributeError(f"module 'i2moe.model' has no attribute {name!r}")
