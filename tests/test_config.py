"""YAML configs: unknown keys refused, round trip, flags over file over defaults."""

import pytest

from i2moe.cli import build_parser
from i2moe.cli.options import resolve_config
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


def test_flags_override_file_which_overrides_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  dim: 24\n  fusion: lf\ntrain:\n  epochs: 7\n")
    args = build_parser().parse_args(
        ["fit", "--output", "x", "--config", str(path), "--epochs", "2", "--seed", "5"]
    )
    config = resolve_config(args)
    assert config.model.dim == 24 and config.model.fusion == "lf"  # file
    assert config.train.epochs == 2 and config.train.seeds == [5]  # flags
    assert config.train.batch_size == RunConfig().train.batch_size  # default
