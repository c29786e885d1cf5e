"""Small building blocks shared by encoders, backbones, heads and the reweighting model."""

from __future__ import annotations

from torch import nn


def mlp(
    in_features: int,
    out_features: int,
    *,
    hidden: int,
    num_layers: int,
    dropout: float = 0.0,
) -> nn.Sequential:
    """``num_layers`` Linear layers; between them ReLU (and Dropout when ``dropout`` > 0).

    ``num_layers=1`` is a single Linear; the last Linear has no activation.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(num_layers - 1):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)
