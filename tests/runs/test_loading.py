"""Tests of ``i2moe.runs.loading`` and ``i2moe.runs.evaluation``: a finished run read back, new
data checked against it, its metrics."""

from __future__ import annotations

import numpy as np
import pytest

from i2moe.runs.evaluation import evaluate_run
from i2moe.runs.files import (
    RunError,
)
from i2moe.runs.loading import load_checkpoint, load_run, run_data


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
