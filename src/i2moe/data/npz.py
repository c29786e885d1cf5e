"""The user's own data as a NumPy ``.npz`` archive, and the checks shared with the table reader.

One array per modality (any name not reserved), a label array ``y``, and optional ``split``,
``observed`` / ``observed_<name>``, ``ids``, ``class_names`` and the generator's records
``interaction``, ``interaction_names`` and ``latent_bits``. Modalities are ordered by sorted
name. See ``docs/data-format.md`` for the full format and every error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from i2moe.data.base import (
    SPLITS,
    TASKS,
    ArrayDataset,
    DataBundle,
    DataError,
    ModalitySpec,
    Task,
    infer_task,
)
from i2moe.data.splits import (
    check_split_sizes,
    random_split,
    split_codes_from_array,
    stratified_split,
)

logger = logging.getLogger(__name__)

OBSERVED_PREFIX = "observed_"
# Per-sample records the generator writes; kept per split in ``bundle.meta``.
PER_SAMPLE_RECORDS: tuple[str, ...] = ("interaction", "latent_bits")
RESERVED_NAMES: tuple[str, ...] = (
    "y",
    "split",
    "observed",
    "ids",
    "class_names",
    "interaction_names",
    *PER_SAMPLE_RECORDS,
)
LABEL_FORMS = "integer class ids [N], an [N, C] 0/1 multi-hot array, or floats [N] for regression"
MIN_STD = 1e-8


@dataclass(frozen=True)
class Targets:
    """Validated labels: int64 [N] class ids, float32 [N, C] multi-hot or float32 [N] values."""

    values: np.ndarray
    task: Task
    num_outputs: int

    def stratify_by(self) -> np.ndarray | None:
        """Labels to stratify a generated split on; ``None`` means unstratified."""
        if self.task == "classification":
            return self.values
        if self.task == "multilabel":
            return self.values[:, 0]
        return None


def _describe_dtype(dtype: np.dtype) -> str:
    if dtype.kind in "USO":
        return f"text or object ({dtype})"
    return str(dtype)


def check_task_name(task: str | None, *, source: str) -> None:
    """Raise a DataError unless ``task`` is None or a known task name."""
    if task is not None and task not in TASKS:
        raise DataError(
            f"{source}: option 'task': '{task}' is unknown; expected one of {', '.join(TASKS)}"
        )


def prepare_targets(raw: Any, task: str | None, *, source: str, field: str) -> Targets:
    """Validate labels against the (given or inferred) task.

    Args:
        raw: The label array as read, [N] or [N, C].
        task: A forced task, or None to infer it (``base.infer_task``).
        source: File name for error messages.
        field: Where the labels come from, e.g. ``"array 'y'"`` or ``"column 'label'"``.

    Returns:
        The typed labels with their task and number of model outputs.

    Raises:
        DataError: when the labels do not fit the task (see ``docs/data-format.md``).
    """
    check_task_name(task, source=source)
    raw = np.asarray(raw)

    def fail(problem: str, expected: str = LABEL_FORMS) -> DataError:
        return DataError(f"{source}: {field}: {problem}; expected {expected}")

    if raw.dtype.kind not in "biuf":
        raise fail(f"holds {_describe_dtype(raw.dtype)} values")
    if raw.ndim not in (1, 2) or raw.shape[0] == 0 or (raw.ndim == 2 and raw.shape[1] == 0):
        raise fail(f"has shape {raw.shape}")
    if raw.dtype.kind == "f":
        finite = np.isfinite(raw).reshape(len(raw), -1).all(axis=1)
        if not finite.all():
            raise fail(
                f"is NaN or infinite for {int((~finite).sum())} samples "
                f"(first at row {int(np.argmin(finite))})",
                "a finite label for every sample",
            )
    one_column = raw[:, 0] if raw.ndim == 2 and raw.shape[1] == 1 else raw
    resolved: Task = task if task is not None else infer_task(one_column)  # type: ignore[assignment]

    if resolved == "classification":
        if one_column.ndim != 1:
            raise fail(
                f"has shape {raw.shape} but task 'classification' needs one class id per sample",
                "integer class ids [N] (use task 'multilabel' for an [N, C] multi-hot array)",
            )
        if raw.dtype.kind == "f" and not np.all(one_column == np.round(one_column)):
            raise fail(
                "holds non-integer values but the task is 'classification'",
                "integer class ids 0..K-1 (or task 'regression' for continuous targets)",
            )
        labels = one_column.astype(np.int64)
        if labels.min() < 0:
            raise fail(
                f"holds the negative class id {int(labels.min())}",
                "integer class ids 0..K-1",
            )
        classes = np.unique(labels)
        if len(classes) < 2:
            raise fail(
                f"holds a single class ({int(classes[0])})",
                "at least 2 different classes for classification",
            )
        num_outputs = int(labels.max()) + 1
        if num_outputs > 10 * len(classes) + 10:
            raise fail(
                f"holds {len(classes)} classes but class ids up to {num_outputs - 1}",
                "consecutive integer class ids 0..K-1",
            )
        if len(classes) < num_outputs:
            absent = sorted(set(range(num_outputs)) - set(classes.tolist()))
            logger.warning(
                "%s: %s: class ids %s never occur; the model still gets %d outputs "
                "(class ids are expected to be 0..K-1)",
                source,
                field,
                absent[:10],
                num_outputs,
            )
        return Targets(labels, "classification", num_outputs)

    if resolved == "multilabel":
        if raw.ndim != 2:
            raise fail(
                f"has shape {raw.shape} but task 'multilabel' needs one 0/1 column per label",
                "an [N, C] 0/1 multi-hot array",
            )
        if not np.isin(raw, (0, 1)).all():
            raise fail(
                "holds values other than 0 and 1 for task 'multilabel'",
                "an [N, C] 0/1 multi-hot array",
            )
        return Targets(raw.astype(np.float32), "multilabel", int(raw.shape[1]))

    if one_column.ndim != 1:
        raise fail(
            f"has shape {raw.shape} but task 'regression' predicts one value per sample",
            "floats [N] or [N, 1]",
        )
    values = one_column.astype(np.float32)
    if not np.isfinite(values).all():
        raise fail("holds values too large for float32", "finite regression targets")
    return Targets(values, "regression", 1)


def resolve_split(
    raw_split: np.ndarray | None,
    targets: Targets,
    *,
    seed: int,
    source: str,
    field: str,
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, bool]:
    """Validate a user's split or generate a seeded 70/15/15 one, then check it.

    Args:
        raw_split: The user's split codes, or None to generate them.
        targets: Validated labels (stratify on the class, or on the first label).
        seed: Seed of the generated split.
        source: File name for error messages.
        field: Where the user's split comes from, e.g. ``"array 'split'"``.
        class_names: Optional class names, quoted beside the class id in errors.

    Returns:
        Split codes [N] and whether they were generated.

    Raises:
        DataError: for bad split values, an empty split, or a class that occurs in val or test
            but not in train.
    """
    num_samples = len(targets.values)
    if raw_split is None:
        stratify = targets.stratify_by()
        codes = (
            random_split(num_samples, seed=seed)
            if stratify is None
            else stratified_split(stratify, seed=seed)
        )
        generated, where = True, "generated 70/15/15 split"
    else:
        raw_split = np.asarray(raw_split)
        if raw_split.shape[:1] != (num_samples,):
            raise DataError(
                f"{source}: {field}: has {raw_split.shape[0] if raw_split.ndim else 0} entries "
                f"but there are {num_samples} labels; expected one split code per sample"
            )
        codes = split_codes_from_array(raw_split, source=source, field=field)
        generated, where = False, field
    check_split_sizes(codes, source=source, field=where)
    if targets.task == "classification":
        in_train = set(np.unique(targets.values[codes == 0]).tolist())
        for code in (1, 2):
            absent = sorted(set(np.unique(targets.values[codes == code]).tolist()) - in_train)
            if absent:
                label = f"{absent[0]}"
                if class_names is not None and absent[0] < len(class_names):
                    label += f" '{class_names[absent[0]]}'"
                raise DataError(
                    f"{source}: {where}: class {label} occurs in the {SPLITS[code]} split "
                    "but not in train; expected every class of val and test to occur in train"
                )
    return codes, generated


def standardize(
    values: np.ndarray, observed: np.ndarray, train: np.ndarray, columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise [N, F] features in place with the statistics of observed training rows.

    Args:
        values: Features [N, F] (float32), changed in place.
        observed: [N] bool, rows where the modality is present.
        train: [N] bool, rows of the training split.
        columns: Optional [F] bool, the columns to standardise (others are left as they are).

    Returns:
        The mean and standard deviation used, [F] float32 each (0 and 1 for skipped columns).
        A standard deviation below 1e-8 is replaced by 1, so a constant column becomes 0.
    """
    num_features = values.shape[1]
    mean = np.zeros(num_features, dtype=np.float64)
    std = np.ones(num_features, dtype=np.float64)
    rows = observed & train
    if rows.any():
        chosen = np.ones(num_features, dtype=bool) if columns is None else columns
        subset = values[rows][:, chosen].astype(np.float64)
        mean[chosen] = subset.mean(axis=0)
        spread = subset.std(axis=0)
        std[chosen] = np.where(spread < MIN_STD, 1.0, spread)
        values[observed] = ((values[observed] - mean) / std).astype(np.float32)
    return mean.astype(np.float32), std.astype(np.float32)


