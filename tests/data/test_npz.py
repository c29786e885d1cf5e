import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from i2moe.data.base import SPLITS, DataError
from i2moe.data.npz import read_npz


def _write(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _basic(n: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "audio": rng.normal(2.0, 3.0, size=(n, 3)),
        "video": rng.normal(size=(n, 4, 2)).astype(np.float32),
        "y": np.arange(n) % 2,
    }


def test_reads_modalities_in_sorted_order_with_split_and_items(tmp_path):
    arrays = _basic()
    path = _write(tmp_path / "data.npz", zeta=np.ones((40, 1)), **arrays)
    bundle = read_npz(path)
    assert bundle.name == "data"
    assert bundle.modality_names == ["audio", "video", "zeta"]
    assert [m.kind for m in bundle.modalities] == ["vector", "sequence", "vector"]
    assert bundle.task == "classification" and bundle.num_outputs == 2
    assert [len(bundle.split(s)) for s in SPLITS] == [28, 6, 6]
    item = bundle.train[0]
    assert item["inputs"]["video"].shape == (4, 2)
    assert item["target"].dtype == torch.long
    assert item["observed"].tolist() == [True, True, True]
    rows = np.concatenate([bundle.meta["rows"][s] for s in SPLITS])
    assert sorted(rows.tolist()) == list(range(40))
    assert bundle.meta["split_generated"] is True
    assert bundle.class_weights == pytest.approx([1.0, 1.0])


def test_vectors_are_standardised_with_train_statistics_only(tmp_path):
    arrays = _basic()
    split = np.array([0] * 30 + [1] * 5 + [2] * 5)
    arrays["audio"][30:] += 100.0  # a shifted val/test must not move the statistics
    bundle = read_npz(_write(tmp_path / "d.npz", split=split, **arrays))
    train_audio = bundle.train.arrays["audio"].numpy()
    np.testing.assert_allclose(train_audio.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_audio.std(0), 1.0, atol=1e-4)
    assert bundle.val.arrays["audio"].mean() > 10
    # Sequences keep their values.
    np.testing.assert_allclose(bundle.train.arrays["video"].numpy(), arrays["video"][:30])
    assert bundle.meta["split_generated"] is False


def test_constant_feature_does_not_divide_by_zero(tmp_path):
    arrays = _basic()
    arrays["audio"][:, 1] = 7.0
    bundle = read_npz(_write(tmp_path / "d.npz", **arrays))
    assert torch.all(bundle.train.arrays["audio"][:, 1] == 0)
    assert bundle.meta["standardization"]["audio"]["std"][1] == 1.0


def test_nan_rows_and_masks_mark_missing_modalities(tmp_path):
    arrays = _basic()
    arrays["audio"][[0, 5]] = np.nan
    observed_video = np.ones(40, dtype=bool)
    observed_video[7] = False
    arrays["video"][7, 0, 0] = np.nan  # NaN in a row the mask already marks missing is fine
    bundle = read_npz(
        _write(tmp_path / "d.npz", split=np.arange(40) % 3, observed_video=observed_video, **arrays)
    )
    assert bundle.meta["missing"] == {"audio": 2, "video": 1}
    for split in SPLITS:
        dataset = bundle.split(split)
        for row, original in enumerate(bundle.meta["rows"][split]):
            item = dataset[row]
            expected = [original not in (0, 5), original != 7]
            assert item["observed"].tolist() == expected
            if not expected[0]:
                assert torch.all(item["inputs"]["audio"] == 0)
            assert torch.isfinite(item["inputs"]["video"]).all()


def test_observed_matrix_uses_sorted_modality_columns(tmp_path):
    arrays = _basic()
    observed = np.ones((40, 2), dtype=bool)
    observed[:, 1] = np.arange(40) % 4 != 0  # video missing for every 4th sample
    bundle = read_npz(_write(tmp_path / "d.npz", observed=observed, **arrays))
    assert bundle.meta["missing"] == {"audio": 0, "video": 10}


def test_partial_nan_is_an_error_unless_cleaned(tmp_path, caplog):
    arrays = _basic()
    arrays["audio"][3, 1] = np.nan
    path = _write(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=r"d\.npz: array 'audio': 1 NaN/inf values .*row 3"):
        read_npz(path)
    with caplog.at_level(logging.WARNING):
        bundle = read_npz(path, clean_nonfinite=True)
    assert "replaced 1 NaN/inf" in caplog.text
    assert bundle.meta["missing"]["audio"] == 0


def test_multilabel_regression_and_class_names(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2))
    multi = read_npz(_write(tmp_path / "m.npz", x=x, y=rng.integers(0, 2, (30, 3))))
    assert multi.task == "multilabel" and multi.num_outputs == 3
    assert multi.train[0]["target"].shape == (3,) and multi.class_weights is None
    regression = read_npz(_write(tmp_path / "r.npz", x=x, y=rng.normal(size=30)))
    assert regression.task == "regression" and regression.num_outputs == 1
    assert regression.train[0]["target"].shape == (1,)
    named = read_npz(
        _write(tmp_path / "c.npz", x=x, y=np.arange(30) % 3, class_names=np.array(["a", "b", "c"]))
    )
    assert named.class_names == ["a", "b", "c"]
    forced = read_npz(
        _write(tmp_path / "f.npz", x=x, y=(np.arange(30) % 2).astype(float)), task="classification"
    )
    assert forced.task == "classification"


