"""CMU-MOSI from MultiBench's "affect" pickle (``mosi_data.pkl`` or ``mosi_raw.pkl``).

The pickle holds ``{"train" | "valid" | "test": {"vision": [N, L, Fv], "audio": [N, L, Fa],
"text": [N, L, Ft], "labels": [N, 1, 1], "id": [N, ...]}}`` with sentiment scores in [-3, 3].
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from i2moe.data.base import ArrayDataset, DataBundle, DataError, ModalitySpec
from i2moe.data.paper.folder_checks import Problems, check_choice, require_file, stringify_ids

logger = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("vision", "audio", "text")
PICKLE_SPLITS: dict[str, str] = {"train": "train", "valid": "val", "test": "test"}
BINARY_CONVENTIONS = {
    False: "authors: label <= 0 -> 0 (negative or neutral), label > 0 -> 1 (positive)",
    True: "MultiBench Acc-2: samples with label exactly 0 left out of every split; "
    "label < 0 -> 0 (negative), label > 0 -> 1 (positive)",
}


def read_mosi(
    root: str | Path,
    *,
    filename: str = "mosi_data.pkl",
    task: str = "binary",
    exclude_neutral: bool = False,
) -> DataBundle:
    """Read CMU-MOSI from MultiBench's affect pickle.

    Features are cleaned with NaN/inf -> 0, samples whose text sequence is all zero are dropped
    (as the authors do), and the pickle's own train/valid/test splits are kept.

    Args:
        root: folder holding the pickle, or the pickle file itself.
        filename: ``mosi_data.pkl`` (aligned, 20/5/300 features) or ``mosi_raw.pkl``
            (35/74/300); feature sizes are taken from the file, only ranks are checked.
        task: ``"binary"`` (positive vs the rest, see ``exclude_neutral``) or ``"regression"``
            (the raw score in [-3, 3]).
        exclude_neutral: binary only: leave out samples scored exactly 0 (MultiBench's Acc-2)
            instead of counting them as negative (the authors' convention).

    Returns:
        A bundle with sequence modalities ``vision``, ``audio``, ``text``.

    Raises:
        DataError: the file is missing or does not hold the expected splits, keys and shapes.
    """
    check_choice("task", task, ("binary", "regression"))
    path, problems = require_file(
        "CMU-MOSI", root, filename, "MultiBench's affect pickle (see docs)"
    )
    raw = _load_pickle(path)
    splits = _validate(raw, path, problems)

    bundle_splits: dict[str, ArrayDataset] = {}
    dropped_empty: dict[str, int] = {}
    dropped_neutral: dict[str, int] = {}
    for pickle_name, split in PICKLE_SPLITS.items():
        content = splits[pickle_name]
        features = {m: _clean(content[m]) for m in MODALITIES}
        scores = np.asarray(content["labels"], dtype=np.float64).reshape(-1)
        ids = _sample_ids(content.get("id"), len(scores), split)

        # The authors drop samples without any text (all-zero word vectors) before anything.
        keep = np.any(features["text"].reshape(len(scores), -1) != 0, axis=1)
        dropped_empty[split] = int((~keep).sum())
        if task == "binary" and exclude_neutral:
            neutral = keep & (scores == 0)
            dropped_neutral[split] = int(neutral.sum())
            keep &= ~neutral
        features = {m: v[keep] for m, v in features.items()}
        scores = scores[keep]
        ids = [i for i, k in zip(ids, keep, strict=True) if k]
        if task == "binary":
            targets: np.ndarray = (scores > 0).astype(np.int64)
            bundle_task = "classification"
        else:
            targets = scores.astype(np.float32)
            bundle_task = "regression"
        bundle_splits[split] = ArrayDataset(features, targets, bundle_task, sample_ids=ids)

    if any(dropped_empty.values()):
        logger.info("CMU-MOSI: dropped samples with all-zero text: %s", dropped_empty)
    train = bundle_splits["train"]
    specs = [ModalitySpec(m, tuple(train.arrays[m].shape[1:]), "sequence") for m in MODALITIES]
    meta: dict[str, Any] = {
        "source": str(path),
        "splits": "the pickle's own train / valid / test",
        "feature_cleaning": "NaN, +inf and -inf set to 0",
        "dropped_empty_text": dropped_empty,
        "sizes": {s: len(d) for s, d in bundle_splits.items()},
    }
    if task == "binary":
        meta["label_convention"] = BINARY_CONVENTIONS[exclude_neutral]
        meta["exclude_neutral"] = exclude_neutral
        if exclude_neutral:
            meta["dropped_neutral"] = dropped_neutral
    else:
        meta["label_convention"] = "regression on the raw sentiment score in [-3, 3]"
    return DataBundle(
        name="mosi",
        task="classification" if task == "binary" else "regression",
        modalities=specs,
        num_outputs=2 if task == "binary" else 1,
        train=bundle_splits["train"],
        val=bundle_splits["val"],
        test=bundle_splits["test"],
        class_names=["negative", "positive"] if task == "binary" else None,
        meta=meta,
    )


def _load_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            # MultiBench distributes this file as a pickle; the user chose to trust it by
            # downloading it (documented in docs/paper-datasets.md).
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
        raise DataError(
            f"{path}: cannot be unpickled ({type(error).__name__}: {error}); expected "
            "MultiBench's affect pickle {'train'|'valid'|'test': {'vision', 'audio', 'text', "
            "'labels', 'id'}}"
        ) from error


def _validate(raw: Any, path: Path, problems: Problems) -> dict[str, dict[str, Any]]:
    """Check splits, keys and ranks; record every problem and raise them together."""
    name = path.name
    form = "{'train'|'valid'|'test': {'vision': [N, L, F], 'audio': [N, L, F], " + (
        "'text': [N, L, F], 'labels': [N, 1, 1], 'id': [N, ...]}}"
    )
    if not isinstance(raw, dict):
        problems.add(name, f"holds a {type(raw).__name__}; expected a dict {form}")
        problems.raise_if_any()
    for split in PICKLE_SPLITS:
        content = raw.get(split)
        if not isinstance(content, dict):
            problems.add(name, f"split '{split}' is missing or not a dict; expected {form}")
            continue
        sizes: dict[str, int] = {}
        for modality in MODALITIES:
            if modality not in content:
                problems.add(name, f"['{split}']['{modality}'] is missing; expected [N, L, F]")
                continue
            shape = np.shape(content[modality])
            if len(shape) != 3:
                problems.add(
                    name,
                    f"['{split}']['{modality}'] has shape {shape}; expected [N, L, F] (3 axes)",
                )
                continue
            sizes[modality] = shape[0]
        if "labels" not in content:
            problems.add(name, f"['{split}']['labels'] is missing; expected [N, 1, 1] scores")
        else:
            shape = np.shape(content["labels"])
            if len(shape) == 0 or int(np.prod(shape[1:], dtype=np.int64)) != 1:
                problems.add(
                    name,
                    f"['{split}']['labels'] has shape {shape}; expected [N, 1, 1] (one score "
                    "per sample)",
                )
            else:
                sizes["labels"] = shape[0]
        if "id" in content and len(content["id"]) != sizes.get("labels", len(content["id"])):
            problems.add(
                name,
                f"['{split}']['id'] has {len(content['id'])} rows; expected one per sample",
            )
        if len(set(sizes.values())) > 1:
            detail = ", ".join(f"{k}: {v}" for k, v in sizes.items())
            problems.add(name, f"['{split}'] arrays disagree on N ({detail}); expected the same N")
    problems.raise_if_any()
    return raw


def _clean(values: Any) -> np.ndarray:
    # The published features contain NaN and +-inf. numpy's default maps inf to the dtype's
    # largest value (1e38 and more), which would swamp the features, so all three become 0.
    array = np.asarray(values, dtype=np.float32)
    return np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)


def _sample_ids(raw_ids: Any, n: int, split: str) -> list[str]:
    if raw_ids is None:
        return [f"{split}-{i}" for i in range(n)]
    return stringify_ids(list(raw_ids))
