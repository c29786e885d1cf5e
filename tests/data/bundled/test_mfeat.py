"""The bundled UCI Multiple Features dataset (i2moe.data.bundled.mfeat)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from bundle_arrays import raw_arrays, split_ids, stacked
from torch.utils.data import DataLoader

from i2moe.data.base import DataError
from i2moe.data.bundled import load_mfeat
from i2moe.data.registry import load_dataset
from i2moe.data.scaling import MIN_STD

MFEAT_VIEWS = ["fou", "fac", "kar", "pix", "zer", "mor"]
MFEAT_DIMS = [76, 216, 64, 240, 47, 6]


@pytest.fixture(scope="module")
def mfeat():
    return load_mfeat()


def test_mfeat_modalities_task_and_sizes(mfeat):
    assert mfeat.name == "mfeat"
    assert mfeat.task == "classification"
    assert mfeat.num_outputs == 10
    assert mfeat.class_names == [str(d) for d in range(10)]
    assert mfeat.modality_names == MFEAT_VIEWS
    assert [m.shape for m in mfeat.modalities] == [(d,) for d in MFEAT_DIMS]
    assert {m.kind for m in mfeat.modalities} == {"vector"}
    assert (len(mfeat.train), len(mfeat.val), len(mfeat.test)) == (1400, 300, 300)
    assert mfeat.meta["licence"] == "CC BY 4.0"
    assert "van Breukelen" in mfeat.meta["citation"]


def test_mfeat_items_batch_with_the_contract_form(mfeat):
    item = mfeat.train[0]
    assert set(item) == {"inputs", "target", "observed", "index"}
    assert item["target"].dtype == torch.long and item["target"].shape == ()
    assert item["observed"].dtype == torch.bool and item["observed"].shape == (6,)
    batch = next(iter(DataLoader(mfeat.train, batch_size=5)))
    assert batch["inputs"]["pix"].shape == (5, 240)
    assert batch["inputs"]["fou"].dtype == torch.float32


def test_mfeat_splits_are_disjoint_complete_and_stratified(mfeat):
    train, val, test = split_ids(mfeat)
    assert len(set(train) | set(val) | set(test)) == 2000
    labels = raw_arrays("mfeat.npz")["labels"]
    for ids, per_class in ((train, 140), (val, 30), (test, 30)):
        assert np.bincount(labels[ids], minlength=10).tolist() == [per_class] * 10
    for split in ("train", "val", "test"):
        dataset = mfeat.split(split)
        assert np.array_equal(dataset.targets.numpy(), labels[dataset.sample_ids])


def test_mfeat_standardised_with_training_statistics_only(mfeat):
    raw = raw_arrays("mfeat.npz")
    train_ids, _, test_ids = split_ids(mfeat)
    for view in MFEAT_VIEWS:
        values = raw[view].astype(np.float64)
        mean = values[train_ids].mean(axis=0)
        std = values[train_ids].std(axis=0)
        std[std < MIN_STD] = 1.0
        expected_test = (values[test_ids] - mean) / std
        np.testing.assert_allclose(stacked(mfeat.test, view), expected_test, atol=1e-4)
        train = stacked(mfeat.train, view).astype(np.float64)
        np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
        assert np.abs(stacked(mfeat.test, view).mean(axis=0)).max() > 1e-3
    assert np.isfinite(stacked(mfeat.train, "pix")).all()


def test_mfeat_split_is_deterministic_for_a_seed_and_changes_with_it(mfeat):
    again = load_mfeat(seed=0)
    other = load_mfeat(seed=1)
    assert all(
        np.array_equal(a, b) for a, b in zip(split_ids(mfeat), split_ids(again), strict=True)
    )
    assert torch.equal(mfeat.val.arrays["fou"], again.val.arrays["fou"])
    assert not np.array_equal(split_ids(mfeat)[1], split_ids(other)[1])


def test_mfeat_loads_fast():
    start = time.perf_counter()
    load_dataset("mfeat")
    # Well under a second on an idle laptop; generous here because tests share the CPU.
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"seed": -1}, "option seed=-1"),
        ({"seed": 1.5}, "option seed=1.5"),
        ({"val_fraction": 1.2}, "option val_fraction=1.2"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction"),
    ],
)
def test_mfeat_rejects_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_mfeat(**options)
