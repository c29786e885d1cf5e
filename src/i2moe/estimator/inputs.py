"""``X`` as modality arrays: a dict of arrays, a DataFrame or a 2-D array with a column mapping,
with missing modalities and the values that cannot be right refused by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from i2moe.spec import DataError, ModalitySpec


class ModalityRows:
    """``X`` as modality arrays in the fitted order, with the observed mask [N, M]."""

    def __init__(self, arrays: dict[str, np.ndarray], observed: np.ndarray) -> None:
        self.arrays = arrays
        self.observed = observed

    def __len__(self) -> int:
        return len(self.observed)


def column_groups(X: Any, modalities: Any) -> dict[str, list[Any]]:
    """The modality -> columns mapping for a table or 2-D array ``X``."""
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else list(range(X.shape[1]))
    if isinstance(modalities, int) and not isinstance(modalities, bool):
        if modalities < 1 or modalities > len(columns):
            raise DataError(
                f"X has n_features={len(columns)}: modalities={modalities} contiguous column "
                f"groups need 1 to {len(columns)} groups"
            )
        groups = np.array_split(np.arange(len(columns)), modalities)
        return {f"m{i}": [columns[j] for j in group] for i, group in enumerate(groups)}
    if not isinstance(modalities, Mapping) or not modalities:
        raise DataError(
            "X is a table or a 2-D array: expected modalities={name: [columns, ...]} (or an "
            "int, the number of contiguous column groups); or pass X as {name: array}"
        )
    groups = {}
    for name, names in modalities.items():
        names = [names] if isinstance(names, (str, int)) else list(names)
        missing = [c for c in names if c not in columns]
        if missing or not names:
            raise DataError(
                f"modalities[{name!r}]: columns {missing or names} are not in X; expected "
                f"names among {columns[:8]}{' ...' if len(columns) > 8 else ''}"
            )
        groups[str(name)] = names
    return groups


def refuse_unusable(X: Any) -> Any:
    """X as a DataFrame, a dict, or a numeric 2-D array; refuse what cannot be one."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("sparse input is not supported: pass a dense array (X.toarray())")
    if isinstance(X, (Mapping, pd.DataFrame)):
        return X
    values = np.asarray(X)
    if np.iscomplexobj(values):
        raise ValueError("Complex data not supported: X holds complex numbers")
    if values.ndim == 1:
        raise ValueError(
            f"X: a 1-D array of shape {values.shape}; Reshape your data: a 2-D array "
            "[N, F] with modalities=, a DataFrame, or a dict of modality arrays"
        )
    if values.ndim == 2 and values.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={values.shape}) while a minimum of 1 is required.")
    return values


def as_arrays(X: Any, modalities: Any) -> dict[str, np.ndarray]:
    X = refuse_unusable(X)
    if isinstance(X, Mapping):
        if not X:
            raise DataError("X: expected a dict {modality name: array [N, ...]} with entries")
        arrays = {}
        for name, values in X.items():
            values = np.asarray(values)
            if values.ndim < 2 or not (
                np.issubdtype(values.dtype, np.number) or values.dtype == bool
            ):
                raise DataError(
                    f"X[{name!r}]: array of shape {values.shape} and dtype {values.dtype}; "
                    "expected numbers [N, F] (or [N, L, F], [N, C, H, W], ...)"
                )
            arrays[str(name)] = values
        sizes = {name: len(values) for name, values in arrays.items()}
        if len(set(sizes.values())) > 1:
            raise DataError(f"X: the modalities have different numbers of samples {sizes}")
        return arrays
    if isinstance(X, pd.DataFrame):
        groups = column_groups(X, modalities)
        arrays = {}
        for name, columns in groups.items():
            frame = X[columns]
            numeric = frame.apply(pd.to_numeric, errors="coerce")
            bad = frame.notna() & numeric.isna()
            if bad.to_numpy().any():
                column = bad.any().idxmax()
                row = bad[column].to_numpy().argmax()
                raise DataError(
                    f"X column {column!r} (modality {name!r}): row {row} holds "
                    f"{frame[column].iloc[row]!r}; expected numbers (NaN for missing)"
                )
            arrays[name] = numeric.to_numpy(dtype=np.float64)
        return arrays
    values = X
    if values.ndim != 2:
        raise DataError(
            f"X: array of shape {values.shape}; expected a dict of modality arrays, a "
            "DataFrame, or a 2-D array [N, F] with modalities= naming its column groups"
        )
    groups = column_groups(values, modalities)
    return {name: values[:, columns] for name, columns in groups.items()}


def prepare_rows(
    X: Any, modalities: Any, observed: Any, expected: Sequence[ModalitySpec] | None
) -> ModalityRows:
    """Arrays as float32 in the expected order; rows that are NaN throughout a modality are
    missing; other NaN or infinite values are refused."""
    arrays = as_arrays(X, modalities)
    if expected is not None:
        names = [spec.name for spec in expected]
        if sorted(arrays) != sorted(names):
            raise DataError(f"X has the modalities {sorted(arrays)}; expected {sorted(names)}")
        arrays = {name: arrays[name] for name in names}
        for spec in expected:
            if tuple(arrays[spec.name].shape[1:]) != spec.shape:
                raise DataError(
                    f"X[{spec.name!r}]: per-sample shape {arrays[spec.name].shape[1:]}; "
                    f"expected {spec.shape} as in fit"
                )
    num_samples = len(next(iter(arrays.values())))
    mask = np.ones((num_samples, len(arrays)), dtype=bool)
    prepared = {}
    for m, (name, values) in enumerate(arrays.items()):
        values = values.astype(np.float32)
        flat = values.reshape(num_samples, -1)
        finite = np.isfinite(flat)
        absent = np.isnan(flat).all(1)
        broken = ~finite.all(1) & ~absent
        if broken.any():
            raise DataError(
                f"X[{name!r}]: {int(broken.sum())} rows (first: {int(np.argmax(broken))}) hold "
                "NaN or infinite values in some features; expected finite numbers, or NaN in "
                "every feature of a missing modality"
            )
        values[absent] = 0.0
        mask[:, m] = ~absent
        prepared[name] = values
    if observed is not None:
        given = np.asarray(observed, dtype=bool)
        if given.shape != mask.shape:
            raise DataError(
                f"observed: shape {given.shape}; expected {mask.shape} (samples x modalities, "
                f"in the order {list(prepared)})"
            )
        mask &= given
    return ModalityRows(prepared, mask)
