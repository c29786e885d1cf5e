"""The user's own data as a CSV or Parquet table, columns grouped into modalities by a mapping.

Every modality is a vector of its columns, in the order the mapping lists them (a glob entry
expands in the table's column order). Numeric columns are imputed (train median) and
standardised with training statistics; text columns are one-hot encoded with the categories
seen in train. A sample whose columns of a modality are all empty has that modality missing.
Read to be predicted (``for_prediction``), the target, split and id columns are optional and
every row stays in file order in one split. See ``docs/data-format.md``.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from i2moe.data.assemble import assemble_bundle
from i2moe.data.base import DataBundle, DataError
from i2moe.data.scaling import Statistics, standardize_modalities
from i2moe.data.splits import SPLIT_NAME_CODES
from i2moe.data.validate import (
    Targets,
    check_task_name,
    mark_missing,
    prepare_targets,
    reading_split,
    unlabelled_targets,
)

logger = logging.getLogger(__name__)

CONFIG_KEYS = ("target", "split", "modalities", "task", "id")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
MANY_CATEGORIES = 100
# A text column whose non-empty cells are numbers but for at most this share reads as a numeric
# column with malformed cells (an error, or missing values with malformed_as_missing).
MALFORMED_SHARE = 0.1


def read_table_config(yaml_path: str | Path) -> dict[str, Any]:
    """Read the column mapping of a table from a small YAML file.

    The file holds ``target`` (a column, or a list of 0/1 columns for multi-label),
    ``modalities`` (name -> list of columns or globs such as ``"audio-*"``) and optionally
    ``split`` (the split column), ``task`` and ``id`` (a sample-id column)::

        target: diagnosis
        split: fold
        modalities:
          clinical: [age, sex, "lab_*"]
          imaging: ["mri_*"]

    Args:
        yaml_path: The YAML file.

    Returns:
        Keyword arguments for :func:`read_table`: ``modalities``, ``target``,
        ``split_column`` and, when given, ``task`` and ``id_column``.

    Raises:
        DataError: when the file is missing, is not YAML, or does not have this form.
    """
    import yaml

    path = Path(yaml_path)
    form = (
        "a YAML mapping with 'target' (column), 'modalities' (name: [columns or globs]) and "
        "optionally 'split', 'task' and 'id'"
    )
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {form}")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: is not valid YAML ({error}); expected {form}") from error
    if not isinstance(config, dict):
        raise DataError(f"{path}: holds a {type(config).__name__}; expected {form}")
    unknown = sorted(str(key) for key in config if key not in CONFIG_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown key '{unknown[0]}'; expected {form}")
    for key in ("target", "modalities"):
        if key not in config:
            raise DataError(f"{path}: key '{key}' is missing; expected {form}")
    target = config["target"]
    if not (isinstance(target, str) or _is_text_list(target)):
        raise DataError(
            f"{path}: key 'target': {target!r}; expected a column name or a list of column names"
        )
    modalities = config["modalities"]
    if not isinstance(modalities, dict) or not modalities:
        raise DataError(f"{path}: key 'modalities': {modalities!r}; expected {form}")
    for name, columns in modalities.items():
        if isinstance(columns, str):
            columns = [columns]
        if isinstance(columns, list):
            # YAML reads a column named 2020 as a number; column names are text.
            columns = [
                str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item
                for item in columns
            ]
        if not _is_text_list(columns) or not columns:
            raise DataError(
                f"{path}: key 'modalities.{name}': {columns!r}; expected a list of column names "
                "or globs"
            )
        modalities[name] = columns
    for key in ("split", "task", "id"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise DataError(f"{path}: key '{key}': {config[key]!r}; expected a column name")
    kwargs: dict[str, Any] = {
        "modalities": {str(name): list(columns) for name, columns in modalities.items()},
        "target": target,
        "split_column": config.get("split"),
    }
    if config.get("task") is not None:
        kwargs["task"] = config["task"]
    if config.get("id") is not None:
        kwargs["id_column"] = config["id"]
    return kwargs


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _load_frame(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    form = "a CSV (.csv, .tsv) or Parquet (.parquet, .pq) table with a header row"
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {form}")
    try:
        if name.endswith(PARQUET_SUFFIXES):
            frame = pd.read_parquet(path)
        elif name.endswith(CSV_SUFFIXES):
            separator = "\t" if ".tsv" in name else ","
            frame = pd.read_csv(path, sep=separator)
        else:
            raise DataError(f"{path}: unknown file type '{path.suffix}'; expected {form}")
    except DataError:
        raise
    except Exception as error:  # any parser failure means the file is not a usable table
        raise DataError(
            f"{path}: cannot be read as a table ({type(error).__name__}: {error}); expected {form}"
        ) from error
    if len(frame) == 0:
        raise DataError(f"{path}: has no data rows; expected {form}")
    frame.columns = [str(column) for column in frame.columns]
    if frame.columns.duplicated().any():
        duplicate = frame.columns[frame.columns.duplicated()][0]
        raise DataError(f"{path}: column '{duplicate}' occurs twice; expected unique column names")
    return frame


def _resolve_columns(
    entries: Sequence[str], columns: list[str], *, source: str, modality: str
) -> list[str]:
    """Expand a modality's entries (exact names first, then globs) in table column order."""
    resolved: list[str] = []
    for entry in entries:
        if entry in columns:
            matches = [entry]
        else:
            matches = [column for column in columns if fnmatch.fnmatchcase(column, entry)]
        if not matches:
            shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            raise DataError(
                f"{source}: modality '{modality}': column '{entry}' matches no column; expected "
                f"a column name or glob among: {shown}"
            )
        resolved.extend(match for match in matches if match not in resolved)
    return resolved


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _numeric_values(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_extension_array_dtype(series):
        return series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=np.float64)