def class_weights(targets: Targets, train: np.ndarray) -> list[float] | None:
    """Balanced class weights from the training split (classification only).

    ``w_k = n_train / (K_train * count_k)``, 0 for a class absent from train.
    """
    if targets.task != "classification":
        return None
    counts = np.bincount(targets.values[train], minlength=targets.num_outputs)
    present = counts > 0
    weights = np.zeros(targets.num_outputs, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


def assemble_bundle(
    *,
    name: str,
    targets: Targets,
    features: Mapping[str, np.ndarray],
    observed: np.ndarray,
    codes: np.ndarray,
    class_names: list[str] | None,
    sample_ids: np.ndarray | None,
    per_sample: Mapping[str, np.ndarray],
    meta: dict[str, Any],
) -> DataBundle:
    """Cut validated arrays into the three splits and wrap them as a DataBundle.

    Args:
        name: Dataset name.
        targets: Validated labels.
        features: Modality name -> array [N, ...] (float32), in modality order.
        observed: [N, M] bool.
        codes: Split codes [N].
        class_names: Optional class (or label) names.
        sample_ids: Optional ids [N]; defaults to the row number in the file.
        per_sample: Extra per-sample records, stored per split in ``meta[key][split]``.
        meta: Further metadata; ``rows`` (row numbers per split) is added.

    Returns:
        The bundle.
    """
    ids = np.arange(len(codes)) if sample_ids is None else np.asarray(sample_ids)
    splits: dict[str, ArrayDataset] = {}
    meta = dict(meta)
    meta["rows"] = {}
    for key in per_sample:
        meta[key] = {}
    for code, split in enumerate(SPLITS):
        rows = np.flatnonzero(codes == code)
        meta["rows"][split] = rows
        for key, record in per_sample.items():
            meta[key][split] = record[rows]
        splits[split] = ArrayDataset(
            {key: value[rows] for key, value in features.items()},
            targets.values[rows],
            targets.task,
            observed[rows],
            sample_ids=ids[rows].tolist(),
        )
    return DataBundle(
        name=name,
        task=targets.task,
        modalities=[
            ModalitySpec.from_shape(key, value.shape[1:]) for key, value in features.items()
        ],
        num_outputs=targets.num_outputs,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=class_names,
        class_weights=class_weights(targets, codes == 0),
        meta=meta,
    )


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected a .npz archive (numpy.savez)")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:  # any failure to parse means the file is not a usable archive
        raise DataError(
            f"{path}: cannot be read as a .npz archive ({type(error).__name__}); expected a file "
            "written by numpy.savez or numpy.savez_compressed"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path}: holds a single array, not a .npz archive; expected named arrays written by "
            "numpy.savez (one per modality plus 'y')"
        )
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except Exception as error:  # object arrays (pickles) and damaged members
                raise DataError(
                    f"{path}: array '{key}': cannot be read ({error}); expected a numeric "
                    "(or, for names and ids, text) array saved without pickling"
                ) from error
    return arrays


