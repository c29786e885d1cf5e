"""The I2MoE model and the vanilla fusion model it is compared with (METHOD.md sections 2-4).

Shape letters: E experts (n+2), P passes (1 + perturbed modalities), M modalities (n),
B batch, T tokens, D width, H fused width, C outputs.
"""

from __future__ import annotations

import hashlib
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
    evidence: InteractionEvidence | None = None  # training passes, with evidence_weight > 0


class FusionOutput(NamedTuple):
    """What :class:`FusionModel` (vanilla fusion) returns."""

    prediction: Tensor  # [B, C]
    aux_loss: Tensor  # scalar


class PredictionHead(nn.Module):
    """MLP head: [B, H] -> [B, C]; ``num_layers=1`` is a single Linear."""

    def __init__(
        self, in_features: int, num_outputs: int, *, hidden: int = 64, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.net = mlp(in_features, num_outputs, hidden=hidden, num_layers=num_layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ModalityEncoders(nn.Module):
    """Runs each modality's encoder once and returns token embeddings [B, T_m, D]."""

    def __init__(self, encoders: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.names = list(encoders)
        self.encoders = nn.ModuleDict(encoders)

    def forward(self, inputs: Mapping[str, Tensor]) -> list[Tensor]:
        missing = [name for name in self.names if name not in inputs]
        if missing:
            raise KeyError(f"inputs lack modalities {missing}; expected {self.names}")
        embeddings = []
        for name in self.names:
            emb = self.encoders[name](inputs[name])
            embeddings.append(emb.unsqueeze(1) if emb.dim() == 2 else emb)  # [B, T, D]
        return embeddings


class FusionModel(nn.Module):
    """Vanilla fusion: one backbone and head on the encoders' embeddings.

    Args:
        encoders: modality name -> encoder, in the model's modality order.
        expert: the backbone with its head.
    """

    def __init__(self, *, encoders: Mapping[str, nn.Module], expert: InteractionExpert) -> None:
        super().__init__()
        self.encoders = ModalityEncoders(encoders)
        self.expert = expert

    @property
    def modality_names(self) -> list[str]:
        return self.encoders.names

    def forward(self, inputs: Mapping[str, Tensor], observed: Tensor | None = None) -> FusionOutput:
        embeddings = self.encoders(inputs)
        if observed is not None:  # missing modalities become zeros
            embeddings = [
                emb * observed[:, m, None, None].to(emb.dtype) for m, emb in enumerate(embeddings)
            ]
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
        evidence_weight: 0 is the paper's training. Above 0 (our change, not in the paper;
            ``docs/faithfulness.md``), the reweighter no longer gets the task gradient and is
            trained instead on interaction evidence from the perturbed passes
            (:func:`i2moe.losses.evidence_loss`, weighted by this value).
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
        self.evidence_weight = evidence_weight

    @property
    def modality_names(self) -> list[str]:
        return self.encoders.names

    @property
    def expert_names(self) -> list[str]:
        return [r if isinstance(r, str) else f"uni_{self.modality_names[r]}" for r in self.roles]

    def embed(self, inputs: Mapping[str, Tensor], observed: Tensor | None = None) -> list[Tensor]:
        """Encode once; a missing modality's embedding is replaced like a perturbed one.

        In eval mode the ``random`` strategy's noise for a missing modality is drawn from a
        generator seeded by the sample's observed inputs, so a prediction is the same on every
        call and in every batch (see ``docs/reliability.md``).
        """
        embeddings = self.encoders(inputs)
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

        Args:
            inputs: modality name -> batch [B, ...].
            observed: [B, M] bool, False where a modality is missing.
            perturbed: modalities to perturb (default: by ``perturb_k``); training only.
            replacements: modality -> [E, B, T, D] replacements to use instead of fresh draws
                (lets the fast and the reference paths be compared on the same noise).
        """
        embeddings = self.embed(inputs, observed)
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
                else result.latent.unflatten(1, (-1, batch))
            )
            valid = None if observed is None else observed[:, perturbed].T  # [P-1, B]
            task = self.task if self.interaction_space == "output" else "classification"
            interaction_loss = interaction_losses(
                compared, task, roles=self.roles, perturbed=perturbed, valid=valid
            )
            intact = outputs[:, 0]  # [E, B, C]
            if self.evidence_weight > 0:
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
