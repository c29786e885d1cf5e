"""Checks shared by the readers of a user's own file (``.npz`` archives and tables).

Labels are validated against the task, the split is taken from the file or generated, and
feature rows that are entirely NaN mark a modality missing. Data read to be predicted
(``for_prediction``) may lack labels, keeps every row in one split and needs no class in
particular. Every problem raises a
:class:`~i2moe.data.base.DataError` naming the file, the field and the expected form (see
``docs/data-format.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from i2moe.data.base import SPLITS, TASKS, DataError, Task, infer_task
from i2moe.data.splits import (
    check_split_sizes,
    random_split,
    split_codes_from_array,
    stratified_split,
)

logger = logging.getLogger(__name__)

LABEL_FORMS = "integer class ids [N], an [N, C] 0/1 multi-hot array, or floats [N] for regression"
# Data read to be predicted keeps every row, in file order, in this split.
PREDICTION_SPLIT = "test"


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


def describe_dtype(dtype: np.dtype) -> str:
    """How a dtype reads in an error message (text and object arrays named as such)."""
    if dtype.kind in "USO":
        return f"text or object ({dtype})"
    return str(dtype)


def check_task_name(task: str | None, *, source: str) -> None:
    """Raise a DataError unless ``task`` is None or a known task name."""
    if task is not None and task not in TASKS:
        raise DataError(
            f"{source}: option 'task': '{task}' is unknown; expected one of {', '.join(TASKS)}"
        )


def prepare_targets(
    raw: Any, task: str | None, *, source: str, field: str, for_prediction: bool = False
) -> Targets:
    """Validate labels against the (given or inferred) task.

    Args:
        raw: The label array as read, [N] or [N, C].
        task: A forced task, or None to infer it (``base.infer_task``).
        source: File name for error messages.
        field: Where the labels come from, e.g. ``"array 'y'"`` or ``"column 'label'"``.
        for_prediction: Labels carried along with data to predict: any subset of the classes
            is fine (one class, unused ids), only the form is checked.

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
        raise fail(f"holds {describe_dtype(raw.dtype)} values")
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
        num_outputs = int(labels.max()) + 1
        if for_prediction:
            return Targets(labels, "classification", num_outputs)
        if len(classes) < 2:
            raise fail(
                f"holds a single class ({int(classes[0])})",
                "at least 2 different classes for classification",
            )
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


def unlabelled_targets(num_samples: int, task: str | None, *, source: str, absent: str) -> Targets:
    """Stand-in labels for data read to be predicted that has none.

    Class ids are -1, other tasks' values NaN ([N] for every task), and ``num_outputs`` is 0:
    the file does not tell it.

    Args:
        num_samples: N.
        task: The task, which the labels cannot tell here.
        source: File name for error messages.
        absent: What is missing, e.g. ``"has no array 'y'"``.

    Raises:
        DataError: when no task is given, or an unknown one.
    """
    check_task_name(task, source=source)
    if task is None:
        raise DataError(
            f"{source}: {absent} and option 'task' is not set; expected labels, or the task "
            f"({', '.join(TASKS)}) to read data without labels"
        )
    if task == "classification":
        return Targets(np.full(num_samples, -1, dtype=np.int64), "classification", 0)
    return Targets(np.full(num_samples, np.nan, dtype=np.float32), task, 0)  # type: ignore[arg-type]


def _split_codes(
    raw_split: np.ndarray, num_samples: int, *, source: str, field: str, counted: str
) -> np.ndarray:
    raw_split = np.asarray(raw_split)
    if raw_split.shape[:1] != (num_samples,):
        raise DataError(
            f"{source}: {field}: has {raw_split.shape[0] if raw_split.ndim else 0} entries "
            f"but there are {num_samples} {counted}; expected one split code per sample"
        )
    return split_codes_from_array(raw_split, source=source, field=field)


def prediction_split(
    raw_split: np.ndarray | None, num_samples: int, *, source: str, field: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Split codes for data read to be predicted: every row in :data:`PREDICTION_SPLIT`.

    Args:
        raw_split: The file's own split codes, or None.
        num_samples: N.
        source: File name for error messages.
        field: Where the file's split comes from, e.g. ``"array 'split'"``.

    Returns:
        Split codes [N], and the file's own codes [N] (validated values; no split needs
        samples) or None, for the record.

    Raises:
        DataError: for a file's split of the wrong length or with values other than 0/1/2.
    """
    file_codes = None
    if raw_split is not None:
        file_codes = _split_codes(
            raw_split, num_samples, source=source, field=field, counted="rows"
        )
    return np.full(num_samples, SPLITS.index(PREDICTION_SPLIT), dtype=np.int8), file_codes


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
        codes = _split_codes(raw_split, num_samples, source=source, field=field, counted="labels")
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


def reading_split(
    raw_split: np.ndarray | None,
    targets: Targets,
    num_samples: int,
    *,
    for_prediction: bool,
    seed: int,
    source: str,
    field: str,
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, bool, np.ndarray | None, np.ndarray]:
    """The split a reader uses: for prediction every row (:func:`prediction_split`), else the
    user's split or a generated one (:func:`resolve_split`).

    Returns:
        Split codes [N]; whether they were generated; the file's own codes when read for
        prediction (else None); and the [N] bool rows that statistics, categories and medians
        come from (the training split, or every row to be predicted).
    """
    if for_prediction:
        codes, file_split = prediction_split(raw_split, num_samples, source=source, field=field)
        return codes, False, file_split, np.ones(num_samples, dtype=bool)
    codes, generated = resolve_split(
        raw_split,
        targets,
        seed=seed,
        source=source,
        field=field,
        class_names=class_names if targets.task == "classification" else None,
    )
    return codes, generated, None, codes == 0
