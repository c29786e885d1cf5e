"""The user's own data as a NumPy ``.npz`` archive.

One array per modality (any name not reserved), a label array ``y``, and optional ``split``,
``observed`` / ``observed_<name>``, ``ids``, ``class_names`` and the generator's records
``interaction``, ``interaction_names`` and ``latent_bits``. Modalities are ordered by sorted
name. Read to be predicted (``for_prediction``), ``y`` and ``split`` are optional and every
row stays in file order in one split. See ``docs/data-format.md`` for the full format and
every error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from i2moe.data.assemble import assemble_bundle
from i2moe.data.base import DataBundle, DataError
from i2moe.data.scaling import Statistics, standardize_modalities
from i2moe.data.validate import (
    LABEL_FORMS,
    check_task_name,
    describe_dtype,
    mark_missing,
    prepare_targets,
    reading_split,
    unlabelled_targets,
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


def _modality_values(
    raw: np.ndarray, num_samples: int, *, source: str, key: str, counted_by: str = "y"
) -> np.ndarray:
    field = f"array '{key}'"
    forms = "[N, F] vectors, [N, L, F] sequences or [N, C, H, W] images of numbers"
    if raw.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: {field}: holds {describe_dtype(raw.dtype)} values; expected {forms}"
        )
    if raw.ndim == 0 or raw.shape[0] != num_samples:
        count = raw.shape[0] if raw.ndim else "no"
        raise DataError(
            f"{source}: {field}: has {count} samples but '{counted_by}' has {num_samples}; "
            f"expected {forms} with one row per {'label' if counted_by == 'y' else 'sample'}"
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


def mask_values(raw: np.ndarray, shape: tuple[int, ...], *, source: str, field: str) -> np.ndarray:
    """A missing-modality mask checked to be 0/1 of ``shape`` (shared with the folder reader)."""
    expected = f"a bool (or 0/1) array of shape {shape}"
    raw = np.asarray(raw)
    if raw.ndim == 2 and len(shape) == 1 and raw.shape[1:] == (1,):
        raw = raw[:, 0]
    if raw.shape != shape:
        raise DataError(f"{source}: {field}: has shape {raw.shape}; expected {expected}")
    if raw.dtype.kind not in "biuf" or not np.isin(raw, (0, 1)).all():
        raise DataError(f"{source}: {field}: holds values other than 0/1; expected {expected}")
    return raw.astype(bool)


def observed_from_arrays(
    arrays: Mapping[str, np.ndarray],
    names: list[str],
    num_samples: int,
    *,
    source_of: Callable[[str], str],
) -> np.ndarray:
    """The [N, M] observed mask from the ``observed`` and ``observed_<name>`` arrays among
    ``arrays`` (all True without them); ``source_of(key)`` names the file holding array ``key``
    in messages (the archive for ``.npz``, the array's own file in a folder)."""
    observed = np.ones((num_samples, len(names)), dtype=bool)
    if "observed" in arrays:
        observed &= mask_values(
            arrays["observed"],
            (num_samples, len(names)),
            source=source_of("observed"),
            field=f"array 'observed' (columns: {', '.join(names)})",
        )
    for key in arrays:
        if not key.startswith(OBSERVED_PREFIX):
            continue
        modality = key[len(OBSERVED_PREFIX) :]
        if modality not in names:
            raise DataError(
                f"{source_of(key)}: array '{key}': names no modality; expected observed_<name> "
                f"for one of the modalities {', '.join(names)}"
            )
        observed[:, names.index(modality)] &= mask_values(
            arrays[key], (num_samples,), source=source_of(key), field=f"array '{key}'"
        )
    return observed


def text_list(raw: np.ndarray, expected_length: int, *, source: str, field: str) -> list[str]:
    """A 1-D array of ``expected_length`` texts (class names), checked."""
    raw = np.asarray(raw)
    if raw.ndim != 1 or len(raw) != expected_length:
        raise DataError(
            f"{source}: {field}: has shape {raw.shape}; expected {expected_length} names, one per "
            "class (or label)"
        )
    return [str(item) for item in raw.tolist()]


def per_sample_record(
    raw: np.ndarray, num_samples: int, *, source: str, key: str, counted_by: str = "y"
) -> np.ndarray:
    """A generator record (one value per sample), checked against the sample count."""
    raw = np.asarray(raw)
    if raw.ndim == 0 or raw.shape[0] != num_samples:
        raise DataError(
            f"{source}: array '{key}': has shape {raw.shape} but '{counted_by}' has "
            f"{num_samples} samples; expected one entry per sample"
        )
    return raw


def read_npz(
    path: str | Path,
    *,
    task: str | None = None,
    seed: int = 0,
    clean_nonfinite: bool = False,
    statistics: Statistics | None = None,
    for_prediction: bool = False,
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
        statistics: A trained run's ``{modality: {"mean", "std"}}`` to scale the vector
            modalities with instead of this file's training statistics (see
            :func:`i2moe.data.scaling.standardize_modalities`).
        for_prediction: Read the file to be predicted: ``y`` is optional (without it
            ``task`` is required; ``meta["labelled"]`` says which), any classes may occur,
            ``split`` is optional and only recorded, every row goes in file order to
            ``bundle.test`` (train and val are empty), the statistics (when not given) come
            from every row, and ``class_names`` is not read (a run names its classes itself).

    Returns:
        The bundle; ``meta`` holds ``source``, ``rows`` (file rows per split),
        ``split_generated``, ``labelled``, ``standardization`` (mean/std per vector
        modality), ``missing`` (unobserved samples per modality), ``file_split`` (read for
        prediction: the file's split codes per row, or None) and, when present,
        ``interaction``, ``latent_bits`` (per split) and ``interaction_names``.

    Raises:
        DataError: for every problem with the file, naming file, array and expected form.
    """
    path = Path(path)
    source = str(path)
    check_task_name(task, source=source)
    arrays = _load_arrays(path)
    labelled = "y" in arrays
    if not labelled and not for_prediction:
        raise DataError(
            f"{source}: has no array 'y'; expected an array 'y' with the labels: {LABEL_FORMS}"
        )
    names = sorted(key for key in arrays if not _is_reserved(key))
    if not names:
        raise DataError(
            f"{source}: has no modality arrays (only {', '.join(sorted(arrays))}); expected at "
            "least one array besides the reserved names y, split, observed, observed_<name>, "
            "ids, class_names, interaction, interaction_names, latent_bits"
        )
    if labelled:
        targets = prepare_targets(
            arrays["y"], task, source=source, field="array 'y'", for_prediction=for_prediction
        )
        counted_by = "y"
    else:
        # No labels: the first modality with a sample axis counts the samples.
        counted_by = next((key for key in names if np.ndim(arrays[key])), names[0])
        num_rows = np.shape(arrays[counted_by])[0] if np.ndim(arrays[counted_by]) else 0
        if num_rows == 0:
            raise DataError(
                f"{source}: array '{counted_by}': has no samples; expected at least one row to "
                "predict"
            )
        targets = unlabelled_targets(num_rows, task, source=source, absent="has no array 'y'")
    num_samples = len(targets.values)
    features = {
        key: _modality_values(
            arrays[key], num_samples, source=source, key=key, counted_by=counted_by
        )
        for key in names
    }
    observed = observed_from_arrays(arrays, names, num_samples, source_of=lambda key: source)

    def record(key: str) -> np.ndarray:
        return per_sample_record(
            arrays[key], num_samples, source=source, key=key, counted_by=counted_by
        )

    sample_ids = record("ids") if "ids" in arrays else None
    per_sample = {key: record(key) for key in PER_SAMPLE_RECORDS if key in arrays}
    class_names = None
    if "class_names" in arrays and not for_prediction:
        if targets.task == "regression":
            logger.warning("%s: array 'class_names' is ignored for a regression task", source)
        else:
            class_names = text_list(
                arrays["class_names"],
                targets.num_outputs,
                source=source,
                field="array 'class_names'",
            )

    codes, generated, file_split, train = reading_split(
        arrays.get("split"),
        targets,
        num_samples,
        for_prediction=for_prediction,
        seed=seed,
        source=source,
        field="array 'split'",
        class_names=class_names,
    )
    for column, key in enumerate(names):
        observed[:, column] = mark_missing(
            features[key],
            observed[:, column],
            clean_nonfinite=clean_nonfinite,
            source=source,
            field=f"array '{key}'",
        )
        if not (observed[:, column] & train).any():
            which = "row" if for_prediction else "training sample"
            logger.warning("%s: modality '%s' is missing for every %s", source, key, which)
    vectors = {key: None for key in names if features[key].ndim == 2}
    standardization = standardize_modalities(features, observed, train, vectors, statistics)
    none_observed = int((~observed.any(axis=1)).sum())
    if none_observed:
        logger.warning("%s: %d samples have every modality missing", source, none_observed)

    meta: dict[str, Any] = {
        "source": source,
        "split_generated": generated,
        "labelled": labelled,
        "standardization": standardization,
        "missing": {key: int((~observed[:, i]).sum()) for i, key in enumerate(names)},
    }
    if for_prediction:
        meta["file_split"] = file_split
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
