"""Standardisation of vector features with training statistics, or with a trained run's.

A reader computes each vector modality's mean and standard deviation on the observed rows of
its training split and scales every split with them. Data read for a trained run is scaled
with the run's statistics instead (``statistics=``), so the model sees it in the units of its
own training data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

MIN_STD = 1e-8
# Modality name -> {"mean": [F], "std": [F]}, as in ``bundle.meta["standardization"]``.
Statistics = Mapping[str, Mapping[str, Any]]


def standardize(
    values: np.ndarray,
    observed: np.ndarray,
    train: np.ndarray,
    columns: np.ndarray | None = None,
    statistics: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise [N, F] features in place with the statistics of observed training rows.

    Args:
        values: Features [N, F] (float32), changed in place.
        observed: [N] bool, rows where the modality is present.
        train: [N] bool, rows of the training split.
        columns: Optional [F] bool, the columns to standardise (others are left as they are).
        statistics: Optional ``{"mean": [F], "std": [F]}`` to scale every column with instead,
            e.g. a trained run's. Where they are the training rows' own statistics rounded to
            float32, the unrounded ones are used, so a run's own data scales bit for bit as it
            did in training.

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
    if statistics is not None:
        given_mean = np.asarray(statistics["mean"], dtype=np.float32)
        given_std = np.asarray(statistics["std"], dtype=np.float32)
        if not (
            np.array_equal(given_mean, mean.astype(np.float32))
            and np.array_equal(given_std, std.astype(np.float32))
        ):
            mean, std = given_mean.astype(np.float64), given_std.astype(np.float64)
    if rows.any() or statistics is not None:
        values[observed] = ((values[observed] - mean) / std).astype(np.float32)
    return mean.astype(np.float32), std.astype(np.float32)


def standardize_modalities(
    features: Mapping[str, np.ndarray],
    observed: np.ndarray,
    train: np.ndarray,
    columns: Mapping[str, np.ndarray | None],
    statistics: Statistics | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Standardise the modalities named in ``columns`` in place (see :func:`standardize`).

    Args:
        features: Modality name -> values [N, F] (float32), in the order of ``observed``'s
            columns.
        observed: [N, M] bool.
        train: [N] bool, rows of the training split.
        columns: Modality name -> its columns to standardise ([F] bool, None for all), for
            the modalities to standardise.
        statistics: Optional statistics per modality to scale with instead of the training
            split's; a modality they do not name, or name with another number of features,
            keeps the training split's (the caller reports a modality of another width).

    Returns:
        Modality name -> ``{"mean": [F], "std": [F]}`` (float32), the statistics used.
    """
    used: dict[str, dict[str, np.ndarray]] = {}
    for index, (name, values) in enumerate(features.items()):
        if name not in columns:
            continue
        given = (statistics or {}).get(name)
        if given is not None and not (len(given["mean"]) == len(given["std"]) == values.shape[1]):
            given = None
        mean, std = standardize(values, observed[:, index], train, columns[name], given)
        used[name] = {"mean": mean, "std": std}
    return used


def training_standardised(
    values: np.ndarray, fit_rows: np.ndarray, observed: np.ndarray | None = None
) -> np.ndarray:
    """A float32 copy of [N, F] ``values``, standardised with the statistics of the ``fit_rows``
    that are ``observed`` (:func:`standardize`; unobserved rows stay as they are)."""
    scaled = np.array(values, dtype=np.float32)
    train = np.zeros(len(scaled), dtype=bool)
    train[fit_rows] = True
    standardize(scaled, np.ones(len(scaled), dtype=bool) if observed is None else observed, train)
    return scaled
