"""i2moe: interpretable multimodal interaction-aware mixture-of-experts."""

__version__ = "0.1.0"
