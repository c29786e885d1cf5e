"""Tests of ``i2moe.runs.checks``: everything checked before a run folder is touched."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import tiny_run_config, write_npz
from i2moe.config import ConfigError, RunConfig
from i2moe.data.npz import read_npz
from i2moe.runs.checks import check_model, check_resume, check_settings, check_trainer
from i2moe.runs.files import (
    RunError,
    config_text,
    write_atomic,
)


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
        ("train", "loggers", ["neptune"], "--logger", "--logger: unknown logger 'neptune'"),
        ("train", "loggers", "csv", None, "train.loggers: 'csv'; expected a list of csv,"),
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
    bundle = read_npz(write_npz(tmp_path / "d.npz"))
    config = tiny_run_config(tmp_path / "d.npz")
    check_model(config, bundle)
    config.model.encoders = {"zz": "mlp"}
    with pytest.raises(ConfigError, match="keys among the data's modalities a, b \\(not zz\\)"):
        check_model(config, bundle)
    config = tiny_run_config(tmp_path / "d.npz")
    config.train.class_weights = [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match="class_weights.*expected a list of 2 numbers"):
        check_model(config, bundle)
    config = tiny_run_config(tmp_path / "d.npz")
    config.model.perturb_k = 3
    with pytest.raises(ConfigError, match="perturb_k: 3; expected 1 to 2"):
        check_model(config, bundle)
    config = tiny_run_config(tmp_path / "d.npz")
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


def test_check_resume_allows_more_epochs_but_not_another_model(tmp_path):
    config = tiny_run_config(tmp_path / "d.npz")
    write_atomic(tmp_path / "run" / "config.yaml", config_text(config))
    longer = tiny_run_config(tmp_path / "d.npz", epochs=9)
    check_resume(longer, tmp_path / "run")
    chunked = tiny_run_config(tmp_path / "d.npz")
    chunked.model.execution, chunked.model.expert_chunk_size = "loop", 2  # how, not what
    check_resume(chunked, tmp_path / "run")
    wider = tiny_run_config(tmp_path / "d.npz")
    wider.model.dim = 16
    with pytest.raises(RunError, match="model.dim: 8 in the run, 16 now.*--overwrite"):
        check_resume(wider, tmp_path / "run")
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(RunError, match="last.ckpt: cannot resume from this checkpoint"):
        check_resume(config, tmp_path / "run")


def test_one_modality_is_refused_unless_vanilla_or_allowed(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, a=np.random.default_rng(0).normal(size=(40, 3)), y=np.arange(40) % 2)
    bundle = read_npz(path)
    config = tiny_run_config(path)
    with pytest.raises(ConfigError, match=r"one modality \(a\).*--vanilla.*--allow-one-modality"):
        check_model(config, bundle)
    config.model.vanilla = True
    check_model(config, bundle)
    config.model.vanilla, config.model.allow_one_modality = False, True
    check_model(config, bundle)
