"""How the paper readers check a dataset folder: a collector that reports every problem at
once, and the checks of files, options, split files and identifiers that feed it.

Every reader validates the whole folder before it builds anything and raises ONE
:class:`~i2moe.data.base.DataError` listing every problem found, so a user fixes a download in
one pass instead of one error at a time.
"""

from __future__ import annotations

import importlib
import json
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


def require_file(
    dataset: str, root: str | Path, filename: str, description: str
) -> tuple[Path, Problems]:
    """The dataset's one file: ``root`` itself, or ``filename`` inside the folder ``root``.

    Args:
        dataset: the dataset's display name.
        root: the file, or the folder holding it.
        filename: the file's name inside a folder ``root``.
        description: what the file should be, for the message when it is missing.

    Returns:
        The file and the problem collector of its folder.

    Raises:
        DataError: the file does not exist.
    """
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / filename
    problems = Problems(dataset, path.parent)
    if not problems.require_files({path.name: description}):
        problems.raise_if_any()
    return path, problems


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
