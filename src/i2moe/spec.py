"""The vocabulary every layer shares: tasks, split names, modality specs and the data error.

It imports nothing of i2moe, so encoders, fusion backbones, the model, the readers and the
command line all speak of modalities and tasks in the same terms (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "multilabel", "regression"]
TASKS: tuple[str, ...] = ("classification", "multilabel", "regression")
ModalityKind = Literal["vector", "sequence", "image", "volume"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


class DataError(ValueError):
    """A user's data does not have the expected form; the message names file, field and form."""


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: its name, per-sample shape and kind.

    ``kind`` follows the shape: ``vector`` (F,), ``sequence`` (L, F), ``image`` (C, H, W),
    ``volume`` (C, D, H, W).
    """

    name: str
    shape: tuple[int, ...]
    kind: ModalityKind

    @staticmethod
    def from_shape(name: str, shape: Sequence[int]) -> ModalitySpec:
        kinds: dict[int, ModalityKind] = {1: "vector", 2: "sequence", 3: "image", 4: "volume"}
        if len(shape) not in kinds:
            raise DataError(
                f"modality '{name}': per-sample shape {tuple(shape)} has {len(shape)} axes; "
                "expected (F,), (L, F), (C, H, W) or (C, D, H, W)"
            )
        return ModalitySpec(name, tuple(int(s) for s in shape), kinds[len(shape)])
