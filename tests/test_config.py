"""YAML configs: unknown keys refused, round trip, old key layouts read."""

import pytest

from i2moe.config import ConfigError, RunConfig, load_config, save_config


def test_round_trip(tmp_path):
    config = RunConfig()
    config.model.dim = 24
    config.train.seeds = [1, 2]
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    "text, match",
    [
        ("model:\n  dimension: 3\n", "model: unknown key.*dimension"),
        ("optimiser:\n  lr: 3\n", "unknown section.*optimiser"),
        ("train: 5\n", "expected a mapping"),
        ("model: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as error:
        load_config(path)
    assert str(path) in str(error.value)


def test_loss_weights_in_the_model_section_are_read_as_the_loss_section(tmp_path, caplog):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  dim: 8\n  interaction_weight: 0.2\n  aux_weight: 0.05\n")
    config = load_config(path)
    assert (config.loss.interaction_weight, config.loss.gate_weight) == (0.2, 0.05)
    assert config.model.dim == 8 and not hasattr(config.model, "interaction_weight")
    assert "model.interaction_weight is now loss.interaction_weight" in caplog.text


def test_an_old_and_a_new_key_that_disagree_are_refused(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("model:\n  interaction_weight: 0.2\nloss:\n  interaction_weight: 0.3\n")
    with pytest.raises(ConfigError, match="model.interaction_weight .*loss.interaction_weight"):
        load_config(path)
