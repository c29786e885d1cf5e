"""Preprocessing fitted on training rows only: z-scoring, min-max scaling, column modes for
imputation, and the test for rows that hold the preprocessing's missing marker."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def all_value_rows(rows: np.ndarray, value: float) -> np.ndarray:
    """[N] bool: rows whose every entry equals ``value`` (the preprocessing's missing marker)."""
    flat = rows.reshape(len(rows), -1)
    if flat.shape[1] == 0:
        return np.zeros(len(rows), dtype=bool)
    return np.all(flat == value, axis=1)


class Standardizer:
    """Per-column z-scoring whose statistics come from the training rows only.

    Args:
        train_rows: [N, F] training values (NaN allowed: ignored in the statistics).
    """

    def __init__(self, train_rows: np.ndarray) -> None:
        rows = np.asarray(train_rows, dtype=np.float64)
        self.mean = _nan_stat(np.nanmean, rows)
        std = _nan_stat(np.nanstd, rows)
        # A column that is constant over training carries no signal; dividing by 1 keeps it 0.
        self.std = np.where(std > 0, std, 1.0)

    def fill_missing(self, rows: np.ndarray) -> np.ndarray:
        """Replace NaN with the training column mean."""
        rows = np.asarray(rows, dtype=np.float64)
        return np.where(np.isnan(rows), self.mean, rows)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Fill NaN with training means, then z-score with the training statistics."""
        return ((self.fill_missing(rows) - self.mean) / self.std).astype(np.float32)


class MinMaxScaler:
    """Per-column min-max scaling to ``[low, high]`` fitted on training rows only.

    Columns that are constant in training map to ``low`` (zero range is treated as one, the
    usual convention), values outside the training range fall outside ``[low, high]``.
    """

    def __init__(self, train_rows: np.ndarray, low: float = -1.0, high: float = 1.0) -> None:
        rows = np.asarray(train_rows, dtype=np.float64)
        self.low, self.high = low, high
        self.minimum = _nan_stat(np.nanmin, rows)
        span = _nan_stat(np.nanmax, rows) - self.minimum
        self.span = np.where(span > 0, span, 1.0)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Scale rows (NaN must be filled beforehand)."""
        unit = (np.asarray(rows, dtype=np.float64) - self.minimum) / self.span
        return (self.low + unit * (self.high - self.low)).astype(np.float32)


def column_modes(train_rows: np.ndarray) -> np.ndarray:
    """Most frequent non-NaN value of every column (smallest on ties; 0 for all-NaN columns)."""
    rows = np.asarray(train_rows, dtype=np.float64)
    modes = np.zeros(rows.shape[1])
    for column in range(rows.shape[1]):
        values = rows[:, column]
        values = values[~np.isnan(values)]
        if len(values):
            unique, counts = np.unique(values, return_counts=True)
            modes[column] = unique[np.argmax(counts)]
    return modes


def _nan_stat(function: Any, rows: np.ndarray) -> np.ndarray:
    """Column statistic ignoring NaN; 0 for an all-NaN column or an empty training set."""
    if len(rows) == 0:
        return np.zeros(rows.shape[1])
    # All-NaN columns warn in numpy; they are expected here and mapped to 0 below.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        stat = function(rows, axis=0)
    return np.nan_to_num(np.asarray(stat, dtype=np.float64), nan=0.0)
