"""MIMIC-IV reader on a fake Flex-MoE folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from fakes import write_mimic

from i2moe.data import DataError
from i2moe.data.paper import read_mimic


def _row(subject_id: str) -> int:
    return (int(subject_id) - 5000) // 7


def test_rows_labels_and_splits(tmp_path):
    bundle = read_mimic(write_mimic(tmp_path, n=40))
    assert bundle.task == "classification" and bundle.num_outputs == 2
    assert bundle.class_weights == [0.25, 0.75]
    assert [(m.name, m.shape, m.kind) for m in bundle.modalities] == [
        ("lab", (10,), "vector"),
        ("note", (16,), "vector"),
        ("code", (12,), "vector"),
    ]
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [24, 8, 8]
    for split, residue in (("val", {3}), ("test", {4}), ("train", {0, 1, 2})):
        dataset = bundle.split(split)
        assert {_row(s) % 5 for s in dataset.sample_ids} == residue
        for index in range(len(dataset)):
            item = dataset[index]
            i = _row(dataset.sample_ids[index])
            assert int(item["target"]) == int(i % 4 == 0)
            assert item["inputs"]["note"][0] == i and item["inputs"]["code"][0] == i


def test_nan_becomes_zero(tmp_path):
    bundle = read_mimic(write_mimic(tmp_path))
    first = bundle.train.sample_ids.index("5000")
    lab = bundle.train[first]["inputs"]["lab"]
    assert lab[1] == 0.0 and torch.isfinite(lab).all()


def test_numpy_arrays_load_without_unsafe_pickle(tmp_path):
    bundle = read_mimic(write_mimic(tmp_path, as_numpy=True))
    assert len(bundle.train) == 24


def test_other_objects_need_allow_unsafe_pickle(tmp_path):
    folder = write_mimic(tmp_path)
    torch.save(pd.DataFrame(np.ones((40, 3))), folder / "code_x.pt")
    with pytest.raises(DataError, match=r"code_x\.pt: cannot be loaded.*allow_unsafe_pickle"):
        read_mimic(folder)
    assert read_mimic(folder, allow_unsafe_pickle=True).modalities[2].shape == (3,)


def test_missing_files(tmp_path):
    folder = write_mimic(tmp_path)
    (folder / "note_x.pt").unlink()
    (folder / "labels.csv").unlink()
    with pytest.raises(DataError) as error:
        read_mimic(folder)
    assert "note_x.pt: missing; expected a torch.save'd [N, F]" in str(error.value)
    assert "labels.csv: missing; expected a CSV with columns subject_id" in str(error.value)


def test_wrong_shapes_keys_and_columns_reported_together(tmp_path):
    folder = write_mimic(tmp_path)
    torch.save(torch.zeros(40), folder / "lab_x.pt")
    torch.save(torch.zeros(39, 4), folder / "note_x.pt")
    (folder / "PTID_splits_mimic.json").write_text(json.dumps({"training": [5000]}))
    with pytest.raises(DataError) as error:
        read_mimic(folder)
    message = str(error.value)
    assert "lab_x.pt: has shape (40,); expected [N, F]" in message
    assert "note_x.pt: has 39 rows but labels.csv has 40" in message
    assert "PTID_splits_mimic.json: key 'validation' is missing" in message


def test_label_column_checked(tmp_path):
    folder = write_mimic(tmp_path)
    labels = pd.read_csv(folder / "labels.csv").rename(columns={"one_year_mortality": "y"})
    labels.to_csv(folder / "labels.csv", index=False)
    with pytest.raises(DataError, match=r"labels\.csv: column\(s\) one_year_mortality missing"):
        read_mimic(folder)


def test_labels_must_be_binary(tmp_path):
    folder = write_mimic(tmp_path)
    labels = pd.read_csv(folder / "labels.csv")
    labels.loc[0, "one_year_mortality"] = 2
    labels.to_csv(folder / "labels.csv", index=False)
    with pytest.raises(DataError, match="value\\(s\\) other than 0/1"):
        read_mimic(folder)


def test_garbage_feature_file(tmp_path):
    folder = write_mimic(tmp_path)
    (folder / "code_x.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"code_x\.pt: cannot be"):
        read_mimic(folder)
    with pytest.raises(DataError, match=r"code_x\.pt: cannot be"):
        read_mimic(folder, allow_unsafe_pickle=True)
