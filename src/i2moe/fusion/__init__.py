"""Fusion backbones and the table that names them (``--fusion NAME``).

``FUSIONS`` maps a name to a builder, called as
``builder(num_modalities=M, dim=D, tokens=[T_1..T_M], **options)``: the built-in backbones are
listed here, and :func:`register_fusion` adds a builder of one's own to the same table.
"""

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from i2moe.fusion.base import Fused, FusionBuilder, as_fused
from i2moe.fusion.early import early_fusion
from i2moe.fusion.interpretcc import interpretcc
from i2moe.fusion.late import late_fusion
from i2moe.fusion.lrtf import low_rank_tensor_fusion
from i2moe.fusion.moepp import moepp
from i2moe.fusion.switchgate import switchgate
from i2moe.fusion.transformer import transformer

Builder = Callable[..., nn.Module]

FUSIONS: dict[str, Builder] = {
    "ef": early_fusion,
    "lf": late_fusion,
    "lrtf": low_rank_tensor_fusion,
    "transformer": transformer,
    "interpretcc": interpretcc,
    "switchgate": switchgate,
    "moepp": moepp,
}


def register_fusion(name: str) -> Callable[[Builder], Builder]:
    """Add a backbone builder to :data:`FUSIONS` under ``name`` (a decorator)."""

    def decorator(builder: Builder) -> Builder:
        if name in FUSIONS:
            raise ValueError(f"fusion '{name}' is already registered")
        FUSIONS[name] = builder
        return builder

    return decorator


def build_fusion(
    name: str, *, num_modalities: int, dim: int, tokens: Sequence[int], **options: Any
) -> nn.Module:
    """Build the backbone ``name``; an unknown name lists the valid ones."""
    if name not in FUSIONS:
        raise KeyError(f"unknown fusion '{name}'; valid names: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name](num_modalities=num_modalities, dim=dim, tokens=list(tokens), **options)


__all__ = ["FUSIONS", "Fused", "FusionBuilder", "as_fused", "build_fusion", "register_fusion"]
