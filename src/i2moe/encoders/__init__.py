"""Modality encoders and the table that builds one from a modality's spec.

``ENCODERS`` maps a name to ``builder(spec, dim, **options) -> nn.Module``; the module maps a
batch of that modality to [B, D] or [B, T, D]. :func:`register_encoder` adds a builder of one's
own to the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from i2moe.encoders.basic import CNNEncoder, GRUEncoder, LSTMEncoder, MLPEncoder, PatchTokenizer
from i2moe.encoders.paper import PAPER_ENCODERS
from i2moe.spec import ModalitySpec

EncoderBuilder = Callable[..., nn.Module]
DEFAULT_ENCODER = {"vector": "mlp", "sequence": "gru", "image": "cnn", "volume": "conv3d"}


def _mlp(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return MLPEncoder(math.prod(spec.shape), dim, **options)


def _patch(spec: ModalitySpec, dim: int, *, num_patches: int = 4) -> nn.Module:
    return PatchTokenizer(math.prod(spec.shape), num_patches, dim)


def _gru(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return GRUEncoder(spec.shape[-1], dim, **options)


def _lstm(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return LSTMEncoder(spec.shape[-1], dim, **options)


def _cnn(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return CNNEncoder(spec.shape[0], dim, **options)


ENCODERS: dict[str, EncoderBuilder] = {
    "mlp": _mlp,
    "patch": _patch,
    "gru": _gru,
    "lstm": _lstm,
    "cnn": _cnn,
    **PAPER_ENCODERS,
}


def register_encoder(name: str) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Add ``builder(spec, dim, **options)`` to :data:`ENCODERS` under ``name`` (a decorator)."""

    def decorator(builder: EncoderBuilder) -> EncoderBuilder:
        ENCODERS[name] = builder
        return builder

    return decorator


def build_encoder(spec: ModalitySpec, dim: int, name: str | None = None, **options) -> nn.Module:
    """Build the encoder ``name`` (default: by the modality's kind) for ``spec``."""
    name = name or DEFAULT_ENCODER.get(spec.kind)
    if name is None:
        raise KeyError(
            f"modality '{spec.name}' of kind '{spec.kind}' has no default encoder; "
            f"name one of: {', '.join(sorted(ENCODERS))}"
        )
    if name not in ENCODERS:
        raise KeyError(f"unknown encoder '{name}'; valid names: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](spec, dim, **options)


__all__ = [
    "ENCODERS",
    "CNNEncoder",
    "GRUEncoder",
    "LSTMEncoder",
    "MLPEncoder",
    "PatchTokenizer",
    "build_encoder",
    "register_encoder",
]
