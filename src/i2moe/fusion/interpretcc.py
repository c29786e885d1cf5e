"""InterpretCC-style gated fusion.

Swamy et al. 2024, "InterpretCC: Intrinsic User-Centric Interpretability through Global Mixture
of Experts". A small gating network looks at all modalities and decides, per sample, which
modalities the predictor may use; the predictor only sees the gated (masked) embeddings, so the
gates say which modalities a prediction rests on.

Gates are Gumbel-sigmoid samples: with logistic noise g = log(u) - log(1 - u), u ~ U(0, 1),

    soft = sigmoid((logit + g) / tau),

and with ``hard=True`` the forward value is the threshold ``soft > threshold`` (0 or 1) while
the gradient is that of ``soft`` (straight-through estimator). In eval mode there is no noise:
``sigmoid(logit / tau) > threshold`` (or the sigmoid itself when ``hard=False``), so inference is
deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, FusionBuilder, SeparableFusion
from i2moe.fusion.early import MLP


def gumbel_sigmoid(logits: Tensor, tau: float) -> Tensor:
    """Relaxed Bernoulli sample sigmoid((logits + logistic noise) / tau); same shape."""
    # Clamp away from 0 and 1 so the logistic noise stays finite.
    u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
    noise = torch.log(u) - torch.log1p(-u)
    return torch.sigmoid((logits + noise) / tau)


class InterpretCCFusion(SeparableFusion):
    """Per-modality gates from a gating network, masked embeddings into an MLP.

    Separable: a gate scales a modality's whole input block, so it scales that block's product
    with the MLP's first layer. A modality's part is its mean embedding (for the gating
    network) and that product; the gates are applied in ``fuse_parts``.

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        hidden: predictor MLP width, also the latent width H.
        num_layers: Linear layers in the predictor MLP.
        dropout: dropout between predictor MLP layers.
        gate_hidden: hidden width of the gating network.
        tau: Gumbel-sigmoid temperature.
        threshold: a gate is open when its (noisy) sigmoid exceeds this.
        hard: binary gates with a straight-through gradient; otherwise the soft sigmoid.
    """

    def __init__(
        self,
        *,
        dim: int,
        tokens: Sequence[int],
        hidden: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
        gate_hidden: int = 32,
        tau: float = 1.0,
        threshold: float = 0.5,
        hard: bool = True,
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        self.tokens = list(tokens)
        self.tau = tau
        self.threshold = threshold
        self.hard = hard
        num_modalities = len(self.tokens)
        # The gating network sees every modality, so a gate can depend on the others.
        self.gate = nn.Sequential(
            nn.Linear(num_modalities * dim, gate_hidden),
            nn.ReLU(),
            nn.Linear(gate_hidden, num_modalities),
        )
        self.starts = [sum(self.tokens[:m]) * dim for m in range(num_modalities)]
        self.mlp = MLP(sum(self.tokens) * dim, hidden, num_layers, dropout)
        self.out_dim = hidden

    def gates(self, embeddings: list[Tensor]) -> Tensor:
        """[B, T_m, D] per modality -> gate per modality [B, M] (in [0, 1]; 0/1 if hard)."""
        return self.gates_from_pooled(torch.cat([e.mean(dim=1) for e in embeddings], dim=-1))

    def gates_from_pooled(self, pooled: Tensor) -> Tensor:
        """Mean embeddings of all modalities [B, M * D] -> gates [B, M]."""
        logits = self.gate(pooled)  # [B, M]
        if self.training:
            soft = gumbel_sigmoid(logits, self.tau)
        else:
            soft = torch.sigmoid(logits / self.tau)
        if not self.hard:
            return soft
        hard = (soft > self.threshold).to(soft.dtype)
        if not self.training:
            return hard
        # soft - soft.detach() is exactly 0 forward, so gates are exactly 0/1; backward: d soft.
        return hard + (soft - soft.detach())

    def forward(self, embeddings: list[Tensor]) -> Fused:
        """[B, T_m, D] per modality -> Fused(latent [B, H], aux_loss 0)."""
        gates = self.gates(embeddings)  # [B, M]
        masked = [
            e.flatten(1) * gates[:, m, None] for m, e in enumerate(embeddings)
        ]  # M x [B, T_m * D]
        latent = self.mlp(torch.cat(masked, dim=-1))  # [B, H]
        return Fused(latent, latent.new_zeros(()))

    def modality_part(self, m: int, embedding: Tensor) -> tuple[Tensor, Tensor]:
        """[B, T_m, D] -> (mean embedding [B, D], first layer's product with its inputs [B, H])."""
        return embedding.mean(dim=1), self.mlp.input_part(embedding.flatten(1), self.starts[m])

    def fuse_parts(self, parts: list[tuple[Tensor, ...]]) -> Fused:
        """Gate each modality's product, then the rest of the MLP -> Fused(latent [B, H], 0)."""
        gates = self.gates_from_pooled(torch.cat([part[0] for part in parts], dim=-1))  # [B, M]
        gated = [part[1] * gates[:, m, None] for m, part in enumerate(parts)]  # M x [B, H]
        latent = self.mlp.from_input_parts(gated)  # [B, H]
        return Fused(latent, latent.new_zeros(()))


interpretcc = FusionBuilder("interpretcc", InterpretCCFusion)
