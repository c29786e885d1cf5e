"""``i2moe predict`` end to end: every row of a file predicted once, in file order, with or
without labels and split (``docs/predictions.md``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from helpers import write_npz
from i2moe.cli import main
from i2moe.runs.loading import load_run, run_data
from i2moe.runs.prediction import (
    PredictionRows,
    check_prediction_output,
    prediction_frames,
    write_prediction_rows,
)

pytestmark = pytest.mark.slow

TINY = ["--epochs", "1", "--dim", "8"]


def _fit(data, run, *flags) -> None:
    assert main(["--quiet", "fit", "--data", str(data), "--output", str(run), *TINY, *flags]) == 0


def _predict(run, data, output, *flags) -> pd.DataFrame:
    args = ["--quiet", "predict", "--run", str(run), "--data", str(data), "--output", str(output)]
    assert main([*args, *flags]) == 0
    return pd.read_parquet(output) if output.suffix == ".parquet" else pd.read_csv(output)


def _attr_weight_observed(modalities, experts=None) -> list[str]:
    experts = experts or [f"uni_{m}" for m in modalities] + ["syn", "red"]
    interactions = [f"uni_{m}" for m in modalities] + ["syn", "red"]
    return (
        [f"attr_{name}" for name in interactions]
        + [f"weight_{name}" for name in experts]
        + [f"observed_{m}" for m in modalities]
    )


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    """An I2MoE run (two classes, modalities a [3] and b [2]) and its training arrays."""
    folder = tmp_path_factory.mktemp("npz_run")
    data = write_npz(folder / "train.npz")
    _fit(data, folder / "run")
    return folder / "run", dict(np.load(data))


def test_an_unlabelled_npz_is_predicted_once_per_row_in_file_order(npz_run, tmp_path):
    run, arrays = npz_run
    order = np.random.default_rng(1).permutation(60)
    ids = np.array([f"s{i}" for i in order])
    np.savez(tmp_path / "new.npz", a=arrays["a"][order], b=arrays["b"][order], ids=ids)
    new = _predict(run, tmp_path / "new.npz", tmp_path / "new.csv")
    columns = ["id", "prediction", "prob_0", "prob_1", *_attr_weight_observed(["a", "b"])]
    assert list(new.columns) == columns
    assert new["id"].tolist() == ids.tolist()
    np.testing.assert_allclose(new[["prob_0", "prob_1"]].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(new.filter(like="weight_").sum(axis=1), 1.0, rtol=1e-5)
    # The same rows with their labels: the same predictions, the labels carried along.
    labelled = _predict(run, run.parent / "train.npz", tmp_path / "train.csv")
    assert labelled["id"].tolist() == list(range(60))
    assert labelled["target"].tolist() == arrays["y"].tolist()
    # The run's own data is read as the run read it: its split is the run's.
    sizes = json.loads((run / "run.json").read_text())["split_sizes"]
    assert labelled["split"].value_counts().to_dict() == sizes
    test_rows = labelled[labelled["split"] == "test"].reset_index(drop=True)
    written = pd.read_csv(run / "predictions.csv")
    pd.testing.assert_frame_equal(test_rows, written, check_exact=False, atol=1e-6)
    same = labelled.iloc[order].reset_index(drop=True)
    for column in ("prob_1", "attr_syn", "weight_syn"):
        np.testing.assert_allclose(new[column], same[column], atol=1e-6)


def test_a_file_with_a_split_is_predicted_whole(npz_run, tmp_path):
    run, arrays = npz_run
    split = np.array([2, 0, 1] * 20)
    np.savez(tmp_path / "split.npz", **arrays, split=split)
    frame = _predict(run, tmp_path / "split.npz", tmp_path / "split.csv")
    assert len(frame) == 60 and frame["id"].tolist() == list(range(60))
    assert list(frame.columns[:4]) == ["id", "split", "sample", "prediction"]
    assert frame["split"].tolist() == [["train", "val", "test"][code] for code in split]
    assert frame.loc[frame["split"] == "val", "sample"].tolist() == list(range(20))


def test_batches_smaller_than_the_file_and_parquet_give_the_same_rows(npz_run, tmp_path):
    run, _ = npz_run
    data = run.parent / "train.npz"
    whole = _predict(run, data, tmp_path / "whole.csv")
    batched = _predict(run, data, tmp_path / "batched.parquet", "--batch-size", "7")
    assert list(batched.columns) == list(whole.columns)
    assert batched["id"].tolist() == whole["id"].tolist()
    numbers = whole.select_dtypes("number").columns
    np.testing.assert_allclose(batched[numbers], whole[numbers], atol=1e-6)
    assert batched["observed_a"].dtype == bool


def test_rows_with_missing_modalities_are_predicted_from_the_others(npz_run, tmp_path):
    run, arrays = npz_run
    b = arrays["b"].copy()
    b[[3, 4]] = np.nan
    observed_a = np.arange(60) != 10
    np.savez(tmp_path / "gaps.npz", a=arrays["a"], b=b, observed_a=observed_a)
    frame = _predict(run, tmp_path / "gaps.npz", tmp_path / "gaps.csv")
    assert np.flatnonzero(~frame["observed_b"]).tolist() == [3, 4]
    assert np.flatnonzero(~frame["observed_a"]).tolist() == [10]
    assert np.isfinite(frame.select_dtypes("number").to_numpy()).all()


def test_an_unlabelled_csv_is_predicted_with_a_column_mapping(npz_run, tmp_path):
    run, arrays = npz_run
    table = pd.DataFrame(
        {
            "pid": [f"p{i}" for i in range(60)],
            **{f"a_{j}": arrays["a"][:, j] for j in range(3)},
            **{f"b_{j}": arrays["b"][:, j] for j in range(2)},
        }
    )
    table.to_csv(tmp_path / "new.csv", index=False)
    mapping = tmp_path / "columns.yaml"
    mapping.write_text("target: y\nid: pid\nmodalities:\n  a: ['a_*']\n  b: ['b_*']\n")
    flags = ["--columns", str(mapping)]
    frame = _predict(run, tmp_path / "new.csv", tmp_path / "out.csv", *flags)
    assert frame["id"].tolist() == table["pid"].tolist() and "target" not in frame
    # Scaled with the run's statistics: the predictions of the same rows as an .npz.
    as_npz = _predict(run, run.parent / "train.npz", tmp_path / "npz.csv")
    np.testing.assert_allclose(frame["prob_1"], as_npz["prob_1"], atol=1e-6)


def test_fit_writes_predictions_csv_with_the_same_columns(npz_run):
    run, _ = npz_run
    predictions = pd.read_csv(run / "predictions.csv")
    head = ["id", "split", "sample", "prediction", "prob_0", "prob_1", "target"]
    assert list(predictions.columns) == head + _attr_weight_observed(["a", "b"])
    assert set(predictions["split"]) == {"test"}
    assert predictions["sample"].tolist() == list(range(len(predictions)))
    attribution = pd.read_csv(run / "interpretation" / "attribution.csv")
    for name in ("uni_a", "uni_b", "syn", "red"):
        np.testing.assert_allclose(predictions[f"attr_{name}"], attribution[name], atol=1e-6)
    weights = pd.read_csv(run / "interpretation" / "weights.csv")
    assert list(weights.columns) == ["sample", "uni_a", "uni_b", "syn", "red"]
    np.testing.assert_allclose(weights["syn"], predictions["weight_syn"], atol=1e-6)


def test_without_attribution_or_the_run_s_training_data(npz_run, tmp_path, capsys):
    run, _ = npz_run
    data = run.parent / "train.npz"
    frame = _predict(run, data, tmp_path / "plain.csv", "--no-attribution")
    assert not any(column.startswith("attr_") for column in frame)
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    config = yaml.safe_load((moved / "config.yaml").read_text())
    config["data"]["name"] = str(tmp_path / "gone.npz")
    (moved / "config.yaml").write_text(yaml.safe_dump(config))
    args = ["predict", "--run", str(moved), "--data", str(data), "--output"]
    assert main([*args, str(tmp_path / "moved.csv")]) == 0
    warning = capsys.readouterr().err
    assert f"{moved}: the attr_ columns are left out" in warning and "gone.npz" in warning
    moved_frame = pd.read_csv(tmp_path / "moved.csv")
    assert len(moved_frame) == 60 and not any(c.startswith("attr_") for c in moved_frame)
    assert "weight_syn" in moved_frame
    _predict(moved, data, tmp_path / "moved.csv", "--no-attribution")
    assert "left out" not in capsys.readouterr().err


def _bad_files(arrays):
    return {
        "extra": ({**arrays, "c": arrays["b"]}, "array 'c' is not a modality of the run"),
        "shape": ({**arrays, "a": arrays["b"]}, "array 'a' has the per-sample shape [2]"),
        "missing": ({"a": arrays["a"]}, "the run's modality 'b' is missing"),
        "class": ({**arrays, "y": np.arange(60) % 3}, "the labels hold the class id 2"),
    }


@pytest.mark.parametrize("case", ["extra", "shape", "missing", "class"])
def test_data_that_does_not_fit_the_run_is_refused_and_nothing_is_lost(
    npz_run, tmp_path, capsys, case
):
    run, arrays = npz_run
    bad, message = _bad_files(arrays)[case]
    np.savez(tmp_path / "bad.npz", **bad)
    output = tmp_path / "out.csv"
    output.write_text("earlier predictions\n")
    args = ["predict", "--run", str(run), "--data", str(tmp_path / "bad.npz")]
    assert main([*args, "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert f"i2moe predict: error: {tmp_path / 'bad.npz'}:" in error and message in error
    assert output.read_text() == "earlier predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "out.csv"]


def test_unsupported_outputs_are_refused_before_anything_is_read(npz_run, tmp_path, capsys):
    run, _ = npz_run
    data = run.parent / "train.npz"
    args = ["predict", "--run", str(run), "--data", str(data), "--output"]
    assert main([*args, str(tmp_path / "out.xlsx")]) == 2
    assert "out.xlsx: unsupported output type '.xlsx'; expected" in capsys.readouterr().err
    assert main([*args, str(tmp_path)]) == 2
    assert "unsupported output type" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    table = tmp_path / "rows.csv"
    table.write_text("a,b\n1,2\n")
    own = ["predict", "--run", str(run), "--data", str(table), "--output", str(table)]
    assert main(own) == 2
    assert "rows.csv: is the data file being predicted" in capsys.readouterr().err
    assert table.read_text() == "a,b\n1,2\n"
    with pytest.raises(SystemExit):
        main([*args, str(tmp_path / "out.csv"), "--batch-size", "0"])


def test_a_table_run_predicts_a_table_without_labels_split_or_some_categories(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 80
    frame = pd.DataFrame(
        {
            "patient": [f"p{i}" for i in range(n)],
            "age": rng.normal(50, 10, n),
            "site": rng.choice(["north", "south", "west"], n),
            "signal_1": rng.normal(size=n),
            "signal_2": rng.normal(size=n),
            "fold": ["train"] * 56 + ["val"] * 12 + ["test"] * 12,
        }
    )
    frame["outcome"] = np.where(frame["signal_1"] > 0, "high", "low")
    frame.to_csv(tmp_path / "train.csv", index=False)
    mapping = tmp_path / "columns.yaml"
    mapping.write_text(
        "target: outcome\nsplit: fold\nid: patient\n"
        "modalities:\n  clinical: [age, site]\n  signal: ['signal_*']\n"
    )
    run = tmp_path / "run"
    _fit(tmp_path / "train.csv", run, "--columns", str(mapping))
    new = frame.drop(columns=["outcome", "fold"]).iloc[:9].assign(site="west")
    new.loc[[2, 5], ["signal_1", "signal_2"]] = np.nan
    new.to_parquet(tmp_path / "new.parquet")
    predicted = _predict(run, tmp_path / "new.parquet", tmp_path / "new.csv")
    assert predicted["id"].tolist() == new["patient"].tolist()
    assert list(predicted.columns[:4]) == ["id", "prediction", "prob_high", "prob_low"]
    assert np.flatnonzero(~predicted["observed_signal"]).tolist() == [2, 5]
    assert set(predicted["prediction"]) <= {"high", "low"}
    labelled = _predict(run, tmp_path / "train.csv", tmp_path / "train_out.csv")
    assert labelled["target"].tolist() == frame["outcome"].tolist()
    assert labelled["split"].tolist() == frame["fold"].tolist()
    # The run's categories encode the new rows: the same input as the training file's rows.
    same_rows = frame.iloc[:9].assign(site="west")
    same_rows.loc[[2, 5], ["signal_1", "signal_2"]] = np.nan
    same_rows.to_csv(tmp_path / "same.csv", index=False)
    again = _predict(run, tmp_path / "same.csv", tmp_path / "same_out.csv")
    np.testing.assert_allclose(again["prob_high"], predicted["prob_high"], atol=1e-6)
    new.drop(columns=["signal_1", "signal_2"]).to_csv(tmp_path / "short.csv", index=False)
    args = ["predict", "--run", str(run), "--data", str(tmp_path / "short.csv")]
    assert main([*args, "--output", str(tmp_path / "short_out.csv")]) == 2
    assert "short.csv: modality 'signal': column 'signal_*' matches no column" in (
        capsys.readouterr().err
    )


def _task_file(path, task):
    rng = np.random.default_rng(0)
    n = 60
    arrays = {"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 2))}
    if task == "multilabel":
        arrays["y"] = np.stack([np.arange(n) % 2, np.arange(n) % 3 == 0], axis=1).astype(int)
        arrays["class_names"] = np.array(["cat", "dog"])
    else:
        arrays["y"] = arrays["a"][:, 0] + rng.normal(size=n) * 0.1
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_the_columns_of_multilabel_and_regression_runs(tmp_path, task):
    arrays = _task_file(tmp_path / "d.npz", task)
    _fit(tmp_path / "d.npz", tmp_path / "run")
    np.savez(tmp_path / "new.npz", a=arrays["a"], b=arrays["b"])
    unlabelled = _predict(tmp_path / "run", tmp_path / "new.npz", tmp_path / "new.csv")
    labelled = _predict(tmp_path / "run", tmp_path / "d.npz", tmp_path / "d.csv")
    rest = _attr_weight_observed(["a", "b"])
    split = ["split", "sample"]  # the run's own data: its split
    if task == "multilabel":
        head = ["prob_cat", "pred_cat", "prob_dog", "pred_dog"]
        assert list(unlabelled.columns) == ["id", *head, *rest]
        assert list(labelled.columns) == ["id", *split, *head, "target_cat", "target_dog", *rest]
        assert labelled["target_dog"].tolist() == arrays["y"][:, 1].tolist()
    else:
        assert list(unlabelled.columns) == ["id", "prediction", *rest]
        assert list(labelled.columns) == ["id", *split, "prediction", "target", *rest]
        np.testing.assert_allclose(labelled["target"], arrays["y"], rtol=1e-6)
    # The weights method for these tasks: the attribution is the weights.
    np.testing.assert_allclose(unlabelled["attr_syn"], unlabelled["weight_syn"], atol=1e-6)


def test_a_vanilla_run_has_no_attribution_or_weights(tmp_path):
    write_npz(tmp_path / "d.npz")
    _fit(tmp_path / "d.npz", tmp_path / "run", "--vanilla", "--fusion", "lf")
    frame = _predict(tmp_path / "run", tmp_path / "d.npz", tmp_path / "out.csv")
    head = ["id", "split", "sample", "prediction", "prob_0", "prob_1", "target"]
    assert list(frame.columns) == [*head, "observed_a", "observed_b"]
    written = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(written.columns) == list(frame.columns)


def test_prediction_rows_are_written_whole_or_not_at_all(tmp_path):
    frames = [pd.DataFrame({"id": [0, 1], "p": [0.5, 0.25]}), pd.DataFrame({"id": [2], "p": [1.0]})]
    assert write_prediction_rows(iter(frames), tmp_path / "out.csv") == 3
    assert (tmp_path / "out.csv").read_text() == "id,p\n0,0.5\n1,0.25\n2,1.0\n"
    assert write_prediction_rows(iter(frames), tmp_path / "out.parquet") == 3
    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups == 2
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "out.parquet"), pd.concat(frames, ignore_index=True)
    )

    def failing():
        yield frames[0]
        raise RuntimeError("the model failed")

    for name in ("out.csv", "out.parquet"):
        before = (tmp_path / name).read_bytes()
        with pytest.raises(RuntimeError, match="the model failed"):
            write_prediction_rows(failing(), tmp_path / name)
        assert (tmp_path / name).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.parquet"]


def test_prediction_outputs_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"out\.json: unsupported output type '\.json'"):
        check_prediction_output(tmp_path / "out.json")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        check_prediction_output(tmp_path / "folder.csv")
    (tmp_path / "rows.csv").write_text("a\n1\n")
    with pytest.raises(ValueError, match="is the data file being predicted"):
        check_prediction_output(tmp_path / "rows.csv", str(tmp_path / "rows.csv"))
    check_prediction_output(tmp_path / "new.parquet", str(tmp_path / "rows.csv"))


def test_fit_s_predictions_carry_ids_split_attribution_and_weights(tiny_run):
    run, _ = tiny_run
    predictions = pd.read_csv(run / "predictions.csv")
    assert list(predictions.columns[:7]) == [
        "id",
        "split",
        "sample",
        "prediction",
        "prob_0",
        "prob_1",
        "target",
    ]
    module, config, info = load_run(run)
    test = run_data(config, info, None).test
    assert predictions["id"].tolist() == test.sample_ids
    attribution = predictions.filter(like="attr_")
    assert list(attribution.columns) == ["attr_uni_a", "attr_uni_b", "attr_syn", "attr_red"]
    np.testing.assert_allclose(attribution.sum(axis=1), 1.0, rtol=1e-5)


def test_prediction_frames_refuse_bad_options(tiny_run):
    run, _ = tiny_run
    module, config, info = load_run(run)
    test = run_data(config, info, None).test
    rows = PredictionRows(sample_ids=test.sample_ids)
    with pytest.raises(ValueError, match="batch size 0"):
        next(prediction_frames(module, test, rows, batch_size=0))
    with pytest.raises(ValueError, match="needs the run's training split"):
        next(prediction_frames(module, test, rows, method="rule"))