def _check_complete(series: pd.Series, *, source: str, field: str, expected: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"{source}: {field}: empty for {int(missing.sum())} rows (first at row "
            f"{int(np.argmax(missing))}); expected {expected} in every row"
        )


def _has_labels(frame: pd.DataFrame, target: str | Sequence[str]) -> bool:
    """Whether a target column exists with at least one value (data to predict may have none)."""
    columns = [target] if isinstance(target, str) else list(target)
    return any(column in frame.columns and frame[column].notna().any() for column in columns)


def _targets_from_frame(
    frame: pd.DataFrame,
    target: str | Sequence[str],
    task: str | None,
    *,
    source: str,
    for_prediction: bool = False,
) -> tuple[Targets, list[str] | None]:
    """Labels from one column (class ids, class names or numbers) or several 0/1 columns."""
    columns = [target] if isinstance(target, str) else list(target)
    if not columns:
        raise DataError(f"{source}: option 'target' is empty; expected a column name")
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                f"{source}: target column '{column}' does not exist; expected one of the "
                f"columns {', '.join(list(frame.columns)[:12])}"
            )
        _check_complete(
            frame[column], source=source, field=f"column '{column}'", expected="a label"
        )
    if len(columns) > 1:
        if task not in (None, "multilabel"):
            raise DataError(
                f"{source}: option 'target': {len(columns)} columns but task '{task}'; expected "
                "one column, or task 'multilabel' for several 0/1 columns"
            )
        for column in columns:
            if not _is_numeric(frame[column]):
                raise DataError(
                    f"{source}: column '{column}': holds text; expected 0/1 values of a "
                    "multi-label target"
                )
        raw = np.stack([_numeric_values(frame[column]) for column in columns], axis=1)
        field = "columns " + ", ".join(f"'{column}'" for column in columns)
        targets = prepare_targets(
            raw, "multilabel", source=source, field=field, for_prediction=for_prediction
        )
        return targets, columns

    column = columns[0]
    series = frame[column]
    field = f"column '{column}'"
    if _is_numeric(series):
        raw = _numeric_values(series)
        if pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
            raw = raw.astype(np.int64)
        targets = prepare_targets(
            raw, task, source=source, field=field, for_prediction=for_prediction
        )
        return targets, None
    if task not in (None, "classification"):
        raise DataError(
            f"{source}: {field}: holds text but the task is '{task}'; expected numbers "
            f"for task '{task}' (text labels are class names for classification)"
        )
    text = series.astype(str).to_numpy()
    names, class_ids = np.unique(text, return_inverse=True)
    targets = prepare_targets(
        class_ids.astype(np.int64),
        "classification",
        source=source,
        field=field,
        for_prediction=for_prediction,
    )
    return targets, [str(name) for name in names]


