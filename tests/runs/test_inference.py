"""Tests of ``i2moe.runs.inference``: loading a finished run, evaluating and predicting with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from i2moe.runs.evaluation import evaluate_run
from i2moe.runs.files import (
    RunError,
)
from i2moe.runs.loading import load_checkpoint, load_run, run_data
from i2moe.runs.prediction import (
    PredictionRows,
    check_prediction_output,
    prediction_frames,
    write_prediction_rows,
)


def test_load_run_and_evaluate_run_read_the_folder(tiny_run):
    run, metrics = tiny_run
    module, config, info = load_run(run)
    assert not module.training and config.train.seeds == [0]
    assert [m["name"] for m in info["modalities"]] == ["a", "b"]
    again = evaluate_run(run, split="test")
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert load_checkpoint(run / "checkpoints" / "best.ckpt").num_outputs == 2


def test_load_run_errors_name_the_file(tiny_run, tmp_path):
    run, _ = tiny_run
    with pytest.raises(RunError, match="no such folder"):
        load_run(tmp_path / "nothing")
    (tmp_path / "seeds" / "seed_3").mkdir(parents=True)
    (tmp_path / "seeds" / "seed_3" / "config.yaml").write_text("{}")
    with pytest.raises(RunError, match="holds several seeds; name one of them"):
        load_run(tmp_path / "seeds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        load_run(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.yaml", "run.json"):
        (broken / name).write_bytes((run / name).read_bytes())
    (broken / "metrics.json").write_text('{"val": ')
    with pytest.raises(RunError, match="metrics.json: cannot be read"):
        load_run(broken)
    (broken / "run.json").unlink()
    with pytest.raises(RunError, match="run.json: missing"):
        load_run(broken)


def test_evaluating_other_data_needs_the_run_s_modalities(tiny_run, tmp_path):
    run, _ = tiny_run
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros((40, 3)), c=np.zeros((40, 2)), y=np.arange(40) % 2)
    with pytest.raises(RunError, match="other.npz: has the modalities .*expected the run's"):
        evaluate_run(run, data=str(other))


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


def test_labels_of_data_to_predict_must_be_the_run_s(tiny_run, tmp_path):
    run, _ = tiny_run
    _, config, info = load_run(run)
    rng = np.random.default_rng(0)
    inputs = {"a": rng.normal(size=(5, 3)), "b": rng.normal(size=(5, 2))}
    np.savez(tmp_path / "one_class.npz", **inputs, y=np.ones(5, dtype=int))
    bundle = run_data(config, info, str(tmp_path / "one_class.npz"), for_prediction=True)
    assert bundle.meta["labelled"] and len(bundle.test) == 5
    np.savez(tmp_path / "three.npz", **inputs, y=np.arange(5) % 3)
    with pytest.raises(RunError, match=r"three\.npz: the labels hold the class id 2; expected"):
        run_data(config, info, str(tmp_path / "three.npz"), for_prediction=True)
    np.savez(tmp_path / "narrow.npz", a=inputs["a"][:, :2], b=inputs["b"])
    with pytest.raises(RunError, match="array 'a' has the per-sample shape \\[2\\]; the run's"):
        run_data(config, info, str(tmp_path / "narrow.npz"), for_prediction=True)


def test_prediction_frames_refuse_bad_options(tiny_run):
    run, _ = tiny_run
    module, config, info = load_run(run)
    test = run_data(config, info, None).test
    rows = PredictionRows(sample_ids=test.sample_ids)
    with pytest.raises(ValueError, match="batch size 0"):
        next(prediction_frames(module, test, rows, batch_size=0))
    with pytest.raises(ValueError, match="needs the run's training split"):
        next(prediction_frames(module, test, rows, method="rule"))
