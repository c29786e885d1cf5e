"""The data contract every reader fulfils.

A reader (bundled dataset, user file, generator, paper dataset) returns a :class:`DataBundle`:
the task, the modalities in their fixed order, and one ``torch.utils.data.Dataset`` per split.
Every item of every split is a dict::

    {"inputs": {name: Tensor (per-sample shape of that modality)},
     "target": Tensor (long scalar | float [C] multi-hot | float [1] regression),
     "observed": bool Tensor [M] (False where a modality is missing for this sample),
     "index": int (row of this sample in its split)}

so ``torch.utils.data.default_collate`` batches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from i2moe.spec import SPLITS, TASKS, DataError, ModalityKind, ModalitySpec, Task

__all__ = [
    "SPLITS",
    "TASKS",
    "ArrayDataset",
    "DataBundle",
    "DataError",
    "ModalityKind",
    "ModalitySpec",
    "Task",
    "infer_task",
]


@dataclass
class DataBundle:
    """A dataset ready for training: task, modalities in order, and the three splits."""

    name: str
    task: Task
    modalities: list[ModalitySpec]
    num_outputs: int
    train: Dataset
    val: Dataset
    test: Dataset
    class_names: list[str] | None = None
    class_weights: list[float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def split(self, name: str) -> Dataset:
        if name not in SPLITS:
            raise DataError(f"unknown split '{name}'; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)


class ArrayDataset(Dataset):
    """In-memory split: one array per modality, aligned targets and an optional observed mask.

    Args:
        modalities: name -> array [N, ...] in the bundle's modality order.
        targets: [N] int class ids, [N, C] multi-hot, or [N] / [N, 1] floats (regression).
        task: how targets are typed in items.
        observed: [N, M] bool, False where a modality is missing; all True if omitted.
        sample_ids: optional identifiers, one per row, kept for reports.
    """

    def __init__(
        self,
        modalities: Mapping[str, np.ndarray],
        targets: np.ndarray,
        task: Task,
        observed: np.ndarray | None = None,
        sample_ids: Sequence[Any] | None = None,
    ) -> None:
        n = len(targets)
        self.names = list(modalities)
        self.arrays = {
            k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in modalities.items()
        }
        for k, v in self.arrays.items():
            if len(v) != n:
                raise DataError(f"modality '{k}' has {len(v)} samples but the targets have {n}")
        if task == "classification":
            self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        elif task == "multilabel":
            self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
        else:
            self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32).reshape(n, 1))
        if observed is None:
            observed = np.ones((n, len(self.names)), dtype=bool)
        self.observed = torch.as_tensor(np.asarray(observed, dtype=bool))
        self.sample_ids = list(sample_ids) if sample_ids is not None else list(range(n))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "inputs": {k: v[index] for k, v in self.arrays.items()},
            "target": self.targets[index],
            "observed": self.observed[index],
            "index": index,
        }


def infer_task(targets: np.ndarray) -> Task:
    """Integer (or bool) class ids -> classification; [N, C] 0/1 -> multilabel; floats ->
    regression."""
    targets = np.asarray(targets)
    if targets.ndim == 2 and targets.shape[1] > 1:
        return "multilabel"
    if np.issubdtype(targets.dtype, np.integer) or np.issubdtype(targets.dtype, np.bool_):
        return "classification"
    if np.issubdtype(targets.dtype, np.floating):
        return "regression"
    raise DataError(
        f"cannot infer the task from targets of dtype {targets.dtype}; expected integer class "
        "ids, an [N, C] multi-hot array, or floats for regression"
    )
