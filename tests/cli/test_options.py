"""The training commands' options: flags over the YAML file over the defaults."""

from i2moe.cli import build_parser
from i2moe.cli.options import resolve_config
from i2moe.config import RunConfig


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


def test_the_interaction_weight_flag_sets_the_loss_section():
    args = build_parser().parse_args(["fit", "--output", "x", "--interaction-weight", "0.1"])
    assert resolve_config(args).loss.interaction_weight == 0.1
