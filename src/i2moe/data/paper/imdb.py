"""MM-IMDb from Arevalo et al.'s ``multimodal_imdb.hdf5``, read lazily row by row.

The file holds ``features`` [N, 300] (averaged word2vec of the plot), ``vgg_features``
[N, 4096] (VGG-16 features of the poster), ``genres`` [N, 23] multi-hot, ``imdb_ids`` [N] and
``images`` (raw posters, not used). The published split is by row: train [0, 15552),
validation [15552, 18160), test [18160, 25959).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from i2moe.data.base import DataBundle, DataError, ModalitySpec
from i2moe.data.paper.folder_checks import Problems, import_optional, require_file
from i2moe.data.paper.lazy_files import ProcessLocalFile

logger = logging.getLogger(__name__)

FILENAME = "multimodal_imdb.hdf5"
PUBLISHED_ROWS = 25959
PUBLISHED_BOUNDARIES = (15552, 18160)
NUM_GENRES = 23
TEXT_KEY, IMAGE_KEY, LABEL_KEY, ID_KEY = "features", "vgg_features", "genres", "imdb_ids"
EXPECTED = {
    TEXT_KEY: "[N, 300] float word2vec text features",
    IMAGE_KEY: "[N, 4096] float VGG-16 poster features",
    LABEL_KEY: f"[N, {NUM_GENRES}] 0/1 multi-hot genres",
    ID_KEY: "[N] IMDb ids",
}


class HDF5RowDataset(Dataset):
    """One split of MM-IMDb: rows ``[start, stop)`` of the HDF5 file, read one row per item.

    The file is opened lazily in each process that reads (DataLoader workers included) and is
    never pickled, so memory stays at one row per item whatever the file's size.

    Args:
        path: the HDF5 file.
        start: first row of the split.
        stop: one past the last row.
    """

    def __init__(self, path: str | Path, start: int, stop: int) -> None:
        self.path = str(path)
        self.start = int(start)
        self.stop = int(stop)
        self._hdf5 = ProcessLocalFile(functools.partial(_open_hdf5, self.path))

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a split of {len(self)} rows")
        handle = self._hdf5.get()
        row = self.start + index
        image = np.asarray(handle[IMAGE_KEY][row], dtype=np.float32)
        text = np.asarray(handle[TEXT_KEY][row], dtype=np.float32)
        genres = np.asarray(handle[LABEL_KEY][row], dtype=np.float32)
        return {
            "inputs": {"image": torch.from_numpy(image), "text": torch.from_numpy(text)},
            "target": torch.from_numpy(genres),
            "observed": torch.ones(2, dtype=torch.bool),
            "index": index,
        }

    @property
    def sample_ids(self) -> list[str]:
        """IMDb ids of this split's rows (read from the file on each call)."""
        ids = self._hdf5.get()[ID_KEY][self.start : self.stop]
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    @property
    def is_open(self) -> bool:
        """Whether this process holds an open handle (for tests and diagnostics)."""
        return self._hdf5.is_open

    def close(self) -> None:
        """Close this process's handle, if any."""
        self._hdf5.close()


def _open_hdf5(path: str) -> Any:
    h5py = import_optional("h5py", "reading MM-IMDb's HDF5 file")
    return h5py.File(path, "r")


