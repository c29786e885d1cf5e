"""Run configuration: dataclasses, YAML in and out, with unknown keys refused.

A YAML file has up to three sections, each a dataclass below::

    data:  {name: mfeat, task: null, options: {}}
    model: {fusion: transformer, dim: 64, ...}      # i2moe.builders.ModelConfig
    train: {epochs: 30, batch_size: 32, ...}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from i2moe.builders import ModelConfig


class ConfigError(ValueError):
    """A configuration file or option is malformed; the message names file, key and form."""


@dataclass
class DataConfig:
    """Attributes:
    name: a bundled dataset name, a path to a .npz / .csv / .parquet file, or
        ``paper:<dataset>:<folder>`` for the paper's datasets (docs/reproduce.md).
    task: force the task ("classification", "multilabel", "regression"); inferred if None.
    options: keyword options of the reader (e.g. a table's column mapping).
    """

    name: str = "mfeat"
    task: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Attributes:
    epochs / batch_size / lr / weight_decay: optimisation (Adam, no scheduler, as the paper).
    seeds: one run per seed; a list of several writes a mean +- std table.
    early_stopping: stop after this many epochs without a better validation metric.
    accelerator / devices / strategy / precision / num_nodes: passed to Lightning's Trainer.
    num_workers: data-loader worker processes.
    class_weights: cross-entropy class weights (classification).
    regression_loss: "mse" or "smooth_l1".
    deterministic: True, False or "warn" (Lightning's values): deterministic algorithms.
    interaction_warmup: epochs trained on the task loss alone (lambda_int 0) before the
        interaction losses join; 0 (default) is the paper's training. Not in the paper: the
        interaction losses from the first step keep a model from learning parity-like synergy
        of 3 or more modalities (docs/faithfulness.md).
    gradient_clip: clip the global norm of the gradients to this value before every optimizer
        step (Lightning's ``gradient_clip_val``, norm algorithm); None (default) does not clip.
        The authors clip ENRICO's gradients to 1.0.
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    seeds: list[int] = field(default_factory=lambda: [0])
    early_stopping: int | None = None
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_nodes: int = 1
    num_workers: int = 0
    class_weights: list[float] | None = None
    regression_loss: str = "mse"
    deterministic: bool | str = True
    interaction_warmup: int = 0
    gradient_clip: float | None = None


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _section(cls: type, values: Any, where: str) -> Any:
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
        )
    return cls(**values)


def config_from_dict(values: dict[str, Any], source: str = "config") -> RunConfig:
    """Build a RunConfig, refusing unknown sections and keys."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping with sections data/model/train")
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join(unknown)}; valid: data, model, train"
        )
    return RunConfig(
        **{
            name: _section(cls, values.get(name), f"{source}: {name}")
            for name, cls in SECTIONS.items()
        }
    )


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML run configuration."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    return config_from_dict(values, str(path))


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