def _split_from_frame(frame: pd.DataFrame, column: str, *, source: str) -> np.ndarray:
    field = f"column '{column}'"
    if column not in frame.columns:
        raise DataError(f"{source}: split column '{column}' does not exist; expected a column name")
    series = frame[column]
    expected = "0/1/2 or train/val/test"
    _check_complete(series, source=source, field=field, expected=expected)
    if _is_numeric(series):
        return _numeric_values(series)
    names = series.astype(str).str.strip().str.lower()
    unknown = sorted(set(names) - set(SPLIT_NAME_CODES))
    if unknown:
        raise DataError(f"{source}: {field}: holds the value '{unknown[0]}'; expected {expected}")
    return names.map(SPLIT_NAME_CODES).to_numpy(dtype=np.float64)


def _numbers_with_malformed_cells(
    series: pd.Series, *, source: str, column: str, as_missing: bool
) -> pd.Series | None:
    """A text column that holds numbers but for a few cells: refused naming those cells, or
    (``as_missing``) those cells as missing numbers. None for a column of text."""
    filled = series.notna()
    numbers = pd.to_numeric(series.where(filled), errors="coerce")
    malformed = filled & numbers.isna()
    count, total = int(malformed.sum()), int(filled.sum())
    if count == 0 or total == 0 or count > MALFORMED_SHARE * total:
        return None
    if not as_missing:
        rows = np.flatnonzero(malformed.to_numpy())
        values = ", ".join(repr(v) for v in series[malformed].unique()[:5])
        shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if count > 5 else "")
        raise DataError(
            f"{source}: column '{column}': {total - count} numbers but {count} cells that are "
            f"not (rows {shown}: {values}); expected numbers throughout (empty for missing), "
            "or malformed_as_missing: true (--malformed-as-missing) to read those cells as "
            "missing values"
        )
    logger.warning(
        "%s: column '%s': %d cells that are not numbers are read as missing values",
        source,
        column,
        count,
    )
    return numbers


def _encode_modality(
    frame: pd.DataFrame,
    columns: list[str],
    train: np.ndarray,
    *,
    clean_nonfinite: bool,
    source: str,
    modality: str,
    known_categories: Mapping[str, Sequence[str]] | None = None,
    malformed_as_missing: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict[str, list[str]]]:
    """Encode a modality's columns: numbers as they are (NaN where empty), text one-hot.

    A column named in ``known_categories`` is one-hot encoded with those categories (a trained
    run's), whatever the rows hold.

    Returns:
        Values [N, F] with NaN where a number is empty, an [N] mask of rows where every source
        column is empty, an [F] mask of numeric columns, the feature names, and the categories
        of each text column.
    """
    blocks: list[np.ndarray] = []
    numeric_flags: list[np.ndarray] = []
    feature_names: list[str] = []
    used_categories: dict[str, list[str]] = {}
    known_categories = known_categories or {}
    all_empty = np.ones(len(frame), dtype=bool)
    for column in columns:
        series = frame[column]
        if column not in known_categories and not _is_numeric(series):
            repaired = _numbers_with_malformed_cells(
                series, source=source, column=column, as_missing=malformed_as_missing
            )
            series = series if repaired is None else repaired
        empty = series.isna().to_numpy()
        all_empty &= empty
        if column not in known_categories and _is_numeric(series):
            numbers = _numeric_values(series)
            infinite = np.isinf(numbers)
            if infinite.any():
                if not clean_nonfinite:
                    raise DataError(
                        f"{source}: column '{column}': infinite for {int(infinite.sum())} rows "
                        f"(first at row {int(np.argmax(infinite))}); expected finite numbers, or "
                        "empty cells for missing values (or clean_nonfinite=True to replace "
                        "them with 0)"
                    )
                logger.warning(
                    "%s: column '%s': replaced %d infinite values with 0",
                    source,
                    column,
                    int(infinite.sum()),
                )
                numbers[infinite] = 0.0
            blocks.append(numbers[:, None])
            numeric_flags.append(np.ones(1, dtype=bool))
            feature_names.append(column)
            continue
        text = series.astype(str).to_numpy()
        if column in known_categories:
            categories = [str(category) for category in known_categories[column]]
        else:
            categories = sorted(set(text[train & ~empty].tolist()))
            if len(categories) > MANY_CATEGORIES:
                logger.warning(
                    "%s: column '%s' of modality '%s' has %d categories in train; it becomes "
                    "as many one-hot features",
                    source,
                    column,
                    modality,
                    len(categories),
                )
            if not categories:
                logger.warning(
                    "%s: column '%s' of modality '%s' is empty in train and is dropped",
                    source,
                    column,
                    modality,
                )
        used_categories[column] = categories
        # Empty cells and categories unseen in train become all-zero one-hot rows.
        one_hot = np.zeros((len(text), len(categories)), dtype=np.float64)
        for position, category in enumerate(categories):
            one_hot[:, position] = (text == category) & ~empty
        blocks.append(one_hot)
        numeric_flags.append(np.zeros(len(categories), dtype=bool))
        feature_names.extend(f"{column}={category}" for category in categories)
    values = np.concatenate(blocks, axis=1)
    if values.shape[1] == 0:
        raise DataError(
            f"{source}: modality '{modality}': has zero features (its text columns "
            f"{', '.join(columns)} are empty in train); expected at least one usable column"
        )
    return values, all_empty, np.concatenate(numeric_flags), feature_names, used_categories


