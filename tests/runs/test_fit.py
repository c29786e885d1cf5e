"""Tests of ``i2moe.runs.fit``: run folders, checks before writing, checkpoints, resume."""

from __future__ import annotations

import csv
import io
import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import tiny_run_config
from i2moe.config import ConfigError, RunConfig
from i2moe.data.npz import read_npz
from i2moe.runs.checks import check_model, check_resume, check_settings, check_trainer
from i2moe.runs.files import (
    RunError,
    check_output,
    config_text,
    prepare_output,
    read_checkpoint,
    write_atomic,
)
from i2moe.runs.fit import fit_one
from i2moe.training.callbacks import RandomStateCheckpoint, RunCSVLogger
from i2moe.training.loop import EpochShuffleSampler, build_trainer
from i2moe.runs.inference import evaluate_run, load_checkpoint, load_run


def _write_npz(path: Path, num_samples: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(num_samples) % 2
    np.savez(
        path,
        a=rng.normal(size=(num_samples, 3)) + y[:, None],
        b=rng.normal(size=(num_samples, 2)),
        y=y,
    )
    return path


def _tiny_config(data: Path, epochs: int = 1) -> RunConfig:
    return tiny_run_config(data, epochs)


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_atomic(target, "old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_epoch_shuffle_depends_only_on_seed_and_epoch():
    first, second = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    torch.manual_seed(0)
    first.set_epoch(4)
    order = list(first)
    torch.manual_seed(1)  # the global generator plays no part
    second.set_epoch(4)
    assert list(second) == order and sorted(order) == list(range(20))
    second.set_epoch(5)
    assert list(second) != order


def test_random_state_checkpoint_restores_every_generator():
    callback, checkpoint = RandomStateCheckpoint(), {}
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    callback.on_save_checkpoint(None, None, checkpoint)
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    # The saved state must survive a weights-only load (what --resume reads).
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=True)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    callback.on_load_checkpoint(None, None, restored)
    assert torch.equal(torch.rand(3), drawn[0])
    np.testing.assert_array_equal(np.random.rand(3), drawn[1])
    assert random.random() == drawn[2]


def test_check_output_writes_nothing_and_refuses_what_it_must(tmp_path):
    new = tmp_path / "new"
    assert check_output(new, resume=False, overwrite=False) is False
    assert not new.exists()
    with pytest.raises(RunError, match="exclude each other"):
        check_output(new, resume=True, overwrite=True)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(RunError, match="is a file"):
        check_output(a_file, resume=False, overwrite=True)

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(RunError, match="not empty.*--resume.*--overwrite"):
        check_output(run, resume=False, overwrite=False)
    assert check_output(run, resume=True, overwrite=False) is True

    other = tmp_path / "home"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    for flags in ({"resume": True, "overwrite": False}, {"resume": False, "overwrite": True}):
        with pytest.raises(RunError, match="not an i2moe run \\(thesis.tex\\)"):
            prepare_output(other, **flags)
    assert (other / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("marker", ["seed_1/run.json", "row/seed_1/run.json"])
def test_prepare_output_overwrite_replaces_runs_of_several_seeds_or_rows(tmp_path, marker):
    run = tmp_path / "run"
    (run / marker).parent.mkdir(parents=True)
    (run / marker).write_text("{}")
    (run / "summary.csv").write_text("x")
    prepare_output(run, resume=False, overwrite=True)
    assert run.is_dir() and not any(run.iterdir())


@pytest.mark.parametrize(
    ("section", "key", "value", "origin", "expected"),
    [
        ("train", "epochs", 0, "--epochs", "--epochs: 0; expected a whole number >= 1"),
        ("train", "seeds", [1, 1], "--seeds", "--seeds: [1, 1]; expected a non-empty list"),
        ("train", "lr", -1.0, None, "run.yaml: train.lr: -1.0; expected a positive number"),
        (
            "train",
            "interaction_warmup",
            -1,
            "--interaction-warmup",
            "--interaction-warmup: -1; exp",
        ),
        ("train", "regression_loss", "l3", None, "train.regression_loss: 'l3'; expected mse"),
        ("model", "fusion", "nope", "--fusion", "--fusion: 'nope'; expected one of ef, "),
        ("model", "masking", "blur", None, "model.masking: 'blur'; expected one of random"),
        ("model", "dim", "8", "--dim", "--dim: '8'; expected a whole number >= 1"),
        ("model", "encoders", {"a": "nope"}, None, "model.encoders.a: 'nope'; expected one of"),
        ("model", "evidence_weight", -1.0, "--evidence-weight", "--evidence-weight: -1.0; exp"),
        ("loss", "interaction_weight", float("nan"), None, "interaction_weight: nan; expected"),
        ("model", "temperature", 0.0, "--temperature", "--temperature: 0.0; expected a positive"),
        ("train", "gradient_clip", 0.0, "--gradient-clip", "--gradient-clip: 0.0; expected a pos"),
        ("model", "expert_chunk_size", 0, "--expert-chunk-size", "--expert-chunk-size: 0; exp"),
        ("train", "gradient_clip", "1", None, "train.gradient_clip: '1'; expected a positive"),
    ],
)
def test_check_settings_names_the_field_its_origin_and_the_expected_form(
    section, key, value, origin, expected
):
    config = RunConfig()
    setattr(getattr(config, section), key, value)
    origins = {"*": "run.yaml"}
    if origin:
        origins[f"{section}.{key}"] = origin
    with pytest.raises(ConfigError) as caught:
        check_settings(config, origins)
    assert expected in str(caught.value)


def test_check_settings_accepts_the_defaults():
    check_settings(RunConfig())


def test_check_model_checks_against_the_data_and_builds_it(tmp_path):
    bundle = read_npz(_write_npz(tmp_path / "d.npz"))
    config = _tiny_config(tmp_path / "d.npz")
    check_model(config, bundle)
    config.model.encoders = {"zz": "mlp"}
    with pytest.raises(ConfigError, match="keys among the data's modalities a, b \\(not zz\\)"):
        check_model(config, bundle)
    config = _tiny_config(tmp_path / "d.npz")
    config.train.class_weights = [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match="class_weights.*expected a list of 2 numbers"):
        check_model(config, bundle)
    config = _tiny_config(tmp_path / "d.npz")
    config.model.perturb_k = 3
    with pytest.raises(ConfigError, match="perturb_k: 3; expected 1 to 2"):
        check_model(config, bundle)
    config = _tiny_config(tmp_path / "d.npz")
    config.model.fusion_options = {"no_such_option": 1}
    with pytest.raises(ConfigError, match="cannot build the model for d .*no_such_option"):
        check_model(config, bundle, {"*": "run.yaml"})


def test_check_trainer_turns_lightning_refusals_into_config_errors():
    config = RunConfig()
    check_trainer(config)
    config.train.accelerator = "nope"
    with pytest.raises(
        ConfigError, match="--accelerator \\(accelerator 'nope', .*invalid accelerator name"
    ):
        check_trainer(config, {"train.accelerator": "--accelerator"})


class _RunsCode:
    def __reduce__(self):
        return (print, ("a checkpoint must never run code",))


@pytest.mark.parametrize("damage", ["truncated", "foreign", "pickle", "text"])
def test_read_checkpoint_refuses_damaged_and_foreign_files(tmp_path, damage):
    path = tmp_path / "best.ckpt"
    if damage == "truncated":
        torch.save({"hyper_parameters": {}, "state_dict": {"w": torch.ones(1000)}}, path)
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "foreign":
        torch.save({"a": 1}, path)
    elif damage == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": _RunsCode()}))
    else:
        path.write_text("not a checkpoint")
    with pytest.raises(RunError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "expected" in message
    if damage == "foreign":
        assert "not an i2moe checkpoint" in message
    with pytest.raises(RunError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_check_resume_allows_more_epochs_but_not_another_model(tmp_path):
    config = _tiny_config(tmp_path / "d.npz")
    write_atomic(tmp_path / "run" / "config.yaml", config_text(config))
    longer = _tiny_config(tmp_path / "d.npz", epochs=9)
    check_resume(longer, tmp_path / "run")
    chunked = _tiny_config(tmp_path / "d.npz")
    chunked.model.execution, chunked.model.expert_chunk_size = "loop", 2  # how, not what
    check_resume(chunked, tmp_path / "run")
    wider = _tiny_config(tmp_path / "d.npz")
    wider.model.dim = 16
    with pytest.raises(RunError, match="model.dim: 8 in the run, 16 now.*--overwrite"):
        check_resume(wider, tmp_path / "run")
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(RunError, match="last.ckpt: cannot resume from this checkpoint"):
        check_resume(config, tmp_path / "run")


def test_run_csv_logger_continues_the_log_of_a_resumed_run(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with (logs / "metrics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", "step", "val/loss"])
        writer.writeheader()
        writer.writerows({"epoch": e, "step": 2 * e, "val/loss": 1.0 / (e + 1)} for e in range(4))
    logger = RunCSVLogger(tmp_path, resume_epoch=1)  # the checkpoint had finished epoch 1
    logger.log_metrics({"epoch": 2, "train/loss": 0.5}, step=4)
    logger.save()
    with (logs / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["val/loss"] == "1.0" and rows[2]["train/loss"] == "0.5"


def test_a_new_run_starts_a_fresh_log(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text("epoch,step\n7,7\n")
    logger = RunCSVLogger(tmp_path)
    logger.log_metrics({"epoch": 0}, step=0)
    logger.save()
    assert "7,7" not in (tmp_path / "logs" / "metrics.csv").read_text()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-epoch run (no interpretation) with early stopping, written by ``fit_one``."""
    folder = tmp_path_factory.mktemp("tiny_run")
    data = _write_npz(folder / "d.npz")
    config = _tiny_config(data, epochs=3)
    config.train.early_stopping = 5
    config.train.interaction_warmup = 2
    run = folder / "run"
    run.mkdir()
    metrics = fit_one(config, run, 0, progress=False, interpret=False)
    return run, metrics


def test_fit_one_saves_last_after_every_epoch_and_metrics_last(tiny_run):
    run, metrics = tiny_run
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    # last.ckpt is the final epoch even when the best epoch came earlier.
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2
    assert "i2moe_random_state" in last
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    epochs = {row["epoch"] for row in csv.DictReader((run / "logs" / "metrics.csv").open())}
    assert {"0", "1", "2"} <= epochs  # (the final validate and test log one more)


def test_gradient_clip_reaches_the_trainer(tmp_path):
    config = RunConfig()
    trainer, _ = build_trainer(config.train, tmp_path, "val/loss", "min", progress=False)
    assert trainer.gradient_clip_val is None
    config.train.gradient_clip = 0.5
    trainer, _ = build_trainer(config.train, tmp_path, "val/loss", "min", progress=False)
    assert (trainer.gradient_clip_val, trainer.gradient_clip_algorithm) == (0.5, "norm")


def test_interaction_losses_join_after_the_warmup_epochs(tiny_run):
    run, _ = tiny_run
    config = load_run(run)[1]
    rows = csv.DictReader((run / "logs" / "metrics.csv").open())
    weights = {
        r["epoch"]: float(r["train/interaction_weight"])
        for r in rows
        if r.get("train/interaction_weight")
    }
    assert weights == {"0": 0.0, "1": 0.0, "2": config.loss.interaction_weight}
    assert config.loss.interaction_weight > 0


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