def test_generator_records_are_kept_per_split(tmp_path):
    arrays = _basic()
    arrays["interaction"] = np.arange(40) % 3
    arrays["latent_bits"] = np.zeros((40, 2), dtype=np.int64)
    arrays["interaction_names"] = np.array(["uni_audio", "syn", "red"])
    arrays["ids"] = np.array([f"s{i}" for i in range(40)])
    bundle = read_npz(_write(tmp_path / "d.npz", **arrays))
    assert bundle.modality_names == ["audio", "video"]
    rows = bundle.meta["rows"]["test"]
    np.testing.assert_array_equal(bundle.meta["interaction"]["test"], rows % 3)
    assert bundle.meta["latent_bits"]["val"].shape == (6, 2)
    assert bundle.meta["interaction_names"] == ["uni_audio", "syn", "red"]
    assert bundle.test.sample_ids == [f"s{i}" for i in rows]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("y"), "has no array 'y'"),
        (lambda a: [a.pop("audio"), a.pop("video")], "no modality arrays"),
        (lambda a: a.update(audio=a["audio"][:-1]), "array 'audio': has 39 samples"),
        (lambda a: a.update(audio=np.zeros((40, 0))), "array 'audio': has zero features"),
        (lambda a: a.update(y=np.array(["a", "b"] * 20)), "array 'y': holds text"),
        (lambda a: a.update(y=np.arange(40) % 2 - 1), "negative class id -1"),
        (lambda a: a.update(y=np.zeros(40, dtype=int)), "single class"),
        (lambda a: a.update(y=np.full((40, 2), 2)), "values other than 0 and 1"),
        (lambda a: a.update(split=np.full(40, 5)), "array 'split': holds the values 5"),
        (lambda a: a.update(split=np.zeros(40)), "val split is empty"),
        (lambda a: a.update(split=np.arange(40) % 2 * 2), "val split is empty"),
        (
            lambda a: a.update(
                y=(np.arange(40) % 34 == 33).astype(int),
                split=np.arange(40) // 30 + np.arange(40) // 35,
            ),
            "class 1 occurs in the val split but not in train",
        ),
        (lambda a: a.update(observed=np.ones((40, 3))), "array 'observed'"),
        (lambda a: a.update(observed_nope=np.ones(40)), "names no modality"),
        (lambda a: a.update(class_names=np.array(["only"])), "array 'class_names'"),
        (lambda a: a.update(audio=np.full((40, 2), "x")), "array 'audio': holds text"),
    ],
)
def test_bad_files_raise_one_clear_data_error(tmp_path, change, message):
    arrays = _basic()
    change(arrays)
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as error:
        read_npz(path)
    assert str(error.value).startswith(str(path))


def test_forced_incompatible_task_and_unknown_task(tmp_path):
    arrays = _basic()
    arrays["y"] = np.linspace(0, 1, 40)
    path = _write(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match="non-integer values but the task is 'classification'"):
        read_npz(path, task="classification")
    with pytest.raises(DataError, match="task 'multilabel' needs one 0/1 column"):
        read_npz(path, task="multilabel")
    with pytest.raises(DataError, match="option 'task': 'ranking' is unknown"):
        read_npz(path, task="ranking")
    multi = _basic()
    multi["y"] = np.eye(2, dtype=int)[np.arange(40) % 2]
    with pytest.raises(DataError, match="task 'regression' predicts one value"):
        read_npz(_write(tmp_path / "m.npz", **multi), task="regression")


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_npz(tmp_path / "absent.npz")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(DataError, match="cannot be read as a .npz archive"):
        read_npz(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="single array"):
        read_npz(single)
    pickled = _basic()
    pickled["ids"] = np.array([object()] * 40, dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **pickled)
    with pytest.raises(DataError, match="array 'ids': cannot be read"):
        read_npz(path)


