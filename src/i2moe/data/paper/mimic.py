"""MIMIC-IV one-year mortality in Flex-MoE's preprocessed layout.

Layout: ``lab_x.pt``, ``note_x.pt``, ``code_x.pt`` (``torch.save``d [N, F] tensors or arrays,
row i belonging to row i of ``labels.csv``), ``labels.csv`` (index ``subject_id``, column
``one_year_mortality``) and ``PTID_splits_mimic.json`` (``training`` / ``validation`` /
``testing`` lists of subject ids).
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from i2moe.data.base import ArrayDataset, DataBundle, DataError, ModalitySpec
from i2moe.data.paper.folder_checks import Problems, read_split_json, require_root

logger = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("lab", "note", "code")
LABELS_FILE = "labels.csv"
SPLITS_FILE = "PTID_splits_mimic.json"
ID_COLUMN, LABEL_COLUMN = "subject_id", "one_year_mortality"
# The positive class (death within a year) is rare; these are the authors' loss weights.
CLASS_WEIGHTS = [0.25, 0.75]
SPLIT_KEYS = {"training": "train", "validation": "val", "testing": "test"}


def read_mimic(root: str | Path, *, allow_unsafe_pickle: bool = False) -> DataBundle:
    """Read Flex-MoE's preprocessed MIMIC-IV (one-year mortality, binary).

    Feature files are loaded with ``torch.load(weights_only=True)``, which accepts tensors and
    plain numpy arrays. NaN features become 0.

    Args:
        root: the dataset folder.
        allow_unsafe_pickle: fall back to a full unpickling (``weights_only=False``) for
            feature files holding other Python objects. Only for files you trust: unpickling
            can run arbitrary code.

    Returns:
        A 2-class bundle with vector modalities ``lab``, ``note``, ``code`` and class weights
        [0.25, 0.75].

    Raises:
        DataError: a file, key or column is missing, or the shapes disagree.
    """
    root = require_root("MIMIC-IV", root)
    problems = Problems("MIMIC-IV", root)
    expected = {f"{m}_x.pt": "a torch.save'd [N, F] tensor or array" for m in MODALITIES}
    expected[LABELS_FILE] = f"a CSV with columns {ID_COLUMN}, {LABEL_COLUMN}"
    expected[SPLITS_FILE] = 'JSON {"training": [...], "validation": [...], "testing": [...]}'
    problems.require_files(expected)
    problems.raise_if_any()

    labels = _read_labels(problems)
    splits = read_split_json(problems, SPLITS_FILE)
    features: dict[str, np.ndarray] = {}
    for modality in MODALITIES:
        array = _load_matrix(root / f"{modality}_x.pt", allow_unsafe_pickle, problems)
        if array is not None:
            features[modality] = array
    if labels is not None:
        for modality, array in features.items():
            if len(array) != len(labels):
                problems.add(
                    f"{modality}_x.pt",
                    f"has {len(array)} rows but {LABELS_FILE} has {len(labels)}; expected one "
                    "row per subject, in the order of labels.csv",
                )
    problems.raise_if_any()
    assert labels is not None and splits is not None  # guaranteed by raise_if_any

    row_of = {subject: row for row, subject in enumerate(labels.index)}
    targets = labels.to_numpy()
    datasets: dict[str, ArrayDataset] = {}
    unknown: dict[str, int] = {}
    for key, split in SPLIT_KEYS.items():
        rows = [row_of[s] for s in splits[key] if s in row_of]
        unknown[split] = len(splits[key]) - len(rows)
        if not rows:
            raise DataError(
                f"{root / SPLITS_FILE}: no subject of '{key}' is in {LABELS_FILE}; expected "
                f"{ID_COLUMN} values of {LABELS_FILE}"
            )
        datasets[split] = ArrayDataset(
            {m: features[m][rows] for m in MODALITIES},
            targets[rows],
            "classification",
            sample_ids=[labels.index[r] for r in rows],
        )
    if any(unknown.values()):
        logger.warning("MIMIC-IV: split subjects missing from labels.csv (skipped): %s", unknown)
    return DataBundle(
        name="mimic",
        task="classification",
        modalities=[ModalitySpec(m, (features[m].shape[1],), "vector") for m in MODALITIES],
        num_outputs=2,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=["survived", "died_within_one_year"],
        class_weights=list(CLASS_WEIGHTS),
        meta={
            "source": str(root),
            "sizes": {s: len(d) for s, d in datasets.items()},
            "split_subjects_not_in_labels": unknown,
            "feature_cleaning": "NaN set to 0",
        },
    )


def _read_labels(problems: Problems) -> pd.Series | None:
    table = problems.read_csv(LABELS_FILE, (ID_COLUMN, LABEL_COLUMN), "(0 or 1)")
    if table is None:
        return None
    values = pd.to_numeric(table[LABEL_COLUMN], errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        shown = ", ".join(str(v) for v in table.loc[bad, LABEL_COLUMN].head(5))
        problems.add(
            LABELS_FILE,
            f"column {LABEL_COLUMN} has {int(bad.sum())} value(s) other than 0/1 ({shown}); "
            "expected 0 or 1",
        )
        return None
    ids = table[ID_COLUMN].astype(str)
    if ids.duplicated().any():
        problems.add(
            LABELS_FILE,
            f"column {ID_COLUMN} repeats {', '.join(ids[ids.duplicated()].head(5))}; "
            "expected one row per subject",
        )
        return None
    return pd.Series(values.astype(np.int64).to_numpy(), index=ids.to_list())


def _load_matrix(path: Path, allow_unsafe_pickle: bool, problems: Problems) -> np.ndarray | None:
    try:
        content = load_tensor_file(path, allow_unsafe_pickle=allow_unsafe_pickle)
    except DataError as error:
        problems.add(path.name, str(error))
        return None
    if isinstance(content, torch.Tensor):
        array = content.detach().cpu().to(torch.float32).numpy()
    else:
        try:
            array = np.asarray(content, dtype=np.float32)
        except (TypeError, ValueError):
            problems.add(path.name, f"holds a {type(content).__name__}; expected an [N, F] array")
            return None
    if array.ndim != 2:
        problems.add(path.name, f"has shape {tuple(array.shape)}; expected [N, F] (2 axes)")
        return None
    return np.nan_to_num(array, nan=0.0)


def load_tensor_file(path: Path, *, allow_unsafe_pickle: bool = False) -> Any:
    """Load a ``torch.save``d file safely: tensors and numpy arrays only, unless allowed.

    Raises:
        DataError: the file cannot be loaded (with a hint about ``allow_unsafe_pickle``).
    """
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError) as error:
        if not allow_unsafe_pickle:
            raise DataError(
                f"cannot be loaded as tensors/arrays only ({str(error).splitlines()[0]}); "
                "expected a torch.save'd [N, F] tensor or numpy array (pass "
                "allow_unsafe_pickle=True for a trusted file holding other objects)"
            ) from error
    except (OSError, EOFError) as error:
        raise DataError(f"cannot be read ({error}); expected a torch.save'd file") from error
    logger.warning("loading %s with full unpickling (allow_unsafe_pickle=True)", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # arbitrary pickles fail in arbitrary ways
        raise DataError(
            f"cannot be loaded ({type(error).__name__}: {error}); expected a torch.save'd file"
        ) from error


def _numpy_globals() -> list[Any]:
    """What unpickling a plain numpy array needs, under numpy 1.x and 2.x module names."""
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else None
    if reconstruct is None:  # numpy 1.x
        reconstruct = np.core.multiarray._reconstruct
    allowed: list[Any] = [
        np.ndarray,
        np.dtype,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in dir(dtypes):
            candidate = getattr(dtypes, name)
            if isinstance(candidate, type) and name.endswith("DType"):
                allowed.append(candidate)
    return allowed
