"""Data readers: bundled datasets, the user's files, generated data, the paper's datasets."""

from i2moe.data.base import (
    SPLITS,
    TASKS,
    ArrayDataset,
    DataBundle,
    DataError,
    ModalitySpec,
    infer_task,
)

__all__ = [
    "SPLITS",
    "TASKS",
    "ArrayDataset",
    "DataBundle",
    "DataError",
    "ModalitySpec",
    "infer_task",
]