# Read to be predicted: labels and split optional, every row in file order in one split.


def test_a_file_without_labels_is_read_for_prediction_whole_and_in_order(tmp_path):
    arrays = _basic()
    del arrays["y"]
    arrays["ids"] = np.array([f"s{i}" for i in range(40)])
    path = _write(tmp_path / "new.npz", **arrays)
    with pytest.raises(DataError, match=r"new\.npz: has no array 'y'; expected an array 'y'"):
        read_npz(path)
    with pytest.raises(DataError, match="has no array 'y' and option 'task' is not set"):
        read_npz(path, for_prediction=True)
    bundle = read_npz(path, task="classification", for_prediction=True)
    assert [len(bundle.split(s)) for s in SPLITS] == [0, 0, 40]
    assert bundle.test.sample_ids == [f"s{i}" for i in range(40)]
    assert bundle.meta["rows"]["test"].tolist() == list(range(40))
    assert bundle.meta["labelled"] is False and bundle.meta["file_split"] is None
    assert bundle.num_outputs == 0 and bundle.test[0]["target"].item() == -1
    # Without a run's statistics, every row is the reference of the scaling.
    np.testing.assert_allclose(bundle.test.arrays["audio"].mean(0), 0.0, atol=1e-5)
    regression = read_npz(path, task="regression", for_prediction=True)
    assert torch.isnan(regression.test[0]["target"]).all()


def test_labels_and_split_of_a_file_to_predict_are_kept_not_required(tmp_path):
    arrays = _basic()
    arrays["y"] = np.full(40, 1)  # one class: fine for data to predict
    arrays["split"] = np.array([0] * 38 + [2] * 2)  # no val rows: fine too
    arrays["class_names"] = np.array(["only"])  # a run names its classes itself
    bundle = read_npz(_write(tmp_path / "d.npz", **arrays), for_prediction=True)
    assert bundle.meta["labelled"] is True and bundle.class_names is None
    assert bundle.test.targets.tolist() == [1] * 40
    assert bundle.meta["file_split"].tolist() == arrays["split"].tolist()
    assert bundle.meta["split_generated"] is False
    statistics = {"audio": {"mean": [1.0, 1.0, 1.0], "std": [2.0, 2.0, 2.0]}}
    scaled = read_npz(tmp_path / "d.npz", for_prediction=True, statistics=statistics)
    np.testing.assert_allclose(
        scaled.test.arrays["audio"].numpy(), (arrays["audio"] - 1.0) / 2.0, rtol=1e-5
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(split=np.full(40, 5)), "array 'split': holds the values 5"),
        (lambda a: a.update(split=np.zeros(39)), "array 'split': has 39 entries but there are 40"),
        (lambda a: a.update(y=np.arange(40) % 2 - 1), "negative class id -1"),
        (lambda a: a.update(video=a["video"][:-1]), "array 'video': has 39 samples but 'audio'"),
        (lambda a: a.update(ids=np.arange(3)), "array 'ids': has shape \\(3,\\) but 'audio'"),
    ],
)
def test_a_bad_file_to_predict_raises_one_clear_data_error(tmp_path, change, message):
    arrays = _basic()
    change(arrays)
    if "y" in arrays and arrays["y"].min() >= 0:
        del arrays["y"]
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as error:
        read_npz(path, task="classification", for_prediction=True)
    assert str(error.value).startswith(str(path))


def test_missing_rows_of_a_file_to_predict_are_marked_unobserved(tmp_path):
    arrays = _basic()
    del arrays["y"]
    arrays["audio"][[2, 5]] = np.nan
    arrays["observed_video"] = np.arange(40) != 7
    bundle = read_npz(_write(tmp_path / "d.npz", **arrays), task="regression", for_prediction=True)
    observed = bundle.test.observed.numpy()
    assert np.flatnonzero(~observed[:, 0]).tolist() == [2, 5]
    assert np.flatnonzero(~observed[:, 1]).tolist() == [7]
    assert bundle.meta["missing"] == {"audio": 2, "video": 1}


# Property-based checks over random valid files and random corruptions of them.

SHAPES = st.one_of(
    st.tuples(st.integers(1, 4)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3)),
)