def _is_reserved(key: str) -> bool:
    return key in RESERVED_NAMES or key.startswith(OBSERVED_PREFIX)


def _modality_values(raw: np.ndarray, num_samples: int, *, source: str, key: str) -> np.ndarray:
    field = f"array '{key}'"
    forms = "[N, F] vectors, [N, L, F] sequences or [N, C, H, W] images of numbers"
    if raw.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: {field}: holds {_describe_dtype(raw.dtype)} values; expected {forms}"
        )
    if raw.ndim == 0 or raw.shape[0] != num_samples:
        count = raw.shape[0] if raw.ndim else "no"
        raise DataError(
            f"{source}: {field}: has {count} samples but 'y' has {num_samples}; expected "
            f"{forms} with one row per label"
        )
    values = raw.reshape(num_samples, 1) if raw.ndim == 1 else raw
    if values.ndim > 5:
        raise DataError(f"{source}: {field}: has shape {raw.shape}; expected {forms}")
    if 0 in values.shape[1:]:
        raise DataError(
            f"{source}: {field}: has zero features (shape {raw.shape}); expected {forms} "
            "with at least one value per sample"
        )
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported later
        return np.ascontiguousarray(values, dtype=np.float32)


def _mask_values(raw: np.ndarray, shape: tuple[int, ...], *, source: str, field: str) -> np.ndarray:
    expected = f"a bool (or 0/1) array of shape {shape}"
    raw = np.asarray(raw)
    if raw.ndim == 2 and len(shape) == 1 and raw.shape[1:] == (1,):
        raw = raw[:, 0]
    if raw.shape != shape:
        raise DataError(f"{source}: {field}: has shape {raw.shape}; expected {expected}")
    if raw.dtype.kind not in "biuf" or not np.isin(raw, (0, 1)).all():
        raise DataError(f"{source}: {field}: holds values other than 0/1; expected {expected}")
    return raw.astype(bool)


