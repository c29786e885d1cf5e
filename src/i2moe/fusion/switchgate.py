"""SwitchGate: the MulT-style transformer with a Switch (top-1) mixture-of-experts feed-forward.

Fedus, Zoph, Shazeer 2022, "Switch Transformers: Scaling to Trillion Parameter Models with
Simple and Efficient Sparsity" (JMLR). Each token is sent to the one FFN expert its router
prefers; the expert's output is scaled by the router probability (which is how the router
learns from the task loss). Each expert takes at most

    capacity = ceil(capacity_factor * tokens_in_batch / num_experts)

tokens, first come first served in [B, T] order; a token over capacity skips the layer and only
travels the residual connection. The load-balancing loss is

    num_experts * sum_i f_i * P_i,

f_i the fraction of tokens whose top-1 choice is expert i (before capacity), P_i the mean router
probability of expert i. It keeps its gradient through P_i (the I2MoE authors' code detached it,
so it never trained the router). The backbone's ``aux_loss`` is the mean over layers.

Routing is written densely so that it runs under ``torch.func.vmap``: each token's slot inside
its expert's buffer comes from a cumulative sum over one-hot assignments, tokens are written to
[num_experts, capacity, D] buffers with ``index_add`` (dropped tokens land in a spare row that
is thrown away) and read back with ``index_select`` from the expert outputs plus a zero row.
Memory and compute are O(capacity_factor * tokens), not O(num_experts * tokens).

:class:`ExpertFFN` and :class:`SparseTransformerFusion` are shared with MoE++.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, check_tokens, register_fusion
from i2moe.fusion.transformer import SelfAttention


class ExpertFFN(nn.Module):
    """E independent two-layer GELU feed-forward networks with stacked weights.

    Args:
        num_experts: number of experts E.
        dim: input and output width D.
        hidden: hidden width of each expert.
        dropout: dropout on the hidden activation.
    """

    def __init__(self, num_experts: int, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        # Same distribution as nn.Linear's default initialisation, per expert.
        bound_in, bound_hidden = 1.0 / math.sqrt(dim), 1.0 / math.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(num_experts, dim, hidden).uniform_(-bound_in, bound_in))
        self.b1 = nn.Parameter(torch.empty(num_experts, 1, hidden).uniform_(-bound_in, bound_in))
        self.w2 = nn.Parameter(
            torch.empty(num_experts, hidden, dim).uniform_(-bound_hidden, bound_hidden)
        )
        self.b2 = nn.Parameter(
            torch.empty(num_experts, 1, dim).uniform_(-bound_hidden, bound_hidden)
        )
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """[E, N, D] (expert e gets x[e]) -> [E, N, D]."""
        h = self.dropout(self.act(x @ self.w1 + self.b1))  # [E, N, hidden]
        return h @ self.w2 + self.b2


class SwitchMoE(nn.Module):
    """Switch (top-1) MoE feed-forward with capacity and load-balancing loss.

    Args:
        dim: token width D.
        num_experts: number of FFN experts E.
        hidden: hidden width of each expert.
        capacity_factor: expert capacity as a multiple of tokens / E.
        dropout: dropout inside the experts.
    """

    def __init__(
        self, dim: int, num_experts: int, hidden: int, capacity_factor: float, dropout: float
    ) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"num_experts must be at least 1, got {num_experts}")
        if capacity_factor <= 0:
            raise ValueError(f"capacity_factor must be positive, got {capacity_factor}")
        self.num_experts = num_experts
        self.capacity_factor = capacity_factor
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = ExpertFFN(num_experts, dim, hidden, dropout)

    def forward(
        self, x: Tensor, prev_logits: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, T, D] -> (output [B, T, D], load-balancing loss scalar, logits [B, T, E]).

        ``prev_logits`` is accepted for a uniform layer interface and ignored.
        """
        b, t, d = x.shape
        n, e = b * t, self.num_experts
        tokens = x.reshape(n, d)  # [N, D]
        logits = self.router(tokens)  # [N, E]
        probs = logits.softmax(dim=-1)  # [N, E]
        gate, index = probs.max(dim=-1)  # [N], [N]
        one_hot = (index[:, None] == torch.arange(e, device=x.device)).to(probs.dtype)  # [N, E]

        # Shapes are static under vmap, so the capacity is a Python int.
        capacity = max(1, math.ceil(self.capacity_factor * n / e))
        hits = one_hot.long()  # integer cumsum: CUDA has no deterministic float cumsum
        position = ((hits.cumsum(dim=0) - 1) * hits).sum(dim=-1)  # [N] rank in expert
        keep = position < capacity  # [N]
        spare = e * capacity  # row index that collects (and discards) dropped tokens
        slot = torch.where(keep, index * capacity + position.long(), spare)  # [N]
        buffers = tokens.new_zeros(spare + 1, d).index_add(0, slot, tokens)  # [E*C + 1, D]
        expert_out = self.experts(buffers[:spare].view(e, capacity, d))  # [E, C, D]
        padded = torch.cat([expert_out.reshape(spare, d), expert_out.new_zeros(1, d)])
        out = padded.index_select(0, slot) * gate[:, None]  # [N, D]; dropped tokens -> 0

        fraction = one_hot.mean(dim=0)  # [E] f_i, no gradient by nature
        mean_prob = probs.mean(dim=0)  # [E] P_i, carries the router gradient
        aux = e * (fraction * mean_prob).sum()
        return out.view(b, t, d), aux, logits.view(b, t, e)


