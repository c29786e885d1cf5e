import logging

import numpy as np
import pandas as pd
import pytest
import torch

from i2moe.data.base import SPLITS, DataError
from i2moe.data.table import read_table, read_table_config

MAPPING = {"clinical": ["age", "sex"], "audio": ["audio-*"]}


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "age": rng.normal(50, 10, n),
            "sex": np.where(np.arange(n) % 3 == 0, "f", "m"),
            "audio-1": rng.normal(size=n),
            "audio-2": rng.normal(size=n),
            "other": rng.normal(size=n),
            "label": np.where(np.arange(n) % 2 == 0, "healthy", "sick"),
            "fold": np.array(["train"] * 30 + ["val"] * 5 + ["test"] * 5),
        }
    )


def _csv(tmp_path, frame: pd.DataFrame, name: str = "t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_columns_group_into_vector_modalities(tmp_path):
    path = _csv(tmp_path, _frame())
    bundle = read_table(
        path, modalities=MAPPING, target="label", split_column="fold", id_column="id"
    )
    assert bundle.modality_names == ["audio", "clinical"]
    assert bundle.meta["columns"] == {"audio": ["audio-1", "audio-2"], "clinical": ["age", "sex"]}
    assert bundle.meta["feature_names"]["clinical"] == ["age", "sex=f", "sex=m"]
    assert [m.shape for m in bundle.modalities] == [(2,), (3,)]
    assert bundle.task == "classification" and bundle.class_names == ["healthy", "sick"]
    assert [len(bundle.split(s)) for s in SPLITS] == [30, 5, 5]
    assert bundle.test.sample_ids == [f"p{i}" for i in range(35, 40)]
    clinical = bundle.train.arrays["clinical"].numpy()
    np.testing.assert_allclose(clinical[:, 0].mean(), 0.0, atol=1e-5)  # age standardised
    np.testing.assert_array_equal(clinical[:, 1], (np.arange(30) % 3 == 0))  # one-hot kept 0/1


def test_parquet_and_yaml_config_give_the_same_bundle(tmp_path):
    frame = _frame()
    frame.to_parquet(tmp_path / "t.parquet")
    config = tmp_path / "map.yaml"
    config.write_text(
        'target: label\nsplit: fold\nmodalities:\n  clinical: [age, sex]\n  audio: ["audio-*"]\n'
    )
    kwargs = read_table_config(config)
    assert kwargs == {"modalities": MAPPING, "target": "label", "split_column": "fold"}
    from_parquet = read_table(tmp_path / "t.parquet", **kwargs)
    from_csv = read_table(_csv(tmp_path, frame), **kwargs)
    for split in SPLITS:
        for name in from_csv.modality_names:
            torch.testing.assert_close(
                from_parquet.split(split).arrays[name], from_csv.split(split).arrays[name]
            )


def test_missing_values_impute_median_or_mark_modality_missing(tmp_path):
    frame = _frame()
    frame["age"] = np.arange(40, dtype=float)
    frame.loc[3, "age"] = np.nan  # partially missing: sex is still there
    frame.loc[[4, 36], ["age", "sex"]] = np.nan  # the whole modality missing
    frame.loc[5, ["audio-1", "audio-2"]] = np.nan
    bundle = read_table(
        _csv(tmp_path, frame), modalities=MAPPING, target="label", split_column="fold"
    )
    assert bundle.meta["missing"] == {"audio": 1, "clinical": 2}
    train = bundle.train
    assert train[4]["observed"].tolist() == [True, False]
    assert torch.all(train[4]["inputs"]["clinical"] == 0)
    assert train[5]["observed"].tolist() == [False, True]
    assert bundle.test[1]["observed"].tolist() == [True, False]  # row 36
    # Train median of age over the present training rows (0..29 without 3 and 4): 15.5.
    assert bundle.meta["medians"]["clinical"][0] == pytest.approx(15.5)
    mean, std = (bundle.meta["standardization"]["clinical"][k][0] for k in ("mean", "std"))
    assert train[3]["inputs"]["clinical"][0].item() == pytest.approx((15.5 - mean) / std, rel=1e-5)


def test_unseen_category_becomes_all_zero(tmp_path):
    frame = _frame()
    frame.loc[38, "sex"] = "x"
    bundle = read_table(
        _csv(tmp_path, frame), modalities=MAPPING, target="label", split_column="fold"
    )
    assert bundle.test[3]["inputs"]["clinical"][1:].tolist() == [0.0, 0.0]
    assert bundle.test[3]["observed"].tolist() == [True, True]


def test_numeric_targets_generated_split_and_multilabel(tmp_path):
    frame = _frame()
    frame["grade"] = np.arange(40) % 3
    frame["score"] = np.linspace(0, 1, 40)
    frame["tag_a"] = np.arange(40) % 2
    frame["tag_b"] = (np.arange(40) % 5 == 0).astype(int)
    path = _csv(tmp_path, frame)
    graded = read_table(path, modalities=MAPPING, target="grade", seed=1)
    assert graded.task == "classification" and graded.num_outputs == 3
    assert graded.meta["split_generated"] and [len(graded.split(s)) for s in SPLITS] == [28, 6, 6]
    scored = read_table(path, modalities=MAPPING, target="score")
    assert scored.task == "regression"
    tagged = read_table(path, modalities=MAPPING, target=["tag_a", "tag_b"])
    assert tagged.task == "multilabel" and tagged.class_names == ["tag_a", "tag_b"]


@pytest.mark.parametrize(
    ("kwargs", "change", "message"),
    [
        ({"target": "nope"}, None, "target column 'nope' does not exist"),
        ({"modalities": {"a": ["video-*"]}}, None, "modality 'a': column 'video-\\*' matches no"),
        ({"modalities": {"a": ["age"], "b": ["age"]}}, None, "column 'age' belongs to both"),
        ({"modalities": {"a": ["label"]}}, None, "column 'label' is the target"),
        ({"modalities": {}}, None, "option 'modalities' is empty"),
        ({"task": "regression"}, None, "column 'label': holds text but the task is 'regression'"),
        ({}, lambda f: f.assign(label=f["label"].where(f.index != 2)), "column 'label': empty"),
        ({}, lambda f: f.assign(fold="later"), "column 'fold': holds the value 'later'"),
        ({}, lambda f: f.assign(fold="train"), "val split is empty"),
        ({}, lambda f: f.assign(age=np.inf), "column 'age': infinite"),
        ({}, lambda f: f.assign(label="x"), "single class"),
        (
            {},
            lambda f: f.assign(label=np.where(f.index == 33, "rare", f["label"])),
            "class 1 'rare' occurs in the val split but not in train",
        ),
    ],
)
def test_bad_tables_raise_one_clear_data_error(tmp_path, kwargs, change, message):
    frame = _frame()
    if change is not None:
        frame = change(frame)
    path = _csv(tmp_path, frame)
    options = {"modalities": MAPPING, "target": "label", "split_column": "fold", **kwargs}
    with pytest.raises(DataError, match=message) as error:
        read_table(path, **options)
    assert str(error.value).startswith(str(path))


def test_unreadable_tables_and_configs(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv", modalities=MAPPING, target="label")
    other = tmp_path / "t.xlsx"
    other.write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        read_table(other, modalities=MAPPING, target="label")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="cannot be read as a table"):
        read_table(empty, modalities=MAPPING, target="label")
    config = tmp_path / "c.yaml"
    config.write_text("target: label\nmodalities: {a: [x]}\nsplitt: fold\n")
    with pytest.raises(DataError, match="unknown key 'splitt'"):
        read_table_config(config)
    config.write_text("target: label\n")
    with pytest.raises(DataError, match="key 'modalities' is missing"):
        read_table_config(config)
    config.write_text("target: [unclosed\n")
    with pytest.raises(DataError, match="is not valid YAML"):
        read_table_config(config)


# Read to be predicted: target, split and id columns optional, every row in table order.


def test_a_table_without_labels_or_split_is_read_for_prediction_in_order(tmp_path, caplog):
    frame = _frame().drop(columns=["label", "fold"])
    path = _csv(tmp_path, frame)
    options = {"modalities": MAPPING, "target": "label", "split_column": "fold"}
    with pytest.raises(DataError, match="target column 'label' does not exist"):
        read_table(path, **options)
    with pytest.raises(DataError, match=r"has no labels \(target column label absent or empty\)"):
        read_table(path, **options, for_prediction=True)
    bundle = read_table(path, **options, id_column="id", task="classification", for_prediction=True)
    assert [len(bundle.split(s)) for s in SPLITS] == [0, 0, 40]
    assert bundle.test.sample_ids == [f"p{i}" for i in range(40)]
    assert bundle.meta["labelled"] is False and bundle.meta["file_split"] is None
    assert bundle.meta["categories"] == {"sex": ["f", "m"]}
    empty_labels = frame.assign(label=np.nan)
    unlabelled = read_table(
        _csv(tmp_path, empty_labels, "e.csv"), **options, task="regression", for_prediction=True
    )
    assert unlabelled.meta["labelled"] is False
    with caplog.at_level(logging.WARNING):
        positions = read_table(
            path, **options, id_column="patient", task="regression", for_prediction=True
        )
    assert "id column 'patient' does not exist" in caplog.text
    assert positions.test.sample_ids == list(range(40))


def test_a_table_to_predict_keeps_its_labels_split_and_a_run_s_encoding(tmp_path):
    frame = _frame()
    frame["sex"] = "m"  # only one of the run's categories occurs
    frame.loc[3, "age"] = np.nan
    frame["label"] = "sick"  # one class: fine for data to predict
    path = _csv(tmp_path, frame)
    bundle = read_table(
        path,
        modalities=MAPPING,
        target="label",
        split_column="fold",
        categories={"sex": ["f", "m", "x"]},
        medians={"clinical": [70.0, 0.0, 0.0, 0.0]},
        for_prediction=True,
    )
    assert bundle.meta["feature_names"]["clinical"] == ["age", "sex=f", "sex=m", "sex=x"]
    assert bundle.class_names == ["sick"] and bundle.test.targets.tolist() == [0] * 40
    assert bundle.meta["file_split"].tolist() == [0] * 30 + [1] * 5 + [2] * 5
    assert bundle.test.arrays["clinical"][0, 1:].tolist() == [0.0, 1.0, 0.0]
    assert bundle.meta["medians"]["clinical"][0] == pytest.approx(70.0)
    with pytest.raises(DataError, match="column 'label': empty for 1 rows"):
        read_table(
            _csv(tmp_path, frame.assign(label=frame["label"].where(frame.index != 2)), "p.csv"),
            modalities=MAPPING,
            target="label",
            for_prediction=True,
        )
    with pytest.raises(DataError, match="modality 'audio': column 'audio-\\*' matches no column"):
        read_table(
            _csv(tmp_path, frame.drop(columns=["audio-1", "audio-2"]), "q.csv"),
            modalities=MAPPING,
            target="label",
            for_prediction=True,
        )


def _with_malformed_age(n: int = 40):
    frame = _frame(n)
    frame["age"] = frame["age"].round(1).astype(object)
    frame.loc[7, "age"] = "n/a?"
    frame.loc[19, "age"] = "4O"  # a letter O for a zero
    return frame


def test_a_numeric_column_with_a_few_malformed_cells_is_refused_by_name(tmp_path):
    path = _csv(tmp_path, _with_malformed_age())
    with pytest.raises(DataError) as caught:
        read_table(path, modalities=MAPPING, target="label", split_column="fold")
    message = str(caught.value)
    assert "column 'age': 38 numbers but 2 cells that are not (rows 7, 19:" in message
    assert "'n/a?'" in message and "'4O'" in message and "malformed_as_missing" in message


def test_malformed_cells_read_as_missing_values_on_request(tmp_path, caplog):
    path = _csv(tmp_path, _with_malformed_age())
    with caplog.at_level(logging.WARNING):
        bundle = read_table(
            path,
            modalities=MAPPING,
            target="label",
            split_column="fold",
            malformed_as_missing=True,
        )
    assert "column 'age': 2 cells that are not numbers are read as missing values" in caplog.text
    # age stays one numeric feature (plus the two one-hot features of sex), not 40 categories
    assert bundle.meta["feature_names"]["clinical"] == ["age", "sex=f", "sex=m"]


def test_a_text_column_stays_text(tmp_path):
    frame = _frame()
    frame["sex"] = np.where(np.arange(40) % 4 == 0, "12", frame["sex"])  # a quarter are numbers
    bundle = read_table(
        _csv(tmp_path, frame), modalities=MAPPING, target="label", split_column="fold"
    )
    assert bundle.meta["feature_names"]["clinical"] == ["age", "sex=12", "sex=f", "sex=m"]
