"""Reweighting models: per-sample expert weights, the explanation (docs/method.md section 2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from i2moe.layers import mlp


class ReweightingMLP(nn.Module):
    """MLP over the pooled clean embeddings -> softmax(scores / temperature) over experts.

    Hidden layers are Linear -> ReLU -> Dropout; ``num_layers=1`` is a single Linear.

    Args:
        in_features: M * D (concatenated mean-pooled embeddings).
        num_experts: E.
        hidden: hidden width.
        num_layers: linear layers.
        temperature: softmax temperature T.
        dropout: dropout after each hidden layer (the authors use 0.5).
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        *,
        hidden: int = 128,
        num_layers: int = 2,
        temperature: float = 1.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.net = mlp(
            in_features, num_experts, hidden=hidden, num_layers=num_layers, dropout=dropout
        )
        self.temperature = temperature

    def forward(self, pooled: Tensor) -> Tensor:
        """[B, M*D] -> weights [B, E] summing to 1."""
        return (self.net(pooled) / self.temperature).softmax(dim=-1)


class GlobalWeights(nn.Module):
    """The Simple-Weight ablation: one learnable weight vector shared by all samples."""

    def __init__(self, num_experts: int, *, temperature: float = 1.0) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_experts))
        self.temperature = temperature

    def forward(self, pooled: Tensor) -> Tensor:
        """[B, ...] -> weights [B, E], the same row for every sample."""
        weights = (self.logits / self.temperature).softmax(dim=-1)
        return weights.expand(len(pooled), -1)
