"""One entry point from a DATA argument to a DataBundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2moe.data.base import DataBundle, DataError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def load_data(name: str, *, task: str | None = None, seed: int = 0, **options: Any) -> DataBundle:
    """A bundled dataset by name, a ``.npz`` file, or a CSV/Parquet table.

    Args:
        name: bundled dataset name (``i2moe datasets``), or a path.
        task: force the task for user files.
        seed: seeds the split where the data has none.
        options: reader options (tables: ``modalities``, ``target``, ``split_column``, or
            ``mapping``: a YAML file with those keys).
    """
    path = Path(name)
    if path.suffix == ".npz":
        from i2moe.data.npz import read_npz

        return read_npz(path, task=task, seed=seed, **options)
    if path.suffix in TABLE_SUFFIXES:
        from i2moe.data.table import read_table, read_table_config

        if "mapping" in options:
            options = {**read_table_config(options.pop("mapping")), **options}
        return read_table(path, task=task, seed=seed, **options)
    if path.exists():
        raise DataError(
            f"{path}: unsupported file type '{path.suffix}'; expected .npz, .csv or .parquet"
        )
    from i2moe.data.registry import load_dataset

    return load_dataset(name, seed=seed, **options)
