"""General-purpose modality encoders.

Every encoder maps one modality batch to a vector embedding [B, D] or tokens [B, T, D]; any
``nn.Module`` doing the same can stand in for them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2moe.layers import mlp


class MLPEncoder(nn.Module):
    """MLP for feature vectors: [B, F] -> [B, D].

    Args:
        in_features: F.
        dim: output width D.
        hidden: hidden width (defaults to D).
        num_layers: linear layers (1 = a single projection).
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        in_features: int,
        dim: int,
        *,
        hidden: int | None = None,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.net = mlp(
            in_features, dim, hidden=hidden or dim, num_layers=num_layers, dropout=dropout
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class PatchTokenizer(nn.Module):
    """Cut a vector into P chunks and project each to D: [B, F] -> [B, P, D].

    The vector is zero-padded to a multiple of P; one linear layer is shared by all chunks
    (docs/method.md section 9, ``num_patches``). A learned per-patch offset tells chunks apart.
    """

    def __init__(self, in_features: int, num_patches: int, dim: int) -> None:
        super().__init__()
        self.num_patches = num_patches
        self.chunk = math.ceil(in_features / num_patches)
        self.pad = self.chunk * num_patches - in_features
        self.proj = nn.Linear(self.chunk, dim)
        self.patch_offset = nn.Parameter(torch.zeros(num_patches, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x.flatten(1), (0, self.pad))  # [B, P*chunk]
        return self.proj(x.view(len(x), self.num_patches, self.chunk)) + self.patch_offset


class _RecurrentEncoder(nn.Module):
    cell: type[nn.RNNBase]

    def __init__(
        self,
        in_features: int,
        dim: int,
        *,
        hidden: int | None = None,
        num_layers: int = 1,
        return_sequence: bool = False,
    ) -> None:
        super().__init__()
        hidden = hidden or dim
        self.rnn = self.cell(in_features, hidden, num_layers=num_layers, batch_first=True)
        self.proj = nn.Linear(hidden, dim)
        self.return_sequence = return_sequence

    def forward(self, x: Tensor) -> Tensor:
        """[B, L, F] -> [B, D] (last hidden state) or [B, L, D] with ``return_sequence``."""
        sequence, _ = self.rnn(x)
        if self.return_sequence:
            return self.proj(sequence)
        return self.proj(sequence[:, -1])


class GRUEncoder(_RecurrentEncoder):
    """GRU over a sequence [B, L, F]; the last hidden state projected to D."""

    cell = nn.GRU


class LSTMEncoder(_RecurrentEncoder):
    """LSTM over a sequence [B, L, F]; the last hidden state projected to D."""

    cell = nn.LSTM


class CNNEncoder(nn.Module):
    """A small 2-D CNN for images: [B, C, H, W] -> [B, D].

    Args:
        in_channels: C.
        dim: output width D.
        channels: widths of the conv stages (each conv 3x3, GroupNorm, ReLU,
            2x2 max-pool).
    """

    def __init__(self, in_channels: int, dim: int, *, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        stages: list[nn.Module] = []
        width = in_channels
        for out in channels:
            stages += [
                nn.Conv2d(width, out, 3, padding=1),
                nn.GroupNorm(min(8, out), out),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            width = out
        self.features = nn.Sequential(*stages)
        self.proj = nn.Linear(width, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.features(x).mean(dim=(-2, -1)))
