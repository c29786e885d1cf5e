"""The user's own data as a folder of ``.npy`` files, read lazily (larger than memory).

One ``<modality>.npy`` per modality, a label file ``y.npy``, and optional ``split.npy``,
``observed.npy`` / ``observed_<name>.npy``, ``ids.npy``, ``class_names.npy`` and the
generator's records: the names and meanings of the ``.npz`` reader (:mod:`i2moe.data.npz`).
Modality files stay memory-mapped in their stored dtype; one streaming pass over chunks of
rows checks them and computes the training statistics, and each item is read from disk,
converted to float32 and scaled when a batch is assembled. Small files (labels, split, masks,
ids) are read whole. Files that do not end in ``.npy`` are ignored (logged). See
``docs/data-format.md``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from i2moe.data.assemble import class_weights
from i2moe.data.base import SPLITS, DataBundle, DataError, ModalitySpec, Task
from i2moe.data.npz import (
    OBSERVED_PREFIX,
    PER_SAMPLE_RECORDS,
    RESERVED_NAMES,
    observed_from_arrays,
    per_sample_record,
    text_list,
)
from i2moe.data.paper.lazy_files import ProcessLocalFile
from i2moe.data.scaling import MIN_STD, Statistics
from i2moe.data.validate import (
    LABEL_FORMS,
    check_task_name,
    describe_dtype,
    prepare_targets,
    reading_split,
    unlabelled_targets,
)

logger = logging.getLogger(__name__)

ARRAY_SUFFIX = ".npy"
# Rows per chunk of the validation pass: bounds its memory to a few chunks of one modality.
CHUNK_ROWS = 4096
MODALITY_FORMS = "[N, F] vectors, [N, L, F] sequences or [N, C, H, W] images of numbers"


def _open_array(path: Path, *, memory_mapped: bool) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if memory_mapped else None, allow_pickle=False)
    except Exception as error:  # truncated, damaged, pickled or not a .npy file at all
        raise DataError(
            f"{path}: cannot be read as a .npy array ({type(error).__name__}: {error}); "
            "expected one array written by numpy.save, without pickling"
        ) from error
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(
            f"{path}: holds a .npz archive, not one array; expected one array written by numpy.save"
        )
    return array


def _open_memmap(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _is_reserved(name: str) -> bool:
    return name in RESERVED_NAMES or name.startswith(OBSERVED_PREFIX)


def _check_modality(
    array: np.ndarray, num_samples: int, *, source: str, key: str, counted_by: str
) -> tuple[int, ...]:
    """The per-sample shape of a modality file ([N] reads as [N, 1]), or a DataError."""
    field = f"array '{key}'"
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: {field}: holds {describe_dtype(array.dtype)} values; "
            f"expected {MODALITY_FORMS}"
        )
    if array.ndim == 0 or array.shape[0] != num_samples:
        count = array.shape[0] if array.ndim else "no"
        raise DataError(
            f"{source}: {field}: has {count} samples but '{counted_by}' has {num_samples}; "
            f"expected {MODALITY_FORMS} with one row per "
            f"{'label' if counted_by == 'y' else 'sample'}"
        )
    shape = (1,) if array.ndim == 1 else tuple(array.shape[1:])
    if len(shape) > 4:
        raise DataError(f"{source}: {field}: has shape {array.shape}; expected {MODALITY_FORMS}")
    if 0 in shape:
        raise DataError(
            f"{source}: {field}: has zero features (shape {array.shape}); expected "
            f"{MODALITY_FORMS} with at least one value per sample"
        )
    return shape


class RunningMoments:
    """Mean and population variance per column, merged chunk by chunk in float64 (Chan et
    al.'s pairwise update), equal to numpy's in-memory ``mean`` / ``std`` to rounding."""

    def __init__(self, num_features: int) -> None:
        self.count = 0
        self.mean = np.zeros(num_features, dtype=np.float64)
        self.squares = np.zeros(num_features, dtype=np.float64)  # sum of squared deviations

    def add(self, rows: np.ndarray) -> None:
        """Merge rows [n, F]."""
        if not len(rows):
            return
        rows = rows.astype(np.float64)
        chunk_mean = rows.mean(axis=0)
        chunk_squares = ((rows - chunk_mean) ** 2).sum(axis=0)
        total = self.count + len(rows)
        delta = chunk_mean - self.mean
        self.mean = self.mean + delta * (len(rows) / total)
        self.squares = self.squares + chunk_squares + delta**2 * (self.count * len(rows) / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.squares / max(self.count, 1))


def _scan_modality(
    array: np.ndarray,
    observed: np.ndarray,
    train: np.ndarray,
    *,
    vector: bool,
    clean_nonfinite: bool,
    source: str,
    field: str,
    chunk_rows: int,
) -> tuple[np.ndarray, RunningMoments | None]:
    """One pass over a modality in chunks: rows entirely NaN become missing, other NaN/inf
    are refused (or counted, with ``clean_nonfinite``), and a vector modality's moments are
    gathered over its observed training rows (non-finite values counted as 0, as in memory).

    Returns:
        The updated observed mask [N] and, for a vector modality, its moments.
    """
    observed = observed.copy()
    moments = RunningMoments(int(np.prod(array.shape[1:], dtype=np.int64))) if vector else None
    bad_values = bad_samples = 0
    first_bad: int | None = None
    for start in range(0, len(array), chunk_rows):
        stop = min(start + chunk_rows, len(array))
        with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
            values = np.asarray(array[start:stop], dtype=np.float32).reshape(stop - start, -1)
        nonfinite = ~np.isfinite(values)
        present = observed[start:stop] & ~np.isnan(values).all(axis=1)
        observed[start:stop] = present
        bad_rows = nonfinite.any(axis=1) & present
        if bad_rows.any():
            bad_values += int(nonfinite[bad_rows].sum())
            bad_samples += int(bad_rows.sum())
            if first_bad is None:
                first_bad = start + int(np.argmax(bad_rows))
        if moments is not None:
            values[nonfinite] = 0.0
            moments.add(values[present & train[start:stop]])
    if bad_samples:
        if not clean_nonfinite:
            raise DataError(
                f"{source}: {field}: {bad_values} NaN/inf values (or values too large for "
                f"float32) in {bad_samples} samples, first at row {first_bad}; expected finite "
                "numbers, or an entire row of NaN to mark the modality missing for that sample "
                "(or clean_nonfinite=True to replace them with 0)"
            )
        logger.warning(
            "%s: %s: replaced %d NaN/inf values in %d samples with 0 (first at row %d)",
            source,
            field,
            bad_values,
            bad_samples,
            first_bad,
        )
    return observed, moments


def _scaling(
    moments: RunningMoments, given: Mapping[str, Any] | None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Mean and std [F] (float64) to scale with, and whether to scale at all, following
    :func:`i2moe.data.scaling.standardize`: a run's statistics replace the training rows'
    unless they are those rounded to float32."""
    num_features = len(moments.mean)
    mean = np.zeros(num_features, dtype=np.float64)
    std = np.ones(num_features, dtype=np.float64)
    if moments.count:
        mean = moments.mean
        spread = moments.std
        std = np.where(spread < MIN_STD, 1.0, spread)
    if given is not None and len(given["mean"]) == len(given["std"]) == num_features:
        given_mean = np.asarray(given["mean"], dtype=np.float32)
        given_std = np.asarray(given["std"], dtype=np.float32)
        if not (
            np.array_equal(given_mean, mean.astype(np.float32))
            and np.array_equal(given_std, std.astype(np.float32))
        ):
            mean, std = given_mean.astype(np.float64), given_std.astype(np.float64)
        return mean, std, True
    return mean, std, bool(moments.count)


def _typed_targets(values: np.ndarray, task: Task) -> torch.Tensor:
    """Labels typed as :class:`~i2moe.data.base.ArrayDataset` types them."""
    if task == "classification":
        return torch.as_tensor(values, dtype=torch.long)
    if task == "multilabel":
        return torch.as_tensor(values, dtype=torch.float32)
    return torch.as_tensor(np.asarray(values, dtype=np.float32).reshape(len(values), 1))


class MemoryMappedDataset(Dataset):
    """A split whose modalities stay in ``.npy`` files on disk, memory-mapped in their stored
    dtype; items have the form of :class:`~i2moe.data.base.ArrayDataset` items.

    Each item reads its row from every file, converts it to float32, sets non-finite values
    to 0, zeroes a missing modality and standardises a vector modality. Every process opens
    its own memory maps on first use; a pickled dataset (for DataLoader workers) carries only
    the file names.

    Args:
        files: Modality name -> its ``.npy`` file, in modality order.
        shapes: Modality name -> per-sample shape.
        rows: The split's rows in the files [n].
        targets: Labels of the split's rows ([n] or [n, C]).
        task: How targets are typed in items.
        observed: [n, M] bool, False where a modality is missing.
        scaling: Modality name -> (mean [F], std [F]) float64, for the modalities to
            standardise.
        sample_ids: One identifier per row of the split.
    """

    def __init__(
        self,
        files: Mapping[str, Path],
        shapes: Mapping[str, tuple[int, ...]],
        rows: np.ndarray,
        targets: np.ndarray,
        task: Task,
        observed: np.ndarray,
        scaling: Mapping[str, tuple[np.ndarray, np.ndarray]],
        sample_ids: Sequence[Any],
    ) -> None:
        self.names = list(files)
        self.files = {
            name: ProcessLocalFile(functools.partial(_open_memmap, path))
            for name, path in files.items()
        }
        self.shapes = dict(shapes)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = _typed_targets(targets, task)
        self.observed = torch.as_tensor(np.asarray(observed, dtype=bool))
        self.scaling = dict(scaling)
        self.sample_ids = list(sample_ids)

    def __len__(self) -> int:
        return len(self.rows)

    def _values(self, name: str, row: int, present: bool) -> torch.Tensor:
        if not present:
            return torch.zeros(self.shapes[name], dtype=torch.float32)
        with np.errstate(over="ignore"):
            values = np.array(self.files[name].get()[row], dtype=np.float32)
        values = values.reshape(self.shapes[name])
        values[~np.isfinite(values)] = 0.0
        if name in self.scaling:
            mean, std = self.scaling[name]
            values = ((values - mean) / std).astype(np.float32)
        return torch.from_numpy(values)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = int(self.rows[index])
        observed = self.observed[index]
        return {
            "inputs": {
                name: self._values(name, row, bool(observed[column]))
                for column, name in enumerate(self.names)
            },
            "target": self.targets[index],
            "observed": observed,
            "index": index,
        }


def read_folder(
    path: str | Path,
    *,
    task: str | None = None,
    seed: int = 0,
    clean_nonfinite: bool = False,
    statistics: Statistics | None = None,
    for_prediction: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> DataBundle:
    """Read a folder of ``.npy`` files into a DataBundle whose splits read rows from disk.

    The bundle equals :func:`i2moe.data.npz.read_npz`'s for an archive of the same arrays
    (same splits, targets, masks, statistics and, to float rounding, items), but only the
    labels, split, masks and ids are held in memory.

    Args:
        path: The folder.
        task: Force ``classification``, ``multilabel`` or ``regression``; inferred from ``y``
            when None.
        seed: Seed of the generated split when the folder has no ``split.npy``.
        clean_nonfinite: Read stray NaN/inf feature values as 0 (logged) instead of raising.
        statistics: A trained run's ``{modality: {"mean", "std"}}`` to scale the vector
            modalities with instead of the training split's.
        for_prediction: Read the folder to be predicted (as ``read_npz`` does): ``y`` and
            ``split`` optional, every row in file order in ``bundle.test``.
        chunk_rows: Rows per chunk of the validation pass.

    Returns:
        The bundle; ``meta`` holds what ``read_npz`` records, and ``files`` (modality name ->
        its ``.npy`` file).

    Raises:
        DataError: for every problem with the folder, naming the file, the array and the
            expected form.
    """
    folder = Path(path)
    source = str(folder)
    check_task_name(task, source=source)
    if not folder.is_dir():
        raise DataError(f"{source}: folder not found; expected a folder of .npy files")
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    arrays = {entry.stem: entry for entry in entries if entry.suffix == ARRAY_SUFFIX}
    ignored = [entry.name for entry in entries if entry.suffix != ARRAY_SUFFIX]
    if ignored:
        logger.info("%s: ignoring %s (not .npy files)", source, ", ".join(ignored))
    labelled = "y" in arrays
    if not labelled and not for_prediction:
        raise DataError(
            f"{source}: has no file y.npy; expected y.npy with the labels: {LABEL_FORMS}"
        )
    names = sorted(key for key in arrays if not _is_reserved(key))
    if not names:
        found = ", ".join(sorted(f"{key}.npy" for key in arrays)) or "no .npy files"
        raise DataError(
            f"{source}: has no modality files (only {found}); expected at least one "
            "<modality>.npy besides the reserved names y, split, observed, observed_<name>, "
            "ids, class_names, interaction, interaction_names, latent_bits"
        )
    small = {
        key: _open_array(arrays[key], memory_mapped=False)
        for key in arrays
        if _is_reserved(key) and (key != "class_names" or not for_prediction)
    }
    modalities = {key: _open_array(arrays[key], memory_mapped=True) for key in names}

    if labelled:
        targets = prepare_targets(
            small["y"],
            task,
            source=str(arrays["y"]),
            field="array 'y'",
            for_prediction=for_prediction,
        )
        counted_by = "y"
    else:
        counted_by = next((key for key in names if modalities[key].ndim), names[0])
        num_rows = modalities[counted_by].shape[0] if modalities[counted_by].ndim else 0
        if num_rows == 0:
            raise DataError(
                f"{arrays[counted_by]}: array '{counted_by}': has no samples; expected at least "
                "one row to predict"
            )
        targets = unlabelled_targets(num_rows, task, source=source, absent="has no file y.npy")
    num_samples = len(targets.values)
    shapes = {
        key: _check_modality(
            modalities[key],
            num_samples,
            source=str(arrays[key]),
            key=key,
            counted_by=counted_by,
        )
        for key in names
    }
    observed = observed_from_arrays(
        small, names, num_samples, source_of=lambda key: str(folder / f"{key}{ARRAY_SUFFIX}")
    )

    def record(key: str) -> np.ndarray:
        return per_sample_record(
            small[key], num_samples, source=str(arrays[key]), key=key, counted_by=counted_by
        )

    sample_ids = record("ids") if "ids" in small else np.arange(num_samples)
    per_sample = {key: record(key) for key in PER_SAMPLE_RECORDS if key in small}
    class_names = None
    if "class_names" in small:
        if targets.task == "regression":
            logger.warning("%s: class_names.npy is ignored for a regression task", source)
        else:
            class_names = text_list(
                small["class_names"],
                targets.num_outputs,
                source=str(arrays["class_names"]),
                field="array 'class_names'",
            )

    split_source = str(arrays["split"]) if "split" in arrays else source
    codes, generated, file_split, train = reading_split(
        small.get("split"),
        targets,
        num_samples,
        for_prediction=for_prediction,
        seed=seed,
        source=split_source,
        field="array 'split'",
        class_names=class_names,
    )
    scaling: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    standardization: dict[str, dict[str, np.ndarray]] = {}
    for column, key in enumerate(names):
        vector = len(shapes[key]) == 1
        observed[:, column], moments = _scan_modality(
            modalities[key],
            observed[:, column],
            train,
            vector=vector,
            clean_nonfinite=clean_nonfinite,
            source=str(arrays[key]),
            field=f"array '{key}'",
            chunk_rows=chunk_rows,
        )
        if not (observed[:, column] & train).any():
            which = "row" if for_prediction else "training sample"
            logger.warning("%s: modality '%s' is missing for every %s", source, key, which)
        if moments is not None:
            mean, std, scaled = _scaling(moments, (statistics or {}).get(key))
            standardization[key] = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
            if scaled:
                scaling[key] = (mean, std)
    modalities.clear()  # the datasets open their own memory maps
    none_observed = int((~observed.any(axis=1)).sum())
    if none_observed:
        logger.warning("%s: %d samples have every modality missing", source, none_observed)

    meta: dict[str, Any] = {
        "source": source,
        "split_generated": generated,
        "labelled": labelled,
        "standardization": standardization,
        "missing": {key: int((~observed[:, i]).sum()) for i, key in enumerate(names)},
        "files": {key: str(arrays[key]) for key in names},
        "rows": {},
    }
    if for_prediction:
        meta["file_split"] = file_split
    if "interaction_names" in small:
        meta["interaction_names"] = [str(v) for v in np.ravel(small["interaction_names"])]
    for key in per_sample:
        meta[key] = {}
    splits: dict[str, MemoryMappedDataset] = {}
    for code, split in enumerate(SPLITS):
        rows = np.flatnonzero(codes == code)
        meta["rows"][split] = rows
        for key, values in per_sample.items():
            meta[key][split] = values[rows]
        splits[split] = MemoryMappedDataset(
            {key: arrays[key] for key in names},
            shapes,
            rows,
            targets.values[rows],
            targets.task,
            observed[rows],
            scaling,
            np.asarray(sample_ids)[rows].tolist(),
        )
    return DataBundle(
        name=folder.resolve().name,
        task=targets.task,
        modalities=[ModalitySpec.from_shape(key, shapes[key]) for key in names],
        num_outputs=targets.num_outputs,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=class_names,
        class_weights=class_weights(targets, codes == 0),
        meta=meta,
    )


__all__ = ["CHUNK_ROWS", "MemoryMappedDataset", "RunningMoments", "read_folder"]
