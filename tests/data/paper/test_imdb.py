"""MM-IMDb reader on a fake HDF5 file: lazy row reading, proportional splits, errors."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

h5py = pytest.importorskip("h5py")

from fakes import write_imdb  # noqa: E402

from i2moe.data import DataError  # noqa: E402
from i2moe.data.paper import read_imdb  # noqa: E402
from i2moe.data.paper.imdb import HDF5RowDataset, split_rows  # noqa: E402

HDF5 = "multimodal_imdb.hdf5"


def test_reads_rows_in_scaled_published_splits(tmp_path):
    folder = write_imdb(tmp_path, n=40)
    bundle = read_imdb(folder)

    assert bundle.task == "multilabel" and bundle.num_outputs == 23
    assert [(m.name, m.shape, m.kind) for m in bundle.modalities] == [
        ("image", (4096,), "vector"),
        ("text", (300,), "vector"),
    ]
    # 40 * 15552 / 25959 = 23.96 -> 24 and 40 * 18160 / 25959 = 27.98 -> 28.
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [24, 4, 12]
    assert bundle.meta["split_scaled"] is True
    assert bundle.meta["split_rows"] == {"train": [0, 24], "val": [24, 28], "test": [28, 40]}

    item = bundle.val[1]  # file row 25
    assert item["inputs"]["text"][0] == 25 and item["inputs"]["image"][0] == -25
    with h5py.File(folder / HDF5, "r") as handle:
        genres = handle["genres"][25]
    assert item["target"].dtype == torch.float32
    assert torch.equal(item["target"], torch.from_numpy(genres.astype(np.float32)))
    assert item["observed"].tolist() == [True, True]
    assert item["index"] == 1
    assert bundle.val.sample_ids == [f"{100000 + i:07d}" for i in range(24, 28)]


def test_published_size_uses_published_boundaries():
    assert split_rows(25959) == ((15552, 18160), False)
    assert split_rows(259590)[1] is True


def test_reading_is_lazy_and_pickles_without_data(tmp_path):
    bundle = read_imdb(write_imdb(tmp_path, n=40))
    train = bundle.train
    assert isinstance(train, HDF5RowDataset)
    assert not train.is_open  # reading the bundle opened nothing for good
    assert not any(isinstance(v, np.ndarray | torch.Tensor) for v in vars(train).values())

    train[3]
    assert train.is_open
    payload = pickle.dumps(train)
    assert len(payload) < 1000  # path and row range only, never the rows
    clone = pickle.loads(payload)
    assert not clone.is_open and clone[3]["inputs"]["text"][0] == 3
    train.close()
    assert not train.is_open


def test_each_worker_opens_the_file_itself(tmp_path):
    bundle = read_imdb(write_imdb(tmp_path, n=40))
    bundle.test[0]  # a parent handle must not be reused by forked workers
    loader = DataLoader(bundle.test, batch_size=5, num_workers=2)
    rows = torch.cat([batch["inputs"]["text"][:, 0] for batch in loader])
    assert rows.tolist() == list(range(28, 40))


def test_genre_names_option(tmp_path):
    names = [f"g{i}" for i in range(23)]
    assert read_imdb(write_imdb(tmp_path), genre_names=names).class_names == names
    with pytest.raises(DataError, match="genre_names has 2 names"):
        read_imdb(tmp_path / "mmimdb", genre_names=["a", "b"])


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"multimodal_imdb\.hdf5: missing"):
        read_imdb(tmp_path)


def test_missing_dataset_and_wrong_width(tmp_path):
    folder = write_imdb(tmp_path, n=20, image_dim=16)
    with h5py.File(folder / HDF5, "a") as handle:
        del handle["vgg_features"]
        genres = handle["genres"][:, :20]
        del handle["genres"]
        handle["genres"] = genres
    with pytest.raises(DataError) as error:
        read_imdb(folder)
    message = str(error.value)
    assert HDF5 in message
    assert "dataset 'vgg_features' is missing" in message and "[N, 4096]" in message
    assert "dataset 'genres' has shape (20, 20)" in message and "[N, 23]" in message


def test_row_counts_must_agree(tmp_path):
    folder = write_imdb(tmp_path, n=20, image_dim=16)
    with h5py.File(folder / HDF5, "a") as handle:
        text = handle["features"][:15]
        del handle["features"]
        handle["features"] = text
    with pytest.raises(DataError, match="datasets disagree on N"):
        read_imdb(folder)


def test_too_few_rows(tmp_path):
    with pytest.raises(DataError, match="too few to split"):
        read_imdb(write_imdb(tmp_path, n=3, image_dim=8))


def test_missing_h5py_names_the_extra(tmp_path, monkeypatch):
    folder = write_imdb(tmp_path, n=12, image_dim=8)
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes "import h5py" fail
    with pytest.raises(ImportError, match=r'needs h5py: pip install "i2moe\[paper\]"'):
        read_imdb(folder)
