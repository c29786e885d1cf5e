"""UCI Multiple Features: 2,000 handwritten digits described by six feature views."""

from __future__ import annotations

import numpy as np

from i2moe.data.base import DataBundle
from i2moe.data.bundled.shipped import check_fractions, check_seed, open_data, rows_bundle
from i2moe.data.registry import register_dataset
from i2moe.data.scaling import training_standardised
from i2moe.data.splits import class_split

MFEAT_VIEWS: tuple[tuple[str, int], ...] = (
    ("fou", 76),
    ("fac", 216),
    ("kar", 64),
    ("pix", 240),
    ("zer", 47),
    ("mor", 6),
)
MFEAT_CITATION = (
    "M. van Breukelen, R. P. W. Duin, D. M. J. Tax and J. E. den Hartog. Handwritten digit "
    "recognition by combined classifiers. Kybernetika 34(4):381-386, 1998. Data: R. Duin, "
    "Multiple Features, UCI Machine Learning Repository, https://doi.org/10.24432/C5HC70"
)


@register_dataset(
    "mfeat",
    description="UCI Multiple Features: handwritten digits 0-9 in six feature views (default)",
    citation=MFEAT_CITATION,
    licence="CC BY 4.0",
    task="classification",
    num_samples=2000,
    modalities=tuple(f"{name} ({dim},)" for name, dim in MFEAT_VIEWS),
)
def load_mfeat(
    seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> DataBundle:
    """UCI Multiple Features: 2,000 handwritten digits (200 per class) described by six views.

    Views, in the UCI order: Fourier coefficients ``fou`` (76), profile correlations ``fac``
    (216), Karhunen-Loeve coefficients ``kar`` (64), pixel averages ``pix`` (240), Zernike
    moments ``zer`` (47) and morphological features ``mor`` (6). There is no official split:
    the split is stratified by class and seeded. Each view is standardised with the training
    split's mean and standard deviation.

    Args:
        seed: seed of the split.
        val_fraction: fraction of every class put in the validation split.
        test_fraction: fraction of every class put in the test split.

    Returns:
        A 10-class classification bundle with six vector modalities.
    """
    check_seed("mfeat", seed)
    check_fractions("mfeat", val_fraction, test_fraction)
    with open_data("mfeat.npz") as handle, np.load(handle) as archive:
        views = {name: archive[name].astype(np.float64) for name, _ in MFEAT_VIEWS}
        labels = archive["labels"].astype(np.int64)
    splits = class_split(labels, val_fraction, test_fraction, seed)
    scaled = {name: training_standardised(values, splits[0]) for name, values in views.items()}
    return rows_bundle(
        "mfeat",
        scaled,
        labels,
        splits,
        class_names=[str(digit) for digit in range(10)],
        description="UCI Multiple Features (handwritten digits), six views",
        meta={
            "source": "https://archive.ics.uci.edu/dataset/72/multiple+features",
            "split": "stratified by class, seeded; no official split exists",
            "preprocessing": "each view standardised with training-split mean and std",
            "seed": seed,
        },
    )