def _train_medians(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median of the non-empty training values; 0 (and flagged) where none."""
    medians = np.zeros(values.shape[1], dtype=np.float64)
    unusable = np.zeros(values.shape[1], dtype=bool)
    for column in range(values.shape[1]):
        present = values[rows, column]
        present = present[~np.isnan(present)]
        if present.size:
            medians[column] = np.median(present)
        else:
            unusable[column] = True
    return medians, unusable


def read_table(
    path: str | Path,
    *,
    modalities: Mapping[str, Sequence[str]],
    target: str | Sequence[str],
    split_column: str | None = None,
    task: str | None = None,
    seed: int = 0,
    clean_nonfinite: bool = False,
    malformed_as_missing: bool = False,
    id_column: str | None = None,
    statistics: Statistics | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
    medians: Mapping[str, Sequence[float]] | None = None,
    for_prediction: bool = False,
) -> DataBundle:
    """Read a CSV or Parquet table into a DataBundle, columns grouped into vector modalities.

    Args:
        path: The table (``.csv``, ``.tsv``, optionally ``.gz``; ``.parquet`` or ``.pq``).
        modalities: Modality name -> its columns; an entry that is not a column name is a
            glob (``"audio-*"``). Modalities are ordered by sorted name, like the npz reader.
        target: The label column (class ids, class names as text, or numbers), or a list of
            0/1 columns for a multi-label target.
        split_column: Optional column with 0/1/2 or train/val/test; otherwise a seeded
            stratified 70/15/15 split.
        task: Force ``classification``, ``multilabel`` or ``regression``; inferred otherwise.
        seed: Seed of the generated split.
        clean_nonfinite: Replace infinite numbers by 0 (logged) instead of raising.
        malformed_as_missing: Read the few cells of a numeric column that are not numbers as
            missing values (logged with the count) instead of raising.
        id_column: Optional column of sample ids (kept in the datasets' ``sample_ids``).
        statistics: A trained run's ``{modality: {"mean", "std"}}`` to scale the modalities
            with instead of this table's training statistics (see
            :func:`i2moe.data.scaling.standardize_modalities`).
        categories: A trained run's ``{column: [category, ...]}`` (``meta["categories"]``):
            the named text columns are one-hot encoded with them instead of with the
            categories of this table's training split.
        medians: A trained run's ``{modality: [median per feature]}`` (``meta["medians"]``)
            to fill partly empty rows with instead of this table's training medians; a
            modality of another width keeps its own.
        for_prediction: Read the table to be predicted: the target column is optional (absent
            or wholly empty: no labels, ``task`` required; ``meta["labelled"]`` says which),
            any classes may occur, the split column is optional and only recorded, the id
            column is optional (absent: row positions), every row goes in table order to
            ``bundle.test`` (train and val are empty), and categories, medians and statistics
            that are not given come from every row.

    Returns:
        The bundle; ``meta`` holds ``source``, ``rows``, ``split_generated``, ``labelled``,
        ``columns`` (source columns per modality), ``feature_names`` (per modality, one-hot
        features as ``column=category``), ``categories`` (per text column), ``medians``,
        ``standardization`` and, read for prediction, ``file_split`` (the table's split codes
        per row, or None).

    Raises:
        DataError: for every problem with the table or the mapping, naming file and column.
    """
    path = Path(path)
    source = str(path)
    check_task_name(task, source=source)
    if not isinstance(modalities, Mapping) or not modalities:
        raise DataError(
            f"{source}: option 'modalities' is empty; expected a mapping of modality name to "
            "its columns"
        )
    frame = _load_frame(path)
    columns = list(frame.columns)
    labelled = not for_prediction or _has_labels(frame, target)
    if labelled:
        targets, class_names = _targets_from_frame(
            frame, target, task, source=source, for_prediction=for_prediction
        )
    else:
        shown = target if isinstance(target, str) else ", ".join(target)
        targets, class_names = (
            unlabelled_targets(
                len(frame),
                task,
                source=source,
                absent=f"has no labels (target column {shown} absent or empty)",
            ),
            None,
        )

    reserved = {target} if isinstance(target, str) else set(target)
    reserved |= {column for column in (split_column, id_column) if column is not None}
    names = sorted(str(name) for name in modalities)
    groups: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name in names:
        entries = modalities[name]
        entries = [entries] if isinstance(entries, str) else list(entries)
        if not entries:
            raise DataError(
                f"{source}: modality '{name}': lists no columns; expected at least one column"
            )
        group = _resolve_columns(entries, columns, source=source, modality=name)
        for column in group:
            if column in reserved:
                raise DataError(
                    f"{source}: modality '{name}': column '{column}' is the target, split or id "
                    "column; expected feature columns only"
                )
            if column in owner:
                raise DataError(
                    f"{source}: column '{column}' belongs to both modality '{owner[column]}' and "
                    f"'{name}'; expected each column in one modality"
                )
            owner[column] = name
        groups[name] = group

    raw_split = None
    if split_column is not None and not (for_prediction and split_column not in frame.columns):
        raw_split = _split_from_frame(frame, split_column, source=source)
    codes, generated, file_split, train = reading_split(
        raw_split,
        targets,
        len(frame),
        for_prediction=for_prediction,
        seed=seed,
        source=source,
        field=f"column '{split_column}'",
        class_names=class_names,
    )

    sample_ids = None
    if id_column is not None and for_prediction and id_column not in frame.columns:
        logger.warning(
            "%s: id column '%s' does not exist; the sample ids are the row positions",
            source,
            id_column,
        )
    elif id_column is not None:
        if id_column not in frame.columns:
            raise DataError(f"{source}: id column '{id_column}' does not exist; expected a column")
        sample_ids = frame[id_column].to_numpy()

    features: dict[str, np.ndarray] = {}
    observed = np.ones((len(frame), len(names)), dtype=bool)
    feature_names: dict[str, list[str]] = {}
    used_medians: dict[str, np.ndarray] = {}
    used_categories: dict[str, list[str]] = {}
    numeric_columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(names):
        values, all_empty, numeric_columns[name], feature_names[name], column_categories = (
            _encode_modality(
                frame,
                groups[name],
                train,
                clean_nonfinite=clean_nonfinite,
                source=source,
                modality=name,
                known_categories=categories,
                malformed_as_missing=malformed_as_missing,
            )
        )
        used_categories.update(column_categories)
        present = ~all_empty
        rows = train & present
        empty_cells = np.isnan(values) & present[:, None]
        given = (medians or {}).get(name)
        if given is not None and len(given) == values.shape[1]:
            median = np.asarray(given, dtype=np.float64)
            unusable = np.zeros(values.shape[1], dtype=bool)
        else:
            median, unusable = _train_medians(values, rows)
        if (unusable & empty_cells.any(axis=0)).any():
            logger.warning(
                "%s: modality '%s': some columns have no training value; their empty cells "
                "become 0",
                source,
                name,
            )
        # Partially empty rows get the training median; wholly empty rows stay NaN so that
        # mark_missing sees the modality as missing for them.
        values = np.where(empty_cells, median[None, :], values).astype(np.float32)
        field = "columns " + ", ".join(f"'{column}'" for column in groups[name][:5])
        observed[:, index] = mark_missing(
            values, present, clean_nonfinite=clean_nonfinite, source=source, field=field
        )
        features[name] = values
        used_medians[name] = median.astype(np.float32)
    standardization = standardize_modalities(features, observed, train, numeric_columns, statistics)

    meta: dict[str, Any] = {
        "source": source,
        "split_generated": generated,
        "labelled": labelled,
        "columns": groups,
        "feature_names": feature_names,
        "categories": used_categories,
        "medians": used_medians,
        "standardization": standardization,
        "missing": {name: int((~observed[:, i]).sum()) for i, name in enumerate(names)},
    }
    if for_prediction:
        meta["file_split"] = file_split
    return assemble_bundle(
        name=path.stem.removesuffix(".csv").removesuffix(".tsv"),
        targets=targets,
        features=features,
        observed=observed,
        codes=codes,
        class_names=class_names,
        sample_ids=sample_ids,
        per_sample={},
        meta=meta,
    )
