"""Shared helpers of the paper-dataset readers: collecting format problems, optional imports,
train-only scalers and split bookkeeping.

Every reader validates the whole folder before it builds anything and raises ONE
:class:`~i2moe.data.base.DataError` listing every problem found, so a user fixes a download in
one pass instead of one error at a time.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from i2moe.data.base import DataError

PAPER_EXTRA = 'pip install "i2moe[paper]"'


class Problems:
    """Collects format problems of one dataset folder and raises them together.

    Args:
        dataset: the dataset's display name, used as the message's first line.
        root: the folder being read.
    """

    def __init__(self, dataset: str, root: Path) -> None:
        self.dataset = dataset
        self.root = root
        self.items: list[str] = []

    def add(self, file: str | Path, message: str) -> None:
        """Record one problem with ``file`` (relative to the root where possible)."""
        self.items.append(f"{self._display(file)}: {message}")

    def require_files(self, expected: dict[str, str]) -> bool:
        """Record every missing file of ``expected`` (relative path -> what it should hold).

        Returns:
            True when all files exist.
        """
        ok = True
        for relative, description in expected.items():
            if not (self.root / relative).is_file():
                self.add(relative, f"missing; expected {description}")
                ok = False
        return ok

    def read_csv(
        self, relative: str, columns: Sequence[str] = (), detail: str = "", **options: Any
    ) -> Any:
        """Read ``root / relative`` with pandas, recording a problem (and returning None) when it
        cannot be read or lacks one of ``columns``; ``detail`` follows the expected columns in
        that message (e.g. their values). ``options`` go to ``pandas.read_csv``."""
        import pandas as pd

        try:
            table = pd.read_csv(self.root / relative, **options)
        except (OSError, ValueError, pd.errors.ParserError) as error:
            self.add(relative, f"cannot be read as CSV ({error})")
            return None
        missing = [c for c in columns if c not in table.columns]
        if missing:
            expected = f"expected columns {', '.join(columns)}" + (f" {detail}" if detail else "")
            self.add(relative, f"column(s) {', '.join(missing)} missing; {expected}")
            return None
        return table

    def raise_if_any(self) -> None:
        """Raise one :class:`DataError` listing every recorded problem, if there is any."""
        if self.items:
            lines = "\n".join(f"  - {item}" for item in self.items)
            raise DataError(
                f"{self.dataset} folder {self.root} is not in the expected format "
                f"({len(self.items)} problem{'s' if len(self.items) > 1 else ''}):\n{lines}\n"
                "See docs/paper-datasets.md for the expected layout."
            )

    def _display(self, file: str | Path) -> str:
        path = Path(file)
        try:
            return str(path.relative_to(self.root)) if path.is_absolute() else str(path)
        except ValueError:
            return str(path)


def require_root(dataset: str, root: str | Path) -> Path:
    """Return ``root`` as a Path, or raise a DataError if it is not a folder."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{dataset}: folder {path} does not exist; expected the dataset's folder")
    return path


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming the extra to install.

    Args:
        module: importable module name (``h5py``, ``PIL.Image``, ``nibabel``, ``anndata``).
        purpose: what it is needed for, e.g. ``"reading MM-IMDb's HDF5 file"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        package = {"PIL": "pillow"}.get(top, top)
        raise ImportError(f"{purpose} needs {package}: {PAPER_EXTRA}") from error


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise a DataError when an option is not one of its choices."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise DataError(f"option {name}={value!r} is not valid; expected one of {allowed}")


def read_split_json(
    problems: Problems, relative: str, keys: Sequence[str] = ("training", "validation", "testing")
) -> dict[str, list[str]] | None:
    """Read a ``{"training": [...], "validation": [...], "testing": [...]}`` split file.

    Identifiers are returned as strings (JSON files store them as numbers or strings) with
    duplicates removed, first occurrence kept. Problems are recorded, not raised.
    """
    path = problems.root / relative
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.add(relative, f"cannot be read as JSON ({error}); expected {_split_form(keys)}")
        return None
    if not isinstance(content, dict):
        problems.add(relative, f"holds a {type(content).__name__}; expected {_split_form(keys)}")
        return None
    result: dict[str, list[str]] = {}
    for key in keys:
        ids = content.get(key)
        if not isinstance(ids, list):
            problems.add(
                relative, f"key '{key}' is missing or not a list; expected {_split_form(keys)}"
            )
            continue
        result[key] = list(dict.fromkeys(str(i) for i in ids))
    if len(result) < len(keys):
        return None
    seen: dict[str, str] = {}
    for key in keys:
        for subject in result[key]:
            if subject in seen:
                problems.add(
                    relative,
                    f"subject '{subject}' is listed in both '{seen[subject]}' and '{key}'; "
                    "expected disjoint lists",
                )
                return None
            seen[subject] = key
    return result


def _split_form(keys: Sequence[str]) -> str:
    return "{" + ", ".join(f'"{k}": [ids...]' for k in keys) + "}"


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


def stringify_ids(values: Iterable[Any]) -> list[str]:
    """Identifiers as plain strings (bytes decoded, arrays of parts joined with '')."""
    result = []
    for value in values:
        if isinstance(value, bytes):
            result.append(value.decode("utf-8", errors="replace"))
        elif isinstance(value, np.ndarray) and value.ndim > 0:
            result.append("".join(stringify_ids(value.ravel().tolist())))
        elif isinstance(value, list | tuple):
            result.append("".join(stringify_ids(value)))
        else:
            result.append(str(value))
    return result


def first_items(items: Sequence[Any], count: int = 5) -> str:
    """The first ``count`` items joined with commas, and how many more there are."""
    shown = ", ".join(str(i) for i in items[:count])
    return shown + (f", ... ({len(items) - count} more)" if len(items) > count else "")
