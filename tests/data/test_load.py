"""One entry point from a DATA argument to a DataBundle (i2moe.data.load)."""

import numpy as np
import pytest
import torch

from i2moe.data.base import SPLITS, DataError
from i2moe.data.load import all_rows_bundle, load_data


def test_statistics_reach_the_npz_reader_and_bundled_data_keep_their_scaling(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", a=rng.normal(size=(40, 2)), y=np.arange(40) % 2)
    statistics = {"a": {"mean": [10.0, 10.0], "std": [2.0, 2.0]}}
    scaled = load_data(str(tmp_path / "d.npz"), statistics=statistics)
    assert scaled.meta["standardization"]["a"]["mean"].tolist() == [10.0, 10.0]
    assert scaled.train.arrays["a"].mean() < -4
    mfeat = load_data("mfeat", statistics={"fou": {"mean": [0.0], "std": [1.0]}})
    assert np.array_equal(mfeat.train.arrays["fou"], load_data("mfeat").train.arrays["fou"])


def test_an_unsupported_file_is_a_data_error(tmp_path):
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        load_data(str(tmp_path / "d.txt"))


def test_data_read_for_prediction_holds_every_row_in_one_split(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", a=rng.normal(size=(40, 2)), split=np.zeros(40))
    new = load_data(str(tmp_path / "d.npz"), task="classification", for_prediction=True)
    assert len(new.test) == 40 and len(new.train) == len(new.val) == 0
    assert new.meta["file_split"].tolist() == [0] * 40
    # A bundled dataset keeps its reading: its train, val and test rows one after the other.
    mfeat = load_data("mfeat")
    joined = load_data("mfeat", for_prediction=True)
    sizes = [len(mfeat.split(s)) for s in SPLITS]
    assert len(joined.test) == sum(sizes) and len(joined.train) == len(joined.val) == 0
    assert np.bincount(joined.meta["file_split"]).tolist() == sizes
    expected_ids = mfeat.train.sample_ids + mfeat.val.sample_ids + mfeat.test.sample_ids
    assert joined.test.sample_ids == expected_ids
    first_test = joined.test[sizes[0] + sizes[1]]
    assert first_test["index"] == sizes[0] + sizes[1]
    assert torch.equal(first_test["inputs"]["fou"], mfeat.test[0]["inputs"]["fou"])
    with pytest.raises(IndexError):
        joined.test[sum(sizes)]


def test_a_reader_s_splits_are_joined_in_file_order(tmp_path):
    rng = np.random.default_rng(0)
    split = np.array([2, 0, 1, 0] * 10)
    arrays = {"a": rng.normal(size=(40, 2)), "y": np.arange(40) // 4 % 2, "split": split}
    np.savez(tmp_path / "d.npz", **arrays, interaction=np.arange(40))
    bundle = load_data(str(tmp_path / "d.npz"))
    joined = all_rows_bundle(bundle)
    assert joined.test.sample_ids == list(range(40))
    assert joined.meta["file_split"].tolist() == split.tolist()
    assert joined.meta["rows"]["test"].tolist() == list(range(40))
    assert joined.meta["interaction"]["test"].tolist() == list(range(40))
    assert [joined.test[i]["target"].item() for i in range(40)] == arrays["y"].tolist()
    np.testing.assert_array_equal(joined.test[5]["inputs"]["a"], bundle.train[2]["inputs"]["a"])