def read_imdb(
    root: str | Path,
    *,
    filename: str = FILENAME,
    genre_names: Sequence[str] | None = None,
) -> DataBundle:
    """Read MM-IMDb's HDF5 file as a lazily read multilabel bundle.

    Args:
        root: folder holding the file, or the file itself.
        filename: the HDF5 file's name inside ``root``.
        genre_names: names of the 23 genre columns, in file order, for reports; the file does
            not store them, so they default to ``genre_00`` ... ``genre_22``.

    Returns:
        A multilabel bundle with vector modalities ``image`` (4096) and ``text`` (300). The
        published row ranges are used for the full file (N = 25,959); a file of another size
        gets the same proportions (``meta["split_scaled"]`` is then True).

    Raises:
        DataError: the file is missing, unreadable or lacks a dataset or the expected shape.
        ImportError: h5py is not installed.
    """
    path, problems = require_file(
        "MM-IMDb", root, filename, "Arevalo et al.'s multimodal_imdb.hdf5"
    )
    h5py = import_optional("h5py", "reading MM-IMDb's HDF5 file")
    try:
        with h5py.File(path, "r") as handle:
            shapes = {key: handle[key].shape for key in EXPECTED if key in handle}
    except OSError as error:
        raise DataError(f"{path}: cannot be opened as HDF5 ({error})") from error
    n = _validate(shapes, path.name, problems)

    boundaries, scaled = split_rows(n)
    if scaled:
        logger.warning(
            "MM-IMDb: %s has %d rows, not the published %d; splitting at rows %s "
            "(same proportions)",
            path,
            n,
            PUBLISHED_ROWS,
            boundaries,
        )
    names = list(genre_names) if genre_names is not None else None
    if names is not None and len(names) != NUM_GENRES:
        raise DataError(f"option genre_names has {len(names)} names; expected {NUM_GENRES}")
    first, second = boundaries
    return DataBundle(
        name="imdb",
        task="multilabel",
        modalities=[
            ModalitySpec("image", (shapes[IMAGE_KEY][1],), "vector"),
            ModalitySpec("text", (shapes[TEXT_KEY][1],), "vector"),
        ],
        num_outputs=NUM_GENRES,
        train=HDF5RowDataset(path, 0, first),
        val=HDF5RowDataset(path, first, second),
        test=HDF5RowDataset(path, second, n),
        class_names=names or [f"genre_{i:02d}" for i in range(NUM_GENRES)],
        meta={
            "source": str(path),
            "rows": n,
            "split_rows": {"train": [0, first], "val": [first, second], "test": [second, n]},
            "split_scaled": scaled,
            "lazy": True,
        },
    )


def split_rows(n: int) -> tuple[tuple[int, int], bool]:
    """Split boundaries for a file of ``n`` rows, and whether they were scaled.

    The full file uses the published boundaries; any other size keeps their proportions
    (rounded), so tiny copies and subsets split the same way.
    """
    if n == PUBLISHED_ROWS:
        return PUBLISHED_BOUNDARIES, False
    first = round(n * PUBLISHED_BOUNDARIES[0] / PUBLISHED_ROWS)
    second = round(n * PUBLISHED_BOUNDARIES[1] / PUBLISHED_ROWS)
    return (first, second), True


def _validate(shapes: dict[str, tuple[int, ...]], name: str, problems: Problems) -> int:
    expected_width = {TEXT_KEY: None, IMAGE_KEY: None, LABEL_KEY: NUM_GENRES}
    for key, description in EXPECTED.items():
        if key not in shapes:
            problems.add(name, f"dataset '{key}' is missing; expected {description}")
            continue
        shape = shapes[key]
        rank = 1 if key == ID_KEY else 2
        if len(shape) != rank:
            problems.add(name, f"dataset '{key}' has shape {shape}; expected {description}")
            continue
        width = expected_width.get(key)
        if width is not None and shape[1] != width:
            problems.add(name, f"dataset '{key}' has shape {shape}; expected {description}")
    rows = {key: shape[0] for key, shape in shapes.items() if len(shape) >= 1}
    if len(set(rows.values())) > 1:
        detail = ", ".join(f"'{k}': {v}" for k, v in rows.items())
        problems.add(name, f"datasets disagree on N ({detail}); expected the same N")
    elif rows:
        (first, second), _ = split_rows(next(iter(rows.values())))
        n = next(iter(rows.values()))
        if not 0 < first < second < n:
            problems.add(
                name,
                f"has {n} rows, too few to split in the published proportions; expected "
                "enough rows for non-empty train, validation and test row ranges",
            )
    problems.raise_if_any()
    return next(iter(rows.values()))
