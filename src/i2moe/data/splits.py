"""Train/val/test splits: seeded splits stratified by class or by labels, and the checks on a
user's own split.

Split codes are integers: 0 train, 1 val, 2 test (the positions of ``base.SPLITS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from i2moe.data.base import SPLITS, DataError

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
# Accepted spellings of split names in a table's split column (lower-cased, stripped).
SPLIT_NAME_CODES: dict[str, int] = {
    "train": 0,
    "training": 0,
    "val": 1,
    "valid": 1,
    "validation": 1,
    "dev": 1,
    "test": 2,
    "testing": 2,
}


def _checked_fractions(fractions: Sequence[float]) -> np.ndarray:
    values = np.asarray(fractions, dtype=np.float64)
    if values.shape != (3,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"fractions must be three non-negative numbers; got {fractions!r}")
    if values.sum() <= 0:
        raise ValueError(f"fractions must not all be zero; got {fractions!r}")
    return values / values.sum()


def _split_totals(num_samples: int, fractions: np.ndarray) -> np.ndarray:
    """Samples per split by largest remainder, each wanted split non-empty when possible."""
    ideal = num_samples * fractions
    totals = np.floor(ideal).astype(np.int64)
    by_remainder = np.argsort(-(ideal - totals), kind="stable")
    totals[by_remainder[: num_samples - totals.sum()]] += 1
    wanted = np.flatnonzero(fractions > 0)
    if num_samples >= len(wanted):
        for k in wanted:
            if totals[k] == 0:
                totals[np.argmax(totals)] -= 1
                totals[k] += 1
    return totals


def stratified_split(
    labels: Sequence | np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> np.ndarray:
    """Assign each sample to train (0), val (1) or test (2), keeping class proportions.

    Each class is divided in proportion to ``fractions``; the split sizes match
    ``fractions * N`` as closely as whole numbers allow, every split with a positive fraction
    gets at least one sample when there are enough samples, and every class gets at least one
    training sample (a class with a single sample goes to train). The result depends only on
    the labels, the fractions and the seed.

    Args:
        labels: One label per sample (any values ``np.unique`` can sort). Pass identical
            labels (e.g. zeros) for an unstratified split.
        fractions: Relative sizes of train, val and test; normalised to sum to 1.
        seed: Seed of the random order within each class.

    Returns:
        An int8 array [N] of split codes.

    Raises:
        ValueError: if ``labels`` is not one-dimensional or ``fractions`` is malformed.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional; got shape {labels.shape}")
    shares = _checked_fractions(fractions)
    num_samples = len(labels)
    codes = np.zeros(num_samples, dtype=np.int8)
    if num_samples == 0:
        return codes
    rng = np.random.default_rng(seed)
    _, class_of = np.unique(labels, return_inverse=True)
    class_of = class_of.reshape(-1)
    counts = np.bincount(class_of)
    totals = _split_totals(num_samples, shares)

    ideal = counts[:, None] * shares[None, :]
    allocation = np.floor(ideal).astype(np.int64)
    if shares[0] > 0:
        # A class missing from train could never be learned, so train gets one of each first.
        allocation[:, 0] = np.maximum(allocation[:, 0], 1)
    # Jitter breaks ties between classes without favouring the first in sorted order.
    remainder = ideal - np.floor(ideal) + rng.random(ideal.shape) * 1e-9
    # Rounding down per class can still exceed a split's total when the totals were adjusted
    # to keep every split non-empty; give such samples back (but keep one train sample each).
    floor = np.zeros_like(allocation)
    if shares[0] > 0:
        floor[:, 0] = 1
    for split in range(3):
        while allocation[:, split].sum() > totals[split]:
            spare = allocation[:, split] - floor[:, split]
            if spare.max() <= 0:
                break
            allocation[int(np.argmax(spare)), split] -= 1
    leftover = counts - allocation.sum(axis=1)
    # Hand out the remaining samples one at a time to the split that is furthest below its
    # total, taking them from the class that deserves that split most.
    while leftover.sum() > 0:
        deficit = totals - allocation.sum(axis=0)
        split = int(np.argmax(np.where(shares > 0, deficit, np.iinfo(np.int64).min)))
        candidates = np.where(leftover > 0, remainder[:, split], -np.inf)
        chosen = int(np.argmax(candidates))
        allocation[chosen, split] += 1
        leftover[chosen] -= 1
        remainder[chosen, split] -= 1.0

    for cls in range(len(counts)):
        members = rng.permutation(np.flatnonzero(class_of == cls))
        train_end = allocation[cls, 0]
        val_end = train_end + allocation[cls, 1]
        codes[members[:train_end]] = 0
        codes[members[train_end:val_end]] = 1
        codes[members[val_end:]] = 2
    return codes


