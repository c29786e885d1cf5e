"""Arrays of the shipped data files and of bundle splits, for the bundled-dataset tests."""

from __future__ import annotations

from importlib import resources

import numpy as np


def raw_arrays(filename: str) -> dict[str, np.ndarray]:
    """The arrays of the shipped ``datasets_data/<filename>``."""
    path = resources.files("i2moe").joinpath("datasets_data", filename)
    with path.open("rb") as handle, np.load(handle) as archive:
        return {key: archive[key] for key in archive.files}


def split_ids(bundle) -> list[np.ndarray]:
    """Sample ids (source rows) of train, val and test."""
    return [np.array(bundle.split(s).sample_ids) for s in ("train", "val", "test")]


def stacked(dataset, modality: str) -> np.ndarray:
    """One modality of a split as a NumPy array."""
    return dataset.arrays[modality].numpy()
