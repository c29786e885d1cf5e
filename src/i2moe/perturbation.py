"""What replaces a modality's embedding in a perturbed pass (docs/method.md section 3.2, "masking").

- ``random``: i.i.d. standard normal noise, fresh for every expert and pass (default);
- ``zero``: zeros;
- ``mean``: the running mean of that modality's training embeddings (detached).

The same replacement stands in for a modality that is missing from a sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

STRATEGIES = ("random", "zero", "mean")


class Perturbation(nn.Module):
    """Draws replacement embeddings for each modality.

    Args:
        strategy: "random", "zero" or "mean".
        num_modalities: M.
        momentum: update rate of the running means (``mean`` strategy).
    """

    def __init__(self, strategy: str, num_modalities: int, momentum: float = 0.1) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown masking strategy '{strategy}'; valid: {', '.join(STRATEGIES)}"
            )
        self.strategy = strategy
        self.momentum = momentum
        self.num_modalities = num_modalities
        # Shapes ([T, D]) are known at the first training step; empty until then.
        for m in range(num_modalities):
            self.register_buffer(f"running_mean_{m}", torch.zeros(0))

    def running_mean(self, m: int) -> Tensor:
        return getattr(self, f"running_mean_{m}")

    @torch.no_grad()
    def update(self, embeddings: Sequence[Tensor], observed: Tensor | None = None) -> None:
        """Track the mean training embedding [T, D] of each modality (``mean`` only)."""
        if self.strategy != "mean":
            return
        for m, emb in enumerate(embeddings):
            rows = emb if observed is None else emb[observed[:, m]]
            if len(rows) == 0:
                continue
            batch_mean = rows.detach().mean(dim=0)
            current = self.running_mean(m)
            if current.shape != batch_mean.shape:
                setattr(self, f"running_mean_{m}", batch_mean.clone())
            else:
                current.lerp_(batch_mean, self.momentum)

    def replacement(self, m: int, embedding: Tensor, copies: int) -> Tensor:
        """Replacements for modality ``m``: [copies, B, T, D] from its embedding [B, T, D]."""
        shape = (copies, *embedding.shape)
        if self.strategy == "random":
            return torch.randn(shape, dtype=embedding.dtype, device=embedding.device)
        if self.strategy == "zero":
            return embedding.new_zeros(shape)
        mean = self.running_mean(m)
        if mean.numel() == 0:  # nothing seen yet: the batch mean is the best estimate
            mean = embedding.detach().mean(dim=0)
        return mean.to(embedding.dtype).expand(shape)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Running means are created lazily: take the checkpoint's shapes.
        for m in range(self.num_modalities):
            key = f"{prefix}running_mean_{m}"
            if key in state_dict:
                setattr(self, f"running_mean_{m}", torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}"