class SparseBlock(nn.Module):
    """Pre-norm transformer block whose feed-forward is a sparse MoE layer.

    x + Attn(LN(x)), then x + MoE(LN(x)); the MoE layer also returns its auxiliary loss and its
    router logits (which MoE++ feeds to the next layer's router).

    Args:
        dim: token width D.
        num_heads: attention heads.
        moe: the feed-forward layer, ``moe(x, prev_logits) -> (out, aux, logits)``.
        dropout: dropout on attention and on both residual branches.
    """

    def __init__(self, dim: int, num_heads: int, moe: nn.Module, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.moe = moe
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, prev_logits: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, T, D] -> (x [B, T, D], aux scalar, router logits [B, T, E])."""
        x = x + self.dropout(self.attn(self.norm1(x)))
        out, aux, logits = self.moe(self.norm2(x), prev_logits)
        return x + self.dropout(out), aux, logits


class SparseTransformerFusion(nn.Module):
    """Joint transformer over all modality tokens with sparse MoE feed-forwards.

    Same layout as :class:`~i2moe.fusion.transformer.TransformerFusion` (learned positional
    embedding, pre-norm blocks, final LayerNorm, per-modality mean pool, concatenation), so
    H = M * D; ``aux_loss`` is the mean of the layers' auxiliary losses.

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        moes: one MoE feed-forward per layer.
        num_heads: attention heads.
        dropout: dropout inside the blocks.
    """

    def __init__(
        self,
        *,
        dim: int,
        tokens: Sequence[int],
        moes: Sequence[nn.Module],
        num_heads: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if not moes:
            raise ValueError("need at least one layer")
        self.tokens = list(tokens)
        self.position = nn.Parameter(torch.randn(sum(self.tokens), dim) * 0.02)
        self.blocks = nn.ModuleList(SparseBlock(dim, num_heads, moe, dropout) for moe in moes)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim * len(self.tokens)

    def forward(self, embeddings: list[Tensor]) -> Fused:
        """[B, T_m, D] per modality -> Fused(latent [B, M*D], aux_loss scalar)."""
        x = torch.cat(embeddings, dim=1) + self.position  # [B, T, D]
        logits = None
        aux_losses = []
        for block in self.blocks:
            x, aux, logits = block(x, logits)
            aux_losses.append(aux)
        x = self.norm(x)
        pooled = [part.mean(dim=1) for part in x.split(self.tokens, dim=1)]  # M x [B, D]
        return Fused(torch.cat(pooled, dim=-1), torch.stack(aux_losses).mean())


@register_fusion("switchgate")
def switchgate(
    *,
    num_modalities: int,
    dim: int,
    tokens: Sequence[int],
    num_experts: int = 4,
    capacity_factor: float = 1.25,
    num_layers: int = 2,
    num_heads: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.1,
) -> SparseTransformerFusion:
    """SwitchGate backbone: transformer fusion with Switch (top-1) MoE feed-forwards."""
    tokens = check_tokens(num_modalities, tokens)
    hidden = int(dim * mlp_ratio)
    moes = [
        SwitchMoE(dim, num_experts, hidden, capacity_factor, dropout) for _ in range(num_layers)
    ]
    return SparseTransformerFusion(
        dim=dim, tokens=tokens, moes=moes, num_heads=num_heads, dropout=dropout
    )
