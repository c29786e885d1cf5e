"""Cutting a reader's validated arrays into the three splits of a DataBundle, with balanced
class weights from the training split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from i2moe.data.base import SPLITS, ArrayDataset, DataBundle, ModalitySpec
from i2moe.data.validate import Targets


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