def _observed_from_file(
    arrays: Mapping[str, np.ndarray], names: list[str], num_samples: int, *, source: str
) -> np.ndarray:
    observed = np.ones((num_samples, len(names)), dtype=bool)
    if "observed" in arrays:
        observed &= _mask_values(
            arrays["observed"],
            (num_samples, len(names)),
            source=source,
            field=f"array 'observed' (columns: {', '.join(names)})",
        )
    for key in arrays:
        if not key.startswith(OBSERVED_PREFIX):
            continue
        modality = key[len(OBSERVED_PREFIX) :]
        if modality not in names:
            raise DataError(
                f"{source}: array '{key}': names no modality; expected observed_<name> for one "
                f"of the modalities {', '.join(names)}"
            )
        observed[:, names.index(modality)] &= _mask_values(
            arrays[key], (num_samples,), source=source, field=f"array '{key}'"
        )
    return observed


def mark_missing(
    values: np.ndarray,
    observed: np.ndarray,
    *,
    clean_nonfinite: bool,
    source: str,
    field: str,
) -> np.ndarray:
    """Treat all-NaN rows as missing, check the rest are finite, and zero unobserved rows.

    Args:
        values: Features [N, ...] (float32), changed in place.
        observed: [N] bool from the user's mask; rows that are entirely NaN become False.
        clean_nonfinite: Replace stray NaN/inf by 0 (logged) instead of raising.
        source: File name for error messages.
        field: The modality's array or columns.

    Returns:
        The updated observed mask [N].

    Raises:
        DataError: for NaN/inf values in observed rows that are not entirely NaN, unless
            ``clean_nonfinite``.
    """
    nonfinite = ~np.isfinite(values)
    per_row = nonfinite.reshape(len(values), -1)
    observed = observed & ~np.isnan(values).reshape(len(values), -1).all(axis=1)
    bad_rows = per_row.any(axis=1) & observed
    if bad_rows.any():
        count, first = int(per_row[bad_rows].sum()), int(np.argmax(bad_rows))
        if not clean_nonfinite:
            raise DataError(
                f"{source}: {field}: {count} NaN/inf values (or values too large for float32) in "
                f"{int(bad_rows.sum())} samples, first at row {first}; expected finite numbers, "
                "or an entire row of NaN to mark the modality missing for that sample (or "
                "clean_nonfinite=True to replace them with 0)"
            )
        logger.warning(
            "%s: %s: replaced %d NaN/inf values in %d samples with 0 (first at row %d)",
            source,
            field,
            count,
            int(bad_rows.sum()),
            first,
        )
    values[nonfinite] = 0.0
    values[~observed] = 0.0
    return observed


def _text_list(raw: np.ndarray, expected_length: int, *, source: str, field: str) -> list[str]:
    raw = np.asarray(raw)
    if raw.ndim != 1 or len(raw) != expected_length:
        raise DataError(
            f"{source}: {field}: has shape {raw.shape}; expected {expected_length} names, one per "
            "class (or label)"
        )
    return [str(item) for item in raw.tolist()]


