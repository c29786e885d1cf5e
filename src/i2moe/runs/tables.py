"""Markdown tables of run results: a header, rows, and mean ± std over seeds.

The population standard deviation (``ddof=0``) throughout, as the paper's authors report it.
Only the standard library and numpy; run summaries, model cards and the experiments share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and population standard deviation of ``values`` (one per seed)."""
    array = np.asarray(list(values), dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=0))


def mean_std_cell(mean: float, std: float, digits: int) -> str:
    """``mean ± std``, both to ``digits`` decimals."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def cell(value: Any, digits: int = 3) -> str:
    """A float to ``digits`` decimals; anything else as text."""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, digits: int = 3) -> str:
    """A Markdown table, floats to ``digits`` decimals, ending in a newline."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value, digits) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def frame_markdown(frame: pd.DataFrame, *, digits: int = 3) -> str:
    """A data frame as a Markdown table (its columns as the header), floats to ``digits``."""
    return markdown_table(list(frame.columns), frame.itertuples(index=False), digits=digits)