@st.composite
def valid_files(draw):
    n = draw(st.integers(8, 40))
    task = draw(st.sampled_from(["classification", "multilabel", "regression"]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    shapes = draw(st.lists(SHAPES, min_size=1, max_size=3))
    arrays = {f"m{i}": rng.normal(size=(n, *shape)) for i, shape in enumerate(shapes)}
    if task == "classification":
        y = rng.integers(0, draw(st.integers(2, 3)), n)
        y[:2] = [0, 1]
    elif task == "multilabel":
        y = rng.integers(0, 2, (n, draw(st.integers(2, 3))))
    else:
        y = rng.normal(size=n)
    arrays["y"] = y
    if draw(st.booleans()):
        split = rng.integers(0, 3, n)
        split[rng.permutation(n)[:3]] = [0, 1, 2]
        if task == "classification":
            for cls in np.unique(y):  # every class needs a training sample
                split[np.flatnonzero(y == cls)[0]] = 0
            if not (split == 1).any() or not (split == 2).any():
                split = None
        if split is not None:
            arrays["split"] = split
    missing_rows = draw(st.lists(st.integers(0, n - 1), max_size=3))
    for row in missing_rows:
        arrays["m0"][row] = np.nan
    return arrays, task, seed


def _in_temp_dir(arrays, action):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(path, **arrays)
        return action(path)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(valid_files())
def test_random_valid_files_load_consistently(case):
    arrays, task, seed = case
    bundle = _in_temp_dir(arrays, lambda path: read_npz(path, seed=seed))
    n = len(arrays["y"])
    assert bundle.task == task
    sizes = [len(bundle.split(s)) for s in SPLITS]
    assert sum(sizes) == n and min(sizes) >= 1
    if "split" in arrays:
        assert sizes == np.bincount(arrays["split"], minlength=3).tolist()
    assert bundle.modality_names == sorted(k for k in arrays if k.startswith("m"))
    for spec in bundle.modalities:
        assert spec.shape == arrays[spec.name].shape[1:]
    missing_m0 = np.isnan(arrays["m0"]).reshape(n, -1).all(axis=1).sum()
    assert bundle.meta["missing"]["m0"] == missing_m0
    for split in SPLITS:
        dataset = bundle.split(split)
        item = dataset[len(dataset) - 1]
        assert item["observed"].shape == (len(bundle.modalities),)
        for spec in bundle.modalities:
            assert tuple(item["inputs"][spec.name].shape) == spec.shape
            assert torch.isfinite(dataset.arrays[spec.name]).all()
    if task == "classification":
        train_classes = set(bundle.train.targets.tolist())
        assert set(bundle.val.targets.tolist()) <= train_classes
        assert set(bundle.test.targets.tolist()) <= train_classes


CORRUPTIONS = ["drop_y", "short_modality", "inject_inf", "inject_nan", "bad_split", "text_y"]


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(valid_files(), st.sampled_from(CORRUPTIONS), st.integers(0, 10**6))
def test_random_corruptions_always_raise_data_error(case, corruption, pick):
    arrays, _, seed = case
    n = len(arrays["y"])
    names = sorted(k for k in arrays if k.startswith("m"))
    target = names[pick % len(names)]
    row = pick % n
    if corruption == "drop_y":
        del arrays["y"]
    elif corruption == "short_modality":
        arrays[target] = arrays[target][: n - 1 - pick % (n - 1)]
    elif corruption == "inject_inf":
        arrays[target][row].flat[pick % arrays[target][row].size] = np.inf
    elif corruption == "inject_nan":
        # A row of only NaN is a legitimately missing modality, so keep finite values beside it.
        sized = [k for k in names if arrays[k][0].size >= 2]
        key = sized[pick % len(sized)] if sized else "m9"
        if not sized:
            arrays[key] = np.zeros((n, 2))
        flat = arrays[key].reshape(n, -1).copy()
        flat[row] = 0.0
        flat[row, pick % flat.shape[1]] = np.nan
        arrays[key] = flat.reshape(arrays[key].shape)
    elif corruption == "bad_split":
        split = np.asarray(arrays.get("split", np.arange(n) % 3)).astype(float)
        split[row] = [3.0, -1.0, 0.5][pick % 3]
        arrays["split"] = split
    else:
        arrays["y"] = np.array([f"c{v}" for v in np.ravel(arrays["y"])[:n]])
    with pytest.raises(DataError):
        _in_temp_dir(arrays, lambda path: read_npz(path, seed=seed))
