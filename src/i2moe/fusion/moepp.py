"""MoE++: the MulT-style transformer with an MoE++ feed-forward.

Jin, Zhu, Yuan, Yan 2024, "MoE++: Accelerating Mixture-of-Experts Methods with Zero-Computation
Experts" (ICLR 2025). The router chooses the top-2 of N FFN experts plus zero-computation
experts:

- zero expert: E(x) = 0 (discard);
- copy expert: E(x) = x (skip the layer);
- constant expert: E(x) = a_1 x + a_2 v, [a_1, a_2] = softmax(W_c x), v a learned vector
  (replace);

so a token may use two, one or no FFN expert. Gating residuals let a token's routing depend on
the previous layer's: layer j's router logits are W_j x + W_g^j r_{j-1}, with r_{j-1} the logits
of layer j-1 and W_g^j a learned [E_all, E_all] matrix (none in the first layer). The
heterogeneous load-balancing loss is

    E_all * sum_i eta_i * f_i * P_i,

f_i the share of the top-k routing choices that go to expert i, P_i its mean router probability,
eta_i = 1 for FFN experts and ``balance_tau`` for zero-computation experts; it keeps its
gradient. Like SwitchGate's, it is computed per group of rows (``groups``, one per folded I2MoE
pass) and averaged, so a pass's loss is what it would be alone; routing is per token anyway.

The layer output is the sum of the selected experts' outputs weighted by their router
probabilities (not renormalised over the top-k, so a zero expert really removes weight) and is
added to the residual stream: the I2MoE authors' code computed it and then discarded it.

The FFN experts are evaluated on every token and combined with the sparse top-k weights (zero
for unselected experts). That equals sparse dispatch with unlimited capacity (MoE++ drops no
tokens) without data-dependent shapes, so it runs under ``torch.func.vmap``; it costs
``num_experts`` dense FFNs per layer, which is small at the paper's 4-8 experts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import FusionBuilder
from i2moe.fusion.switchgate import ExpertFFN, SparseTransformerFusion, rows_per_group


class MoEPlusPlus(nn.Module):
    """MoE++ feed-forward: FFN experts plus zero, copy and constant experts, top-k routing.

    Expert order in the router: [FFN_1..FFN_N, zero.., copy.., constant..].

    Args:
        dim: token width D.
        num_experts: number of FFN experts N.
        hidden: hidden width of each FFN expert.
        num_zero: number of zero experts.
        num_copy: number of copy experts.
        num_constant: number of constant experts.
        top_k: experts per token.
        balance_tau: load-balancing weight of the zero-computation experts (eta = 1 for FFNs).
        gating_residual: add a learned map of the previous layer's router logits.
        dropout: dropout inside the FFN experts.
    """

    def __init__(
        self,
        dim: int,
        num_experts: int,
        hidden: int,
        *,
        num_zero: int,
        num_copy: int,
        num_constant: int,
        top_k: int,
        balance_tau: float,
        gating_residual: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        if num_experts < 1 or min(num_zero, num_copy, num_constant) < 0:
            raise ValueError("need at least one FFN expert and no negative expert counts")
        self.num_experts = num_experts
        self.num_zero, self.num_copy, self.num_constant = num_zero, num_copy, num_constant
        self.total = num_experts + num_zero + num_copy + num_constant
        if not 1 <= top_k <= self.total:
            raise ValueError(f"top_k must lie in [1, {self.total}], got {top_k}")
        self.top_k = top_k
        self.balance_tau = balance_tau
        self.router = nn.Linear(dim, self.total, bias=False)
        # Only layers that have a previous layer get a residual map (else it would be unused).
        self.residual = nn.Linear(self.total, self.total, bias=False) if gating_residual else None
        self.experts = ExpertFFN(num_experts, dim, hidden, dropout)
        bound = 1.0 / math.sqrt(dim)
        self.constant_mix = nn.Parameter(torch.empty(num_constant, dim, 2).uniform_(-bound, bound))
        self.constant = nn.Parameter(torch.randn(num_constant, dim) * 0.02)

    def forward(
        self, x: Tensor, prev_logits: Tensor | None = None, *, groups: int = 1
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Route every token to its top-k experts and mix their outputs.

        Shapes: x [B, T, D], prev_logits [B, T, E_all] or None (first layer) ->
        (output [B, T, D], load-balancing loss scalar, router logits [B, T, E_all]).
        ``groups``: the batch is that many equal blocks of rows; the load-balancing loss is the
        mean of theirs.
        """
        b, t, d = x.shape
        n, k = b * t, self.top_k
        group_tokens = rows_per_group(b, groups) * t
        tokens = x.reshape(n, d)  # [N, D]
        logits = self.router(tokens)  # [N, E_all]
        if self.residual is not None and prev_logits is not None:
            logits = logits + self.residual(prev_logits.reshape(n, self.total))
        probs = logits.softmax(dim=-1)  # [N, E_all]
        top_p, top_i = probs.topk(k, dim=-1)  # [N, k]
        weights = torch.zeros_like(probs).scatter(-1, top_i, top_p)  # [N, E_all], k non-zeros
        chosen = torch.zeros_like(probs).scatter(-1, top_i, 1.0)  # [N, E_all] 0/1

        w_ffn, w_zero_copy_const = weights.split(
            [self.num_experts, self.total - self.num_experts], dim=-1
        )
        _, w_copy, w_const = w_zero_copy_const.split(
            [self.num_zero, self.num_copy, self.num_constant], dim=-1
        )
        expert_out = self.experts(tokens.expand(self.num_experts, n, d))  # [N_ffn, N, D]
        out = torch.einsum("ne,end->nd", w_ffn, expert_out)  # [N, D]
        out = out + w_copy.sum(dim=-1, keepdim=True) * tokens  # copy experts
        mix = torch.einsum("nd,cdj->ncj", tokens, self.constant_mix).softmax(dim=-1)  # [N, C, 2]
        constant_out = mix[..., :1] * tokens[:, None] + mix[..., 1:] * self.constant  # [N, C, D]
        out = out + torch.einsum("nc,ncd->nd", w_const, constant_out)  # zero experts add 0

        eta = torch.cat(
            [
                probs.new_ones(self.num_experts),
                probs.new_full((self.total - self.num_experts,), self.balance_tau),
            ]
        )  # [E_all]
        chosen = chosen.view(groups, group_tokens, self.total)  # [G, N / G, E_all]
        fraction = chosen.sum(dim=1) / (k * group_tokens)  # [G, E_all] f_i, rows sum to 1
        mean_prob = probs.view(groups, group_tokens, self.total).mean(dim=1)  # [G, E_all] P_i
        aux = self.total * (eta * fraction * mean_prob).sum(dim=-1).mean()
        return out.view(b, t, d), aux, logits.view(b, t, self.total)


def moepp_fusion(
    *,
    dim: int,
    tokens: Sequence[int],
    num_experts: int = 4,
    num_zero: int = 1,
    num_copy: int = 1,
    num_constant: int = 2,
    top_k: int = 2,
    balance_tau: float = 0.75,
    num_layers: int = 2,
    num_heads: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.1,
) -> SparseTransformerFusion:
    """``num_layers`` sparse blocks, each feed-forward a :class:`MoEPlusPlus` whose FFN experts
    are ``int(mlp_ratio * D)`` wide, with a gating residual from the second layer on; the other
    options are those of :class:`MoEPlusPlus` and :class:`SparseTransformerFusion`."""
    hidden = int(dim * mlp_ratio)
    moes = [
        MoEPlusPlus(
            dim,
            num_experts,
            hidden,
            num_zero=num_zero,
            num_copy=num_copy,
            num_constant=num_constant,
            top_k=top_k,
            balance_tau=balance_tau,
            gating_residual=layer > 0,
            dropout=dropout,
        )
        for layer in range(num_layers)
    ]
    return SparseTransformerFusion(
        dim=dim, tokens=tokens, moes=moes, num_heads=num_heads, dropout=dropout
    )


moepp = FusionBuilder("moepp", moepp_fusion)
