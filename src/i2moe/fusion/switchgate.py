"""SwitchGate: the MulT-style transformer with a Switch (top-1) mixture-of-experts feed-forward.

Fedus, Zoph, Shazeer 2022, "Switch Transformers: Scaling to Trillion Parameter Models with
Simple and Efficient Sparsity" (JMLR). Each token is sent to the one FFN expert its router
prefers; the expert's output is scaled by the router probability (which is how the router
learns from the task loss). Tokens are routed in groups, GShard's local group dispatching
(Lepikhin et al. 2021, Section 2.2): a call's batch of B rows is ``groups`` = G equal blocks of
B / G rows, and each expert takes at most

    capacity = ceil(capacity_factor * tokens_in_group / num_experts)

tokens of a group, first come first served in [B / G, T] order within the group; a token over
capacity skips the layer and only travels the residual connection. The load-balancing loss of
a group is

    num_experts * sum_i f_i * P_i,

f_i the fraction of the group's tokens whose top-1 choice is expert i (before capacity), P_i
the mean router probability of expert i; a layer's loss is the mean over groups. It keeps its
gradient through P_i (the I2MoE authors' code detached it, so it never trained the router). The
backbone's ``aux_loss`` is the mean over layers.

A plain call is one group. I2MoE's training folds its P passes into the batch, pass-major
(``i2moe.execution.fold_passes``), and calls the backbone with ``groups=P``: each pass is then
routed exactly as if it ran alone, with its own capacity, slot order and load-balancing loss
(:attr:`SparseTransformerFusion.batch_groups`).

Routing is written densely so that it runs under ``torch.func.vmap``: each token's slot inside
its expert's buffer comes from a cumulative sum over one-hot assignments within its group,
tokens are written to [num_experts, G * capacity, D] buffers with ``index_add`` (dropped
tokens land in a spare row that is thrown away) and read back with ``index_select`` from the
expert outputs plus a zero row. Memory and compute are O(capacity_factor * tokens), not
O(num_experts * tokens).

:class:`ExpertFFN` and :class:`SparseTransformerFusion` are shared with MoE++.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, FusionBuilder
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


def rows_per_group(batch: int, groups: int) -> int:
    """Rows per group of a batch of ``batch`` rows cut into ``groups`` equal blocks."""
    if groups < 1 or batch % groups:
        raise ValueError(f"a batch of {batch} rows does not split into {groups} equal groups")
    return batch // groups


class SwitchRouting(NamedTuple):
    """Where a :class:`SwitchMoE` layer sends each token: G groups of N tokens (B / G rows)."""

    logits: Tensor  # [B, T, E] router logits
    probs: Tensor  # [G, N, E] router probabilities
    expert: Tensor  # [G, N] top-1 expert
    gate: Tensor  # [G, N] its probability, the scale of the expert's output
    kept: Tensor  # [G, N] bool, False for a token over its expert's capacity (dropped)
    slot: Tensor  # [G, N] row in the [E * G * capacity + 1] dispatch buffer (last: dropped)
    capacity: int  # tokens per expert and group


class SwitchMoE(nn.Module):
    """Switch (top-1) MoE feed-forward with capacity and load-balancing loss.

    Args:
        dim: token width D.
        num_experts: number of FFN experts E.
        hidden: hidden width of each expert.
        capacity_factor: expert capacity as a multiple of a group's tokens / E.
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

    def route(self, x: Tensor, groups: int = 1) -> SwitchRouting:
        """Route x [B, T, D], its batch cut into ``groups`` equal blocks routed independently."""
        b, t, _ = x.shape
        n, e = rows_per_group(b, groups) * t, self.num_experts
        logits = self.router(x)  # [B, T, E]
        probs = logits.reshape(groups, n, e).softmax(dim=-1)  # [G, N, E]
        gate, expert = probs.max(dim=-1)  # [G, N], [G, N]
        # Shapes are static under vmap, so the capacity is a Python int.
        capacity = max(1, math.ceil(self.capacity_factor * n / e))
        # Integer cumsum (CUDA has no deterministic float cumsum), along each group's tokens.
        hits = (expert[..., None] == torch.arange(e, device=x.device)).long()  # [G, N, E]
        position = ((hits.cumsum(dim=1) - 1) * hits).sum(dim=-1)  # [G, N] rank in expert
        kept = position < capacity
        # Expert i owns buffer rows [i * per_expert, (i + 1) * per_expert); group g's tokens
        # sit from g * capacity on. Row e * per_expert collects the dropped tokens.
        per_expert = groups * capacity
        offset = torch.arange(groups, device=x.device)[:, None] * capacity  # [G, 1]
        slot = torch.where(kept, expert * per_expert + offset + position, e * per_expert)
        return SwitchRouting(logits, probs, expert, gate, kept, slot, capacity)

    def forward(
        self, x: Tensor, prev_logits: Tensor | None = None, *, groups: int = 1
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, T, D] -> (output [B, T, D], load-balancing loss scalar, logits [B, T, E]).

        ``groups``: the batch is that many equal blocks of rows, each routed as if it were a
        call of its own (its own capacity and load-balancing loss; the loss is their mean).
        ``prev_logits`` is accepted for a uniform layer interface and ignored.
        """
        b, t, d = x.shape
        e = self.num_experts
        routing = self.route(x, groups)
        tokens, slot = x.reshape(b * t, d), routing.slot.reshape(b * t)  # [G*N, D], [G*N]
        spare = e * groups * routing.capacity  # the row that collects dropped tokens
        buffers = tokens.new_zeros(spare + 1, d).index_add(0, slot, tokens)  # [spare + 1, D]
        expert_out = self.experts(buffers[:spare].view(e, -1, d))  # [E, G*capacity, D]
        padded = torch.cat([expert_out.reshape(spare, d), expert_out.new_zeros(1, d)])
        gate = routing.gate.reshape(b * t, 1)
        out = padded.index_select(0, slot) * gate  # [G*N, D]; dropped tokens -> 0

        arange = torch.arange(e, device=x.device)
        one_hot = (routing.expert[..., None] == arange).to(routing.probs.dtype)  # [G, N, E]
        fraction = one_hot.mean(dim=1)  # [G, E] f_i, no gradient by nature
        mean_prob = routing.probs.mean(dim=1)  # [G, E] P_i, carries the router gradient
        aux = e * (fraction * mean_prob).sum(dim=-1).mean()
        return out.view(b, t, d), aux, routing.logits


class SparseBlock(nn.Module):
    """Pre-norm transformer block whose feed-forward is a sparse MoE layer.

    x + Attn(LN(x)), then x + MoE(LN(x)); the MoE layer also returns its auxiliary loss and its
    router logits (which MoE++ feeds to the next layer's router).

    Args:
        dim: token width D.
        num_heads: attention heads.
        moe: the feed-forward layer, ``moe(x, prev_logits, groups=G) -> (out, aux, logits)``.
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
        self, x: Tensor, prev_logits: Tensor | None = None, *, groups: int = 1
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, T, D] -> (x [B, T, D], aux scalar, router logits [B, T, E]).

        ``groups``: the batch's equal blocks of rows that the MoE layer routes independently.
        """
        x = x + self.dropout(self.attn(self.norm1(x)))
        out, aux, logits = self.moe(self.norm2(x), prev_logits, groups=groups)
        return x + self.dropout(out), aux, logits


class SparseTransformerFusion(nn.Module):
    """Joint transformer over all modality tokens with sparse MoE feed-forwards.

    Same layout as :class:`~i2moe.fusion.transformer.TransformerFusion` (learned positional
    embedding, pre-norm blocks, final LayerNorm, per-modality mean pool, concatenation), so
    H = M * D; ``aux_loss`` is the mean of the layers' auxiliary losses.

    Its MoE layers route a batch's tokens jointly (SwitchGate's expert capacity and both
    backbones' load-balancing losses count the tokens of a call), so ``forward`` takes
    ``groups``: the batch is that many equal, independent blocks of rows (``batch_groups``
    says so to ``i2moe.execution.fuse_passes``, which passes I2MoE's P folded passes as P
    groups). Attention, LayerNorm and pooling treat rows independently anyway.

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        moes: one MoE feed-forward per layer.
        num_heads: attention heads.
        dropout: dropout inside the blocks.
    """

    batch_groups = True  # forward takes ``groups``

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

    def forward(self, embeddings: list[Tensor], *, groups: int = 1) -> Fused:
        """[B, T_m, D] per modality -> Fused(latent [B, M*D], aux_loss scalar).

        With ``groups`` = G, rows [g * B / G, (g + 1) * B / G) are routed as if they were a
        call of their own, and ``aux_loss`` is the mean of the G groups' losses.
        """
        x = torch.cat(embeddings, dim=1) + self.position  # [B, T, D]
        logits = None
        aux_losses = []
        for block in self.blocks:
            x, aux, logits = block(x, logits, groups=groups)
            aux_losses.append(aux)
        x = self.norm(x)
        pooled = [part.mean(dim=1) for part in x.split(self.tokens, dim=1)]  # M x [B, D]
        return Fused(torch.cat(pooled, dim=-1), torch.stack(aux_losses).mean())


def switchgate_fusion(
    *,
    dim: int,
    tokens: Sequence[int],
    num_experts: int = 4,
    capacity_factor: float = 1.25,
    num_layers: int = 2,
    num_heads: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.1,
) -> SparseTransformerFusion:
    """``num_layers`` sparse blocks, each feed-forward a :class:`SwitchMoE` whose experts are
    ``int(mlp_ratio * D)`` wide; the other options are those of :class:`SwitchMoE` and
    :class:`SparseTransformerFusion`."""
    hidden = int(dim * mlp_ratio)
    moes = [
        SwitchMoE(dim, num_experts, hidden, capacity_factor, dropout) for _ in range(num_layers)
    ]
    return SparseTransformerFusion(
        dim=dim, tokens=tokens, moes=moes, num_heads=num_heads, dropout=dropout
    )


switchgate = FusionBuilder("switchgate", switchgate_fusion)
