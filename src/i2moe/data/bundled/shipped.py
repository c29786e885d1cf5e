"""What every bundled loader shares: opening a shipped data file, checking the seed and split
fractions, and wrapping row-index splits as a DataBundle."""

from __future__ import annotations

from importlib import resources
from typing import IO, Any, cast

import numpy as np

from i2moe.data.base import ArrayDataset, DataBundle, DataError, ModalitySpec, Task
from i2moe.data.registry import get_dataset_entry

DATA_PACKAGE = "i2moe"
DATA_FOLDER = "datasets_data"


def open_data(filename: str) -> IO[bytes]:
    """The shipped data file ``datasets_data/<filename>``, opened for binary reading."""
    resource = resources.files(DATA_PACKAGE).joinpath(DATA_FOLDER, filename)
    if not resource.is_file():
        raise DataError(
            f"{DATA_FOLDER}/{filename}: bundled data file is missing from the installed "
            "package; reinstall i2moe"
        )
    return resource.open("rb")


def check_seed(dataset: str, seed: Any) -> None:
    """Raise a DataError unless ``seed`` is an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"dataset '{dataset}': option seed={seed!r}; expected an integer >= 0")


def check_fractions(dataset: str, val_fraction: float, test_fraction: float) -> None:
    """Raise a DataError unless both fractions lie in [0, 1) and leave training data."""
    for option, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise DataError(
                f"dataset '{dataset}': option {option}={value!r}; expected a number in [0, 1)"
            )
    if val_fraction + test_fraction >= 1.0:
        raise DataError(
            f"dataset '{dataset}': options val_fraction + test_fraction = "
            f"{val_fraction + test_fraction}; expected less than 1 so training data remains"
        )


def rows_bundle(
    name: str,
    modalities: dict[str, np.ndarray],
    targets: np.ndarray,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    class_names: list[str],
    description: str,
    meta: dict[str, Any],
    observed: np.ndarray | None = None,
) -> DataBundle:
    """The registered dataset ``name`` as a DataBundle of the rows of each split.

    Args:
        name: The dataset's registry name; its task, citation and licence come from there.
        modalities: Modality name -> values [N, F] (float32), in modality order.
        targets: Labels [N] or [N, C].
        splits: Row indices of train, validation and test; they become the sample ids.
        class_names: One name per model output (class or label).
        description: One line for ``meta["description"]``.
        meta: Further metadata, after the description, citation and licence; ``split_sizes``
            is added.
        observed: Optional [N, M] bool, False where a modality is missing.

    Returns:
        The bundle.
    """
    entry = get_dataset_entry(name)
    task = cast(Task, entry.task)

    def subset(rows: np.ndarray) -> ArrayDataset:
        return ArrayDataset(
            {key: values[rows] for key, values in modalities.items()},
            targets[rows],
            task,
            observed=None if observed is None else observed[rows],
            sample_ids=rows.tolist(),
        )

    train, val, test = (subset(rows) for rows in splits)
    return DataBundle(
        name=name,
        task=task,
        modalities=[ModalitySpec.from_shape(key, v.shape[1:]) for key, v in modalities.items()],
        num_outputs=len(class_names),
        train=train,
        val=val,
        test=test,
        class_names=class_names,
        meta={
            "description": description,
            "citation": entry.citation,
            "licence": entry.licence,
            **meta,
            "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
        },
    )
