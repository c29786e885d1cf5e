"""Low-rank tensor fusion (LRTF).

Liu et al. 2018, "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors" (ACL).
Tensor fusion takes the outer product of the modality vectors, each with a constant 1 appended
(so that unimodal and lower-order terms survive), and maps it linearly to H outputs. LRTF never
forms that tensor: the weight tensor is a sum of ``rank`` rank-1 terms, each a product of
modality-specific factors, so

    h = sum_r w_r * prod_m ([1, z_m] @ W_m^(r)) + b

with z_m the (pooled) embedding of modality m, W_m^(r) of shape [D_m + 1, H], w_r a scalar per
rank and b a bias.

Every factor is a registered ``nn.Parameter`` (in an ``nn.ParameterList``): the I2MoE authors'
code kept its factors as plain tensors, so they were neither trained nor saved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, FusionBuilder, SeparableFusion
from i2moe.fusion.late import POOLS, pool_tokens


class LowRankTensorFusion(SeparableFusion):
    """Low-rank multimodal tensor fusion (Liu et al. 2018).

    Separable: a modality's part is its projection by its factors, [1, z_m] @ W_m^(r).

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        hidden: output width H.
        rank: number of rank-1 terms r.
        pool: "mean" (D_m = D) or "flatten" (D_m = T_m * D) over each modality's tokens.
    """

    def __init__(
        self,
        *,
        dim: int,
        tokens: Sequence[int],
        hidden: int = 64,
        rank: int = 4,
        pool: str = "mean",
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if rank < 1:
            raise ValueError(f"rank must be at least 1, got {rank}")
        self.tokens = list(tokens)
        self.pool = pool
        in_dims = [t * dim if pool == "flatten" else dim for t in self.tokens]
        # Unit-variance projections ([1, z] has D_m + 1 entries) keep the product over M
        # modalities at unit variance; the authors' Xavier init on the 3-D factor shrinks
        # it geometrically with M.
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(rank, d + 1, hidden) / math.sqrt(d + 1)) for d in in_dims
        )
        self.rank_weights = nn.Parameter(torch.randn(rank) / math.sqrt(rank))
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.out_dim = hidden

    def modality_part(self, m: int, embedding: Tensor) -> tuple[Tensor]:
        """[B, T_m, D] -> (its projection by each rank's factor [B, r, H],)."""
        z = pool_tokens(embedding, self.pool)  # [B, D_m]
        z = torch.cat([z.new_ones(z.shape[0], 1), z], dim=-1)  # [B, D_m + 1]
        return (torch.einsum("bi,rih->brh", z, self.factors[m]),)

    def fuse_parts(self, parts: list[tuple[Tensor, ...]]) -> Fused:
        """Multiply the projections, sum the ranks -> Fused(latent [B, H], aux_loss 0)."""
        product = parts[0][0]
        for (projected,) in parts[1:]:
            product = product * projected  # [B, r, H]
        latent = torch.einsum("r,brh->bh", self.rank_weights, product) + self.bias  # [B, H]
        return Fused(latent, latent.new_zeros(()))


low_rank_tensor_fusion = FusionBuilder("lrtf", LowRankTensorFusion)