def random_split(
    num_samples: int, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> np.ndarray:
    """Unstratified split codes for ``num_samples`` samples (e.g. regression targets).

    Args:
        num_samples: Number of samples.
        fractions: Relative sizes of train, val and test.
        seed: Seed of the random order.

    Returns:
        An int8 array [N] of split codes.
    """
    return stratified_split(np.zeros(num_samples, dtype=np.int8), fractions, seed)


def class_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded class-stratified split: sorted row indices of train, validation and test
    (:func:`stratified_split` with these fractions)."""
    fractions = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    codes = stratified_split(labels, fractions, seed=seed)
    train, val, test = (np.flatnonzero(codes == code) for code in range(3))
    return train, val, test


def multilabel_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded multilabel-stratified holdout by iterative stratification (Sechidis et al. 2011).

    Rows are assigned label by label, rarest label first, each to the side (holdout or rest)
    that still lacks most of that label, so even rare labels keep about ``fraction`` of their
    positives in the holdout. Rows without any label fill the sides to their target sizes.

    Args:
        labels: [N, C] boolean multi-hot matrix.
        fraction: fraction of rows (and of every label's positives) to hold out.
        seed: seed for the visiting order and ties.

    Returns:
        [N] boolean mask, True for held-out rows.
    """
    labels = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    n = len(labels)
    side_fractions = np.array([fraction, 1.0 - fraction])
    wanted_rows = side_fractions * n
    wanted_labels = np.outer(side_fractions, labels.sum(axis=0))
    side = np.full(n, -1)
    order = rng.permutation(n)

    def choose(scores: np.ndarray) -> int:
        best = np.flatnonzero(np.isclose(scores, scores.max()))
        return int(best[0]) if len(best) == 1 else int(rng.choice(best))

    while True:
        remaining = side < 0
        counts = labels[remaining].sum(axis=0)
        if not counts.any():
            break
        present = np.flatnonzero(counts)
        label = present[np.argmin(counts[present])]
        for row in order[(remaining & labels[:, label])[order]]:
            candidates = wanted_labels[:, label]
            tied = np.isclose(candidates, candidates.max())
            chosen = choose(np.where(tied, wanted_rows, -np.inf))
            side[row] = chosen
            wanted_labels[chosen] -= labels[row]
            wanted_rows[chosen] -= 1
    for row in order[(side < 0)[order]]:
        chosen = choose(wanted_rows)
        side[row] = chosen
        wanted_rows[chosen] -= 1
    return side == 0


def split_codes_from_array(values: np.ndarray, *, source: str, field: str) -> np.ndarray:
    """Validate a user's split array of codes 0/1/2 (integers, or floats with whole values).

    Args:
        values: The split array as read from the file.
        source: File name for the error message.
        field: What holds the split, e.g. ``"array 'split'"`` or ``"column 'fold'"``.

    Returns:
        An int8 array [N] of split codes.

    Raises:
        DataError: when a value is not 0, 1 or 2.
    """
    expected = "one split code per sample: 0 (train), 1 (val) or 2 (test)"
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"{source}: {field}: has shape {values.shape}; expected {expected}")
    if values.dtype.kind not in "biuf":
        raise DataError(f"{source}: {field}: holds {values.dtype} values; expected {expected}")
    valid = np.isin(values, (0, 1, 2))
    if not valid.all():
        bad = np.unique(values[~valid])[:5]
        shown = ", ".join(str(v) for v in bad.tolist())
        raise DataError(f"{source}: {field}: holds the values {shown}; expected {expected}")
    return values.astype(np.int8)


def check_split_sizes(codes: np.ndarray, *, source: str, field: str) -> None:
    """Raise a DataError if train, val or test has no samples.

    Args:
        codes: Split codes [N].
        source: File name for the error message.
        field: What defines the split, e.g. ``"array 'split'"`` or ``"generated split"``.
    """
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=3)
    for code, name in enumerate(SPLITS):
        if counts[code] == 0:
            raise DataError(
                f"{source}: {field}: the {name} split is empty ({counts[0]} train, {counts[1]} "
                f"val, {counts[2]} test samples of {counts.sum()}); expected at least one sample "
                "in each of train, val and test"
            )
