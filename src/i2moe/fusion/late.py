"""Late fusion (LF): one MLP per modality, then combine the per-modality representations.

The late-fusion baseline of the I2MoE paper (docs/method.md section 7; the MultiBench late-fusion
baseline, Liang et al. 2021): modalities interact only after each has been processed on its own.
Each modality is either mean-pooled over its tokens ([B, D]) or flattened ([B, T_m * D]) before
its MLP; the M outputs are concatenated ([B, M * H], the default) or summed ([B, H]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, FusionBuilder, SeparableFusion
from i2moe.fusion.early import MLP

POOLS = ("flatten", "mean")
COMBINES = ("concat", "sum")


def pool_tokens(embedding: Tensor, pool: str) -> Tensor:
    """[B, T, D] -> [B, T * D] ("flatten") or [B, D] ("mean")."""
    return embedding.flatten(1) if pool == "flatten" else embedding.mean(dim=1)


class LateFusion(SeparableFusion):
    """Late fusion: a separate MLP per modality, outputs concatenated or summed.

    Separable: a modality's part is its MLP's output.

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        hidden: width of each per-modality MLP.
        num_layers: Linear layers per MLP.
        dropout: dropout between MLP layers.
        pool: "flatten" (keep token order, T_m * D inputs) or "mean" (D inputs).
        combine: "concat" (H = M * hidden) or "sum" (H = hidden).
    """

    def __init__(
        self,
        *,
        dim: int,
        tokens: Sequence[int],
        hidden: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
        pool: str = "flatten",
        combine: str = "concat",
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
        self.tokens = list(tokens)
        self.pool = pool
        self.combine = combine
        self.mlps = nn.ModuleList(
            MLP(t * dim if pool == "flatten" else dim, hidden, num_layers, dropout)
            for t in self.tokens
        )
        self.out_dim = hidden * len(self.tokens) if combine == "concat" else hidden

    def modality_part(self, m: int, embedding: Tensor) -> tuple[Tensor]:
        """[B, T_m, D] -> (its MLP's output [B, hidden],)."""
        return (self.mlps[m](pool_tokens(embedding, self.pool)),)

    def fuse_parts(self, parts: list[tuple[Tensor, ...]]) -> Fused:
        """Concatenate or sum the M outputs -> Fused(latent [B, H], aux_loss 0)."""
        parts = [part[0] for part in parts]  # M x [B, hidden]
        if self.combine == "concat":
            latent = torch.cat(parts, dim=-1)  # [B, M * hidden]
        else:
            latent = torch.stack(parts).sum(dim=0)  # [B, hidden]
        return Fused(latent, latent.new_zeros(()))


late_fusion = FusionBuilder("lf", LateFusion)
