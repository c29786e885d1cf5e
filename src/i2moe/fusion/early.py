"""Early fusion (EF): concatenate every modality's tokens into one vector, then an MLP.

EF is the simplest baseline in the I2MoE paper (docs/method.md section 7; the classic early-fusion
baseline of MultiBench, Liang et al. 2021). Each modality's [B, T_m, D] tokens are flattened to
T_m * D features so that token order is kept; the MLP sees sum_m T_m * D inputs.

:class:`MLP` is shared with the other dense backbones (late fusion, InterpretCC).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from i2moe.fusion.base import Fused, FusionBuilder, SeparableFusion
from i2moe.layers import mlp


class MLP(nn.Module):
    """A stack of Linear layers with ReLU and dropout between them.

    The last Linear has no activation, so the output is an unconstrained latent for the head.

    Args:
        in_dim: input width.
        hidden: width of every layer, including the output.
        num_layers: number of Linear layers (at least 1).
        dropout: dropout after each hidden activation.
    """

    def __init__(self, in_dim: int, hidden: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden, hidden=hidden, num_layers=num_layers, dropout=dropout)
        self.out_dim = hidden

    def forward(self, x: Tensor) -> Tensor:
        """[B, in_dim] -> [B, hidden]."""
        return self.net(x)

    def input_part(self, x: Tensor, start: int) -> Tensor:
        """The first layer's product with inputs ``start`` .. ``start + F`` alone: x [B, F] ->
        [B, hidden], without the bias. The parts of all inputs sum to the first layer's
        product with their concatenation (:meth:`from_input_parts`)."""
        first = self.net[0]
        return x @ first.weight[:, start : start + x.shape[-1]].T

    def from_input_parts(self, parts: list[Tensor]) -> Tensor:
        """The output from the first layer's parts over all inputs -> [B, hidden]."""
        return self.net[1:](torch.stack(parts).sum(dim=0) + self.net[0].bias)


class EarlyFusion(SeparableFusion):
    """Early fusion: flatten and concatenate all modality tokens, then an MLP.

    Separable: the first Linear layer's product with the concatenation is the sum of its
    products with each modality's block of inputs, which is that modality's part.

    Args:
        dim: token width D.
        tokens: tokens per modality [T_1..T_M].
        hidden: MLP width, also the latent width H.
        num_layers: Linear layers in the MLP.
        dropout: dropout between MLP layers.
    """

    def __init__(
        self,
        *,
        dim: int,
        tokens: Sequence[int],
        hidden: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.tokens = list(tokens)
        self.starts = [sum(self.tokens[:m]) * dim for m in range(len(self.tokens))]
        self.mlp = MLP(sum(self.tokens) * dim, hidden, num_layers, dropout)
        self.out_dim = hidden

    def forward(self, embeddings: list[Tensor]) -> Fused:
        """[B, T_m, D] per modality -> Fused(latent [B, H], aux_loss 0)."""
        flat = torch.cat([e.flatten(1) for e in embeddings], dim=-1)  # [B, sum_m T_m * D]
        latent = self.mlp(flat)  # [B, H]
        return Fused(latent, latent.new_zeros(()))

    def modality_part(self, m: int, embedding: Tensor) -> tuple[Tensor]:
        """[B, T_m, D] -> (first layer's product with its T_m * D inputs [B, H],)."""
        return (self.mlp.input_part(embedding.flatten(1), self.starts[m]),)

    def fuse_parts(self, parts: list[tuple[Tensor, ...]]) -> Fused:
        """Sum the parts, then the rest of the MLP -> Fused(latent [B, H], aux_loss 0)."""
        latent = self.mlp.from_input_parts([part[0] for part in parts])  # [B, H]
        return Fused(latent, latent.new_zeros(()))


early_fusion = FusionBuilder("ef", EarlyFusion)