def _per_sample_record(raw: np.ndarray, num_samples: int, *, source: str, key: str) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.ndim == 0 or raw.shape[0] != num_samples:
        raise DataError(
            f"{source}: array '{key}': has shape {raw.shape} but 'y' has {num_samples} samples; "
            "expected one entry per sample"
        )
    return raw


def read_npz(
    path: str | Path,
    *,
    task: str | None = None,
    seed: int = 0,
    clean_nonfinite: bool = False,
) -> DataBundle:
    """Read the user's ``.npz`` archive into a DataBundle.

    Modalities are all arrays whose names are not reserved, in sorted name order. Vector
    modalities ([N, F]) are standardised with training statistics; sequences and images are
    kept as they are. A sample whose modality row is entirely NaN has that modality missing
    (observed False, values 0).

    Args:
        path: The ``.npz`` file.
        task: Force ``classification``, ``multilabel`` or ``regression``; inferred from ``y``
            when None.
        seed: Seed of the generated split when the file has no ``split`` array.
        clean_nonfinite: Replace stray NaN/inf feature values by 0 (logged) instead of raising.

    Returns:
        The bundle; ``meta`` holds ``source``, ``rows`` (file rows per split),
        ``split_generated``, ``standardization`` (mean/std per vector modality), ``missing``
        (unobserved samples per modality) and, when present, ``interaction``,
        ``latent_bits`` (per split) and ``interaction_names``.

    Raises:
        DataError: for every problem with the file, naming file, array and expected form.
    """
    path = Path(path)
    source = str(path)
    check_task_name(task, source=source)
    arrays = _load_arrays(path)
    if "y" not in arrays:
        raise DataError(
            f"{source}: has no array 'y'; expected an array 'y' with the labels: {LABEL_FORMS}"
        )
    targets = prepare_targets(arrays["y"], task, source=source, field="array 'y'")
    num_samples = len(targets.values)
    names = sorted(key for key in arrays if not _is_reserved(key))
    if not names:
        raise DataError(
            f"{source}: has no modality arrays (only {', '.join(sorted(arrays))}); expected at "
            "least one array besides the reserved names y, split, observed, observed_<name>, "
            "ids, class_names, interaction, interaction_names, latent_bits"
        )
    features = {
        key: _modality_values(arrays[key], num_samples, source=source, key=key) for key in names
    }
    observed = _observed_from_file(arrays, names, num_samples, source=source)

    sample_ids = None
    if "ids" in arrays:
        sample_ids = _per_sample_record(arrays["ids"], num_samples, source=source, key="ids")
    per_sample = {
        key: _per_sample_record(arrays[key], num_samples, source=source, key=key)
        for key in PER_SAMPLE_RECORDS
        if key in arrays
    }
    class_names = None
    if "class_names" in arrays:
        if targets.task == "regression":
            logger.warning("%s: array 'class_names' is ignored for a regression task", source)
        else:
            class_names = _text_list(
                arrays["class_names"],
                targets.num_outputs,
                source=source,
                field="array 'class_names'",
            )

    codes, generated = resolve_split(
        arrays.get("split"),
        targets,
        seed=seed,
        source=source,
        field="array 'split'",
        class_names=class_names if targets.task == "classification" else None,
    )

    train = codes == 0
    standardization: dict[str, dict[str, np.ndarray]] = {}
    for column, key in enumerate(names):
        observed[:, column] = mark_missing(
            features[key],
            observed[:, column],
            clean_nonfinite=clean_nonfinite,
            source=source,
            field=f"array '{key}'",
        )
        if not (observed[:, column] & train).any():
            logger.warning("%s: modality '%s' is missing for every training sample", source, key)
        if features[key].ndim == 2:
            mean, std = standardize(features[key], observed[:, column], train)
            standardization[key] = {"mean": mean, "std": std}
    none_observed = int((~observed.any(axis=1)).sum())
    if none_observed:
        logger.warning("%s: %d samples have every modality missing", source, none_observed)

    meta: dict[str, Any] = {
        "source": source,
        "split_generated": generated,
        "standardization": standardization,
        "missing": {key: int((~observed[:, i]).sum()) for i, key in enumerate(names)},
    }
    if "interaction_names" in arrays:
        meta["interaction_names"] = [str(v) for v in np.ravel(arrays["interaction_names"])]
    return assemble_bundle(
        name=path.stem,
        targets=targets,
        features=features,
        observed=observed,
        codes=codes,
        class_names=class_names,
        sample_ids=sample_ids,
        per_sample=per_sample,
        meta=meta,
    )
