"""CMU-MOSI reader on fake MultiBench pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from fakes import write_mosi

from i2moe.data import DataError
from i2moe.data.paper import PAPER_DATASETS, read_mosi


def _load(folder, name="mosi_data.pkl"):
    with (folder / name).open("rb") as handle:
        return pickle.load(handle)


def _rewrite(folder, content, name="mosi_data.pkl"):
    with (folder / name).open("wb") as handle:
        pickle.dump(content, handle)


def test_binary_keeps_pickle_splits_and_drops_empty_text(tmp_path):
    folder = write_mosi(tmp_path, sizes=(12, 7, 6))
    bundle = read_mosi(folder)
    raw = _load(folder)

    assert bundle.task == "classification" and bundle.num_outputs == 2
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [11, 6, 5]
    assert bundle.meta["dropped_empty_text"] == {"train": 1, "val": 1, "test": 1}
    assert [m.name for m in bundle.modalities] == ["vision", "audio", "text"]
    assert all(m.kind == "sequence" for m in bundle.modalities)
    assert bundle.modalities[0].shape == (50, 20)
    assert bundle.modalities[1].shape == (50, 5)

    # Sample 1 (all-zero text) is gone, so raw sample k > 1 is item k - 1.
    kept = [i for i in range(7) if i != 1]
    expected_ids = ["".join(p.decode() for p in raw["valid"]["id"][i]) for i in kept]
    assert bundle.val.sample_ids == expected_ids
    item = bundle.val[2]  # raw sample 3
    assert torch.equal(item["inputs"]["text"], torch.from_numpy(raw["valid"]["text"][3]))


def test_binary_label_convention_counts_zero_as_negative(tmp_path):
    bundle = read_mosi(write_mosi(tmp_path))
    # Raw samples 2 (score 0.0), 3 (-1.4), 4 (2.2) are items 1, 2, 3 after the drop.
    assert [int(bundle.train[i]["target"]) for i in (1, 2, 3)] == [0, 0, 1]
    assert bundle.train[1]["target"].dtype == torch.long
    assert "<= 0" in bundle.meta["label_convention"]
    assert bundle.meta["exclude_neutral"] is False


def test_exclude_neutral_leaves_out_zero_scores(tmp_path):
    folder = write_mosi(tmp_path, sizes=(12, 7, 6))
    bundle = read_mosi(folder, exclude_neutral=True)
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [10, 5, 4]
    assert bundle.meta["dropped_neutral"] == {"train": 1, "val": 1, "test": 1}
    assert "Acc-2" in bundle.meta["label_convention"]
    raw_ids = ["".join(p.decode() for p in row) for row in _load(folder)["train"]["id"]]
    assert raw_ids[2] not in bundle.train.sample_ids


def test_features_are_cleaned_of_nan_and_inf(tmp_path):
    bundle = read_mosi(write_mosi(tmp_path))
    item = bundle.train[0]
    for values in item["inputs"].values():
        assert torch.isfinite(values).all()
    assert item["inputs"]["vision"][0, 0] == 0.0
    assert item["inputs"]["audio"][1, 0] == 0.0 and item["inputs"]["audio"][1, 1] == 0.0


def test_regression_keeps_raw_scores(tmp_path):
    folder = write_mosi(tmp_path)
    bundle = read_mosi(folder / "mosi_data.pkl", task="regression")
    assert bundle.task == "regression" and bundle.num_outputs == 1
    scores = _load(folder)["test"]["labels"].reshape(-1)
    target = bundle.test[3]["target"]  # raw sample 4
    assert target.shape == (1,) and target.dtype == torch.float32
    assert target.item() == pytest.approx(scores[4])


def test_raw_pickle_shapes_come_from_the_file(tmp_path):
    folder = write_mosi(tmp_path, raw=True, seq_len=20)
    bundle = read_mosi(folder, filename="mosi_raw.pkl")
    assert [m.shape for m in bundle.modalities] == [(20, 35), (20, 74), (20, 300)]


def test_registered_in_paper_datasets():
    assert PAPER_DATASETS["mosi"] is read_mosi


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"mosi_data\.pkl: missing"):
        read_mosi(tmp_path)


def test_missing_key_and_wrong_shape_reported_together(tmp_path):
    folder = write_mosi(tmp_path)
    content = _load(folder)
    del content["train"]["audio"]
    content["test"]["vision"] = content["test"]["vision"][:, :, 0]
    _rewrite(folder, content)
    with pytest.raises(DataError) as error:
        read_mosi(folder)
    message = str(error.value)
    assert "mosi_data.pkl" in message
    assert "['train']['audio'] is missing" in message
    assert "['test']['vision'] has shape (8, 50)" in message and "[N, L, F]" in message


def test_missing_split_and_bad_labels(tmp_path):
    folder = write_mosi(tmp_path)
    content = _load(folder)
    del content["valid"]
    content["train"]["labels"] = np.zeros((16, 2))
    _rewrite(folder, content)
    with pytest.raises(DataError) as error:
        read_mosi(folder)
    assert "split 'valid' is missing" in str(error.value)
    assert "['train']['labels'] has shape (16, 2)" in str(error.value)


def test_disagreeing_sizes(tmp_path):
    folder = write_mosi(tmp_path)
    content = _load(folder)
    content["train"]["text"] = content["train"]["text"][:5]
    _rewrite(folder, content)
    with pytest.raises(DataError, match=r"\['train'\] arrays disagree on N"):
        read_mosi(folder)


def test_invalid_task_option(tmp_path):
    with pytest.raises(DataError, match="task='sentiment'"):
        read_mosi(write_mosi(tmp_path), task="sentiment")
