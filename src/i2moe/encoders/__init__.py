"""Modality encoders and the registry that builds one from a modality's spec.

The registry maps a name to ``builder(spec, dim, **options) -> nn.Module``; the module maps a
batch of that modality to [B, D] or [B, T, D].
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from i2moe.encoders.basic import CNNEncoder, GRUEncoder, LSTMEncoder, MLPEncoder, PatchTokenizer
from i2moe.spec import ModalitySpec

EncoderBuilder = Callable[..., nn.Module]
ENCODERS: dict[str, EncoderBuilder] = {}
DEFAULT_ENCODER = {"vector": "mlp", "sequence": "gru", "image": "cnn", "volume": "conv3d"}


def register_encoder(name: str) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Register ``builder(spec, dim, **options)`` under ``name``."""

    def decorator(builder: EncoderBuilder) -> EncoderBuilder:
        ENCODERS[name] = builder
        return builder

    return decorator


@register_encoder("mlp")
def _mlp(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    flat = 1
    for s in spec.shape:
        flat *= s
    return MLPEncoder(flat, dim, **options)


@register_encoder("patch")
def _patch(spec: ModalitySpec, dim: int, *, num_patches: int = 4) -> nn.Module:
    flat = 1
    for s in spec.shape:
        flat *= s
    return PatchTokenizer(flat, num_patches, dim)


@register_encoder("gru")
def _gru(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return GRUEncoder(spec.shape[-1], dim, **options)


@register_encoder("lstm")
def _lstm(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return LSTMEncoder(spec.shape[-1], dim, **options)


@register_encoder("cnn")
def _cnn(spec: ModalitySpec, dim: int, **options) -> nn.Module:
    return CNNEncoder(spec.shape[0], dim, **options)


def _register_paper_encoders() -> None:
    from i2moe.encoders.paper import PAPER_ENCODERS

    ENCODERS.update(PAPER_ENCODERS)


_register_paper_encoders()


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
