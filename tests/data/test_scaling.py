"""Standardisation with training statistics or a trained run's (i2moe.data.scaling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from i2moe.data.base import SPLITS
from i2moe.data.npz import read_npz
from i2moe.data.scaling import (
    standardize,
    standardize_modalities,
    training_standardised,
)
from i2moe.data.table import read_table


def test_training_standardised_uses_observed_fit_rows_and_guards_constant_columns():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 7.0], [0.0, 0.0]])
    scaled = training_standardised(values, np.array([0, 1]))
    np.testing.assert_allclose(scaled, [[-1.0, 0.0], [1.0, 0.0], [98.0, 2.0], [-2.0, -5.0]])
    assert scaled.dtype == np.float32 and values[0, 0] == 1.0  # a copy
    observed = np.array([True, True, True, False])
    scaled = training_standardised(values, np.array([0, 1, 3]), observed=observed)
    np.testing.assert_allclose(scaled[3], [0.0, 0.0])  # unobserved: left as it was


def test_given_statistics_scale_observed_rows_of_every_column():
    values = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]], dtype=np.float32)
    observed = np.array([True, True, False])
    train = np.array([True, True, True])
    mean, std = standardize(
        values,
        observed,
        train,
        columns=np.array([True, False]),
        statistics={"mean": [1.0, 10.0], "std": [2.0, 5.0]},
    )
    np.testing.assert_array_equal(values, [[0.0, 0.0], [1.0, 2.0], [5.0, 30.0]])
    assert mean.tolist() == [1.0, 10.0] and std.tolist() == [2.0, 5.0]


def test_the_own_statistics_given_back_scale_bit_for_bit():
    rng = np.random.default_rng(0)
    raw = rng.normal(3.0, 7.0, size=(50, 4)).astype(np.float32)
    observed, train = np.ones(50, dtype=bool), np.arange(50) < 35
    own = raw.copy()
    mean, std = standardize(own, observed, train)
    again = raw.copy()
    standardize(again, observed, train, statistics={"mean": mean.tolist(), "std": std.tolist()})
    np.testing.assert_array_equal(again, own)


def test_statistics_of_another_width_or_modality_are_not_applied():
    features = {"a": np.ones((4, 2), np.float32) * [[1.0], [2.0], [3.0], [4.0]]}
    observed, train = np.ones((4, 1), dtype=bool), np.ones(4, dtype=bool)
    used = standardize_modalities(
        features, observed, train, {"a": None}, {"a": {"mean": [0.0], "std": [1.0]}, "b": {}}
    )
    np.testing.assert_allclose(used["a"]["mean"], [2.5, 2.5])
    np.testing.assert_allclose(features["a"].mean(axis=0), [0.0, 0.0], atol=1e-6)


def _rescaled_from_own_statistics(bundle, statistics):
    """The former path: undo the reader's own scaling, then apply the run's (float32)."""
    scaled = {}
    for split in SPLITS:
        dataset = bundle.split(split)
        scaled[split] = {}
        for name, values in dataset.arrays.items():
            values = values.clone()
            if name in statistics:
                own = bundle.meta["standardization"][name]
                mean_new, std_new = (torch.as_tensor(own[k]) for k in ("mean", "std"))
                mean_run, std_run = (torch.tensor(statistics[name][k]) for k in ("mean", "std"))
                present = dataset.observed[:, dataset.names.index(name)]
                raw = values[present] * std_new + mean_new
                values[present] = (raw - mean_run) / std_run
            scaled[split][name] = values
    return scaled


def _run_statistics(bundle):
    return {
        name: {"mean": s["mean"].tolist(), "std": s["std"].tolist()}
        for name, s in bundle.meta["standardization"].items()
    }


def _assert_scaled_alike(bundle, expected):
    for split in SPLITS:
        for name, values in bundle.split(split).arrays.items():
            np.testing.assert_allclose(values.numpy(), expected[split][name].numpy(), atol=1e-6)


def test_another_npz_is_scaled_with_the_run_statistics_as_before(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "audio": rng.normal(2.0, 3.0, size=(60, 3)),
        "video": rng.normal(size=(60, 4, 2)).astype(np.float32),
        "y": np.arange(60) % 2,
    }
    arrays["audio"][rng.random(60) < 0.2] = np.nan  # some samples miss the modality
    np.savez(tmp_path / "run.npz", **arrays)
    other = {**arrays, "audio": arrays["audio"] * 1.5 + 0.5}
    np.savez(tmp_path / "other.npz", **other, split=np.roll(np.arange(60) % 3, 7))
    statistics = _run_statistics(read_npz(tmp_path / "run.npz"))

    expected = _rescaled_from_own_statistics(read_npz(tmp_path / "other.npz"), statistics)
    rescaled = read_npz(tmp_path / "other.npz", statistics=statistics)
    _assert_scaled_alike(rescaled, expected)
    assert rescaled.meta["standardization"]["audio"]["mean"].tolist() == pytest.approx(
        statistics["audio"]["mean"]
    )
    own_file = read_npz(tmp_path / "run.npz", statistics=statistics)
    for split in SPLITS:
        assert torch.equal(
            own_file.split(split).arrays["audio"],
            read_npz(tmp_path / "run.npz").split(split).arrays["audio"],
        )


def test_another_table_is_scaled_with_the_run_statistics_as_before(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "age": rng.normal(50, 12, 80).round(1),
            "sex": rng.choice(["f", "m"], 80),
            "lab": rng.normal(3, 2, 80),
            "label": np.arange(80) % 2,
        }
    )
    frame.to_csv(tmp_path / "run.csv", index=False)
    other = frame.assign(age=frame["age"] * 1.1 + 3, lab=frame["lab"] - 1).sample(
        frac=1, random_state=0
    )
    other.to_csv(tmp_path / "other.csv", index=False)
    mapping = {"modalities": {"clinical": ["age", "sex"], "labs": ["lab"]}, "target": "label"}
    statistics = _run_statistics(read_table(tmp_path / "run.csv", **mapping))

    expected = _rescaled_from_own_statistics(
        read_table(tmp_path / "other.csv", **mapping), statistics
    )
    rescaled = read_table(tmp_path / "other.csv", **mapping, statistics=statistics)
    _assert_scaled_alike(rescaled, expected)
