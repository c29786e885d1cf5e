"""Which samples an explanation shows in detail: those asked for, by position or by id, or by
default a few correct and a few wrong predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor


def choose_samples(correct: Tensor, count: int = 3) -> list[int]:
    """Default samples to show: up to ``count`` correct and ``count`` wrong predictions, spread
    evenly over the split (deterministic), in split order."""
    chosen: list[int] = []
    flags = correct.bool().cpu()
    for group in (flags, ~flags):
        positions = torch.nonzero(group).flatten().tolist()
        if positions and count > 0:
            picks = np.linspace(0, len(positions) - 1, num=min(count, len(positions)))
            chosen += [positions[int(round(p))] for p in picks]
    return sorted(set(chosen))


def resolve_samples(
    num_samples: int,
    sample_ids: Sequence[Any],
    samples: Sequence[int] | None = None,
    ids: Sequence[Any] | None = None,
) -> list[int] | None:
    """Positions in the split of the samples a user asked for, by position or by id.

    Returns:
        The positions (in the order asked, without repeats), or None when nothing was asked.

    Raises:
        ValueError: for a position out of range or an id the split does not hold.
    """
    if samples is None and ids is None:
        return None
    positions: list[int] = []
    for position in samples or []:
        if not -num_samples <= int(position) < num_samples:
            raise ValueError(
                f"sample {position} is out of range: the split has {num_samples} samples "
                f"(positions 0..{num_samples - 1})"
            )
        positions.append(int(position) % num_samples)
    if ids:
        lookup = {str(sample_id): p for p, sample_id in enumerate(sample_ids)}
        unknown = [str(i) for i in ids if str(i) not in lookup]
        if unknown:
            shown = ", ".join(str(s) for s in list(sample_ids)[:5])
            raise ValueError(
                f"unknown sample id(s) {', '.join(unknown)}; ids in this split look like: {shown}"
            )
        positions += [lookup[str(i)] for i in ids]
    return list(dict.fromkeys(positions))
