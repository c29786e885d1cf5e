"""Import the built-in fusion backbones beyond the transformer so that they register.

Registered names: ``ef``, ``lf``, ``lrtf``, ``interpretcc``, ``switchgate``, ``moepp``.
"""

from i2moe.fusion import early, interpretcc, late, lrtf, moepp, switchgate

__all__ = ["early", "interpretcc", "late", "lrtf", "moepp", "switchgate"]
