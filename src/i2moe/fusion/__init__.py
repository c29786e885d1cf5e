"""Fusion backbones, registered by name."""

from i2moe.fusion.base import FUSIONS, Fused, as_fused, build_fusion, register_fusion

__all__ = ["FUSIONS", "Fused", "as_fused", "build_fusion", "register_fusion"]

# Importing the built-in backbones registers them.
from i2moe.fusion import builtin, transformer  # noqa: E402, F401
