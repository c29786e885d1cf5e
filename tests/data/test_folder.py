import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from i2moe.data.base import SPLITS, DataError
from i2moe.data.folder import MemoryMappedDataset, RunningMoments, read_folder
from i2moe.data.load import load_data
from i2moe.data.npz import read_npz
from i2moe.data.scaling import standardize


def _arrays(n: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    clinical = rng.normal(50.0, 3.0, size=(n, 3))
    clinical[4] = np.nan  # missing for this sample
    observed = np.ones((n, 3), dtype=bool)
    observed[7, 2] = False
    return {
        "clinical": clinical,
        "notes": rng.normal(size=(n, 4, 2)).astype(np.float32),
        "xray": rng.integers(0, 256, size=(n, 1, 5, 5), dtype=np.uint8),
        "y": np.arange(n) % 3,
        "observed": observed,
        "ids": np.array([f"p{i}" for i in range(n)]),
    }


def _write_folder(folder: Path, **arrays: np.ndarray) -> Path:
    folder.mkdir()
    for name, values in arrays.items():
        np.save(folder / f"{name}.npy", values)
    return folder


def _items(dataset) -> list[dict]:
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("for_prediction", [False, True])
def test_folder_gives_the_bundle_of_the_same_npz(tmp_path, for_prediction):
    arrays = _arrays()
    np.savez(tmp_path / "data.npz", **arrays)
    folder = _write_folder(tmp_path / "data", **arrays)
    expected = read_npz(tmp_path / "data.npz", for_prediction=for_prediction, task="classification")
    bundle = read_folder(folder, for_prediction=for_prediction, task="classification", chunk_rows=7)

    assert bundle.name == expected.name == "data"
    assert bundle.modalities == expected.modalities
    assert bundle.task == expected.task and bundle.num_outputs == expected.num_outputs
    assert bundle.class_weights == pytest.approx(expected.class_weights)
    assert (
        bundle.meta["missing"]
        == expected.meta["missing"]
        == {
            "clinical": 1,
            "notes": 0,
            "xray": 1,
        }
    )
    for name, stats in expected.meta["standardization"].items():
        for key in ("mean", "std"):
            np.testing.assert_allclose(
                bundle.meta["standardization"][name][key], stats[key], rtol=1e-6
            )
    for split in SPLITS:
        lazy, eager = bundle.split(split), expected.split(split)
        np.testing.assert_array_equal(bundle.meta["rows"][split], expected.meta["rows"][split])
        assert lazy.sample_ids == eager.sample_ids
        assert torch.equal(lazy.targets, eager.targets)
        assert torch.equal(lazy.observed, eager.observed)
        for got, want in zip(_items(lazy), _items(eager), strict=True):
            assert got["index"] == want["index"]
            assert torch.equal(got["target"], want["target"])
            assert torch.equal(got["observed"], want["observed"])
            for name, values in want["inputs"].items():
                assert got["inputs"][name].dtype == torch.float32
                torch.testing.assert_close(got["inputs"][name], values, rtol=1e-6, atol=1e-6)


def test_a_run_s_statistics_scale_as_in_the_npz_reader(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "data.npz", **arrays)
    folder = _write_folder(tmp_path / "data", **arrays)
    statistics = {"clinical": {"mean": [1.0, 2.0, 3.0], "std": [2.0, 2.0, 4.0]}}
    expected = read_npz(tmp_path / "data.npz", statistics=statistics)
    bundle = read_folder(folder, statistics=statistics)
    np.testing.assert_array_equal(bundle.meta["standardization"]["clinical"]["mean"], [1, 2, 3])
    torch.testing.assert_close(
        bundle.test[0]["inputs"]["clinical"], expected.test[0]["inputs"]["clinical"]
    )


def test_an_image_stays_uint8_on_disk_and_is_float32_in_items(tmp_path):
    folder = _write_folder(tmp_path / "data", **_arrays())
    bundle = read_folder(folder)
    item = bundle.train[0]
    stored = bundle.train.files["xray"].get()
    assert isinstance(stored, np.memmap) and stored.dtype == np.uint8
    assert item["inputs"]["xray"].dtype == torch.float32
    row = int(bundle.meta["rows"]["train"][0])
    np.testing.assert_array_equal(item["inputs"]["xray"].numpy(), _arrays()["xray"][row])


def test_the_dataset_pickles_without_its_memory_maps_and_loads_in_workers(tmp_path):
    bundle = read_folder(_write_folder(tmp_path / "data", **_arrays()))
    first = bundle.train[0]
    copy = pickle.loads(pickle.dumps(bundle.train))
    assert isinstance(copy, MemoryMappedDataset)
    assert not any(handle.is_open for handle in copy.files.values())
    torch.testing.assert_close(copy[0]["inputs"], first["inputs"])
    batch = next(iter(DataLoader(bundle.train, batch_size=4, num_workers=1)))
    assert batch["inputs"]["xray"].shape == (4, 1, 5, 5)
    torch.testing.assert_close(batch["inputs"]["notes"][0], first["inputs"]["notes"])


def test_running_moments_equal_the_in_memory_statistics():
    rng = np.random.default_rng(1)
    values = rng.normal(1e4, 0.5, size=(1000, 4)).astype(np.float32)
    observed = rng.random(1000) > 0.1
    train = rng.random(1000) > 0.3
    moments = RunningMoments(4)
    for start in range(0, 1000, 64):
        rows = slice(start, start + 64)
        moments.add(values[rows][observed[rows] & train[rows]])
    mean, std = standardize(values.copy(), observed, train)
    np.testing.assert_allclose(moments.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(moments.std, std, rtol=1e-6)


def test_load_data_reads_a_folder_and_ignores_other_files(tmp_path, caplog):
    folder = _write_folder(tmp_path / "data", **_arrays())
    (folder / "README.txt").write_text("notes")
    with caplog.at_level(logging.INFO, logger="i2moe.data.folder"):
        bundle = load_data(str(folder))
    assert bundle.modality_names == ["clinical", "notes", "xray"]
    assert "ignoring README.txt" in caplog.text


def test_partly_nan_rows_are_refused_or_cleaned_as_in_the_npz_reader(tmp_path):
    arrays = _arrays()
    arrays["clinical"][30, 1] = np.inf
    np.savez(tmp_path / "data.npz", **arrays)
    folder = _write_folder(tmp_path / "data", **arrays)
    with pytest.raises(
        DataError, match=r"clinical\.npy: array 'clinical': 1 NaN/inf values .* first at row 30"
    ):
        read_folder(folder, chunk_rows=8)
    expected = read_npz(tmp_path / "data.npz", clean_nonfinite=True)
    bundle = read_folder(folder, clean_nonfinite=True, chunk_rows=8)
    np.testing.assert_allclose(
        bundle.meta["standardization"]["clinical"]["std"],
        expected.meta["standardization"]["clinical"]["std"],
        rtol=1e-6,
    )
    for split in SPLITS:
        pairs = zip(_items(bundle.split(split)), _items(expected.split(split)), strict=True)
        for got, want in pairs:
            torch.testing.assert_close(got["inputs"], want["inputs"], rtol=1e-6, atol=1e-6)


def test_a_truncated_npy_file_is_named(tmp_path):
    folder = _write_folder(tmp_path / "data", **_arrays())
    data = (folder / "notes.npy").read_bytes()
    (folder / "notes.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"notes\.npy: cannot be read as a \.npy array"):
        read_folder(folder)
    (folder / "y.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(DataError, match=r"y\.npy: cannot be read as a \.npy array"):
        read_folder(folder)


def test_a_modality_of_another_length_is_refused(tmp_path):
    arrays = _arrays()
    arrays["notes"] = arrays["notes"][:-1]
    folder = _write_folder(tmp_path / "data", **arrays)
    with pytest.raises(
        DataError, match=r"notes\.npy: array 'notes': has 59 samples but 'y' has 60"
    ):
        read_folder(folder)


def test_a_folder_without_labels_or_modalities_is_refused(tmp_path):
    arrays = _arrays()
    labels = arrays.pop("y")
    folder = _write_folder(tmp_path / "unlabelled", **arrays)
    with pytest.raises(DataError, match="has no file y.npy; expected y.npy with the labels"):
        read_folder(folder)
    folder = _write_folder(tmp_path / "labels_only", y=labels, split=np.zeros(60, dtype=int))
    with pytest.raises(DataError, match=r"has no modality files \(only split.npy, y.npy\)"):
        read_folder(folder)
    with pytest.raises(DataError, match="folder not found"):
        read_folder(tmp_path / "absent")


@pytest.mark.slow
def test_fit_trains_one_epoch_on_a_folder(tmp_path):
    from i2moe.cli import main

    arrays = _arrays(n=80)
    arrays["y"] = np.arange(80) % 2
    folder = _write_folder(tmp_path / "data", **arrays)
    run = tmp_path / "run"
    main(
        [
            "--quiet",
            "fit",
            "--data",
            str(folder),
            "--output",
            str(run),
            "--epochs",
            "1",
            "--dim",
            "8",
        ]
    )
    assert (run / "run.json").is_file()
