"""MulT-style transformer fusion (docs/method.md section 7): joint self-attention over all modality
tokens with a learned positional embedding, pre-norm residual blocks, per-modality mean pooling.

Attention is written with plain matmuls rather than ``scaled_dot_product_attention`` because
the latter has no batching rule under ``torch.func.vmap`` on CPU and would fall back to a loop
over experts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, FusionBuilder, SeparableFusion


class SelfAttention(nn.Module):
    """Multi-head self-attention. Shapes: [B, T, D] -> [B, T, D]."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.attend(self.qkv(x))

    def attend(self, qkv: Tensor) -> Tensor:
        """Attention from the projected queries, keys and values [B, T, 3D] -> [B, T, D]."""
        b, t, width = qkv.shape
        d, h = width // 3, self.num_heads
        q, k, v = qkv.view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)  # 3 x [B, H, T, D/H]
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # [B, H, T, T]
        attended = self.dropout(scores.softmax(dim=-1)) @ v  # [B, H, T, D/H]
        return self.proj(attended.transpose(1, 2).reshape(b, t, d))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, qkv: Tensor | None = None) -> Tensor:
        """[B, T, D] -> [B, T, D]; ``qkv`` is ``attn.qkv(norm1(x))`` when already computed."""
        if qkv is None:
            qkv = self.attn.qkv(self.norm1(x))
        x = x + self.dropout(self.attn.attend(qkv))
        return x + self.dropout(self.mlp(self.norm2(x)))


class TransformerFusion(SeparableFusion):
    """Joint transformer over the tokens of all modalities.

    Separable (:class:`~i2moe.fusion.base.SeparableFusion`): up to the first attention every
    token is processed alone, so a modality's part is its tokens plus their positions and the
    first block's normalised query/key/value projection.

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        num_layers: transformer blocks.
        num_heads: attention heads.
        mlp_ratio: feed-forward width as a multiple of D.
        dropout: dropout inside the blocks.
    """

    def __init__(
        self,
        *,
        dim: int,
        tokens: Sequence[int],
        num_layers: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.tokens = list(tokens)
        self.position = nn.Parameter(torch.randn(sum(self.tokens), dim) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim * len(self.tokens)

    def forward(self, embeddings: list[Tensor]) -> Fused:
        """[B, T_m, D] per modality -> Fused(latent [B, M*D], aux_loss 0)."""
        x = torch.cat(embeddings, dim=1) + self.position  # [B, T, D]
        for block in self.blocks:
            x = block(x)
        return self._pool(x)

    def modality_part(self, m: int, embedding: Tensor) -> tuple[Tensor, ...]:
        """[B, T_m, D] -> (tokens with positions [B, T_m, D], first block's qkv [B, T_m, 3D])."""
        return self.modality_parts([(m, embedding)])[0]

    def modality_parts(self, items: Sequence[tuple[int, Tensor]]) -> list[tuple[Tensor, ...]]:
        """Up to the first attention every token is alone: one projection for all items."""
        positions = self.position.split(self.tokens)  # M x [T_m, D]
        x = torch.cat([x for _, x in items], dim=1) + torch.cat([positions[m] for m, _ in items])
        sizes = [self.tokens[m] for m, _ in items]
        if not self.blocks:
            return [(part,) for part in x.split(sizes, dim=1)]
        first = self.blocks[0]
        qkv = first.attn.qkv(first.norm1(x))  # [B, T', 3D]
        return list(zip(x.split(sizes, dim=1), qkv.split(sizes, dim=1), strict=True))

    def fuse_parts(self, parts: list[tuple[Tensor, ...]]) -> Fused:
        """Joint attention over all tokens -> Fused(latent [B, M*D], aux_loss 0)."""
        x = torch.cat([part[0] for part in parts], dim=1)  # [B, T, D]
        for i, block in enumerate(self.blocks):
            qkv = torch.cat([part[1] for part in parts], dim=1) if i == 0 else None
            x = block(x, qkv)
        return self._pool(x)

    def _pool(self, x: Tensor) -> Fused:
        """Final norm and per-modality mean of the tokens [B, T, D] -> Fused([B, M*D], 0)."""
        x = self.norm(x)
        pooled = [part.mean(dim=1) for part in x.split(self.tokens, dim=1)]  # M x [B, D]
        return Fused(torch.cat(pooled, dim=-1), x.new_zeros(()))


transformer = FusionBuilder("transformer", TransformerFusion)
