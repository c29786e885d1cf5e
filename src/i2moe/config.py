"""Run configuration: dataclasses, YAML in and out, with unknown keys refused.

A YAML file has up to four sections, each a dataclass below::

    data:  {name: mfeat, task: null, options: {}}
    model: {fusion: transformer, dim: 64, ...}      # the architecture: ModelConfig
    train: {epochs: 30, batch_size: 32, ...}
    loss:  {interaction_weight: 0.5, gate_weight: 0.01}

The model and loss dataclasses sit here, below the builders that read them, so every layer
can name a configuration without importing the model.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration file or option is malformed; the message names file, key and form."""


ABLATIONS = (
    "none",
    "no-interaction",
    "latent-contrastive",
    "simple-weight",
    "less-forward",
    "syn-red-only",
)


@dataclass
class ModelConfig:
    """Everything that decides the model's architecture and its interaction training.

    Attributes:
        fusion: registered backbone name (``i2moe.fusion.FUSIONS``).
        fusion_options: keyword options of that backbone's builder.
        vanilla: the backbone alone (no experts, no reweighting).
        dim: embedding width D shared by all modalities.
        num_patches: tokens per vector modality (1 = one vector token).
        encoders: modality name -> encoder name (default by the modality's kind).
        encoder_options: modality name -> encoder keyword options.
        head_hidden / head_layers: each expert's prediction head.
        reweighting_hidden / reweighting_layers / temperature: the reweighting MLP.
        masking: "random", "zero" or "mean" replacement in perturbed passes.
        ablation: one of ABLATIONS (docs/method.md section 6).
        perturb_k: modalities perturbed per step for "less-forward" (or as a speed option).
        execution: "vmap" (fast) or "loop" (reference).
        expert_chunk_size: experts per vmap call; None runs all at once (best on GPU; chunks
            of 2-3 can be faster on CPU at large sizes, docs/benchmarks.md).
        identical_init: start every expert from one initialisation (the authors' code) rather
            than independent initialisations (our default).
        evidence_weight: 0 (default) is the paper's training; above 0 trains the reweighter on
            interaction evidence from the perturbed passes instead of the task loss, so its
            weights name the interaction (our change; ``docs/faithfulness.md``).
        allow_one_modality: train I2MoE on data with one modality (refused by default: with
            nothing to interact with, its uni/syn/red explanation is meaningless).
    """

    fusion: str = "transformer"
    fusion_options: dict[str, Any] = field(default_factory=dict)
    vanilla: bool = False
    dim: int = 32
    num_patches: int = 1
    encoders: dict[str, str] = field(default_factory=dict)
    encoder_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_hidden: int = 64
    head_layers: int = 2
    reweighting_hidden: int = 128
    reweighting_layers: int = 2
    temperature: float = 1.0
    masking: str = "random"
    ablation: str = "none"
    perturb_k: int | None = None
    execution: str = "vmap"
    expert_chunk_size: int | None = None
    identical_init: bool = False
    evidence_weight: float = 0.0
    allow_one_modality: bool = False


@dataclass
class LossConfig:
    """How the training loss weights the model's terms (``i2moe.losses.I2MoELoss``).

    Attributes:
        interaction_weight: lambda_int, the interaction losses' weight (paper, Eq. 4).
        gate_weight: lambda_gate, the sparse backbones' load-balancing loss weight.
    """

    interaction_weight: float = 0.5
    gate_weight: float = 0.01


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
    loggers: where training logs go beside the CSV log (always written): any of "csv",
        "tensorboard", "wandb" (offline), "mlflow" (a file store in the run's logs/).
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
    loggers: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "loss": LossConfig}

# Keys that moved between sections: (old section, old key) -> (new section, new key). Files
# written with the old layout (run folders' config.yaml, user configs) still load.
MOVED_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("model", "interaction_weight"): ("loss", "interaction_weight"),
    ("model", "aux_weight"): ("loss", "gate_weight"),
}


def _move_old_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for (old_section, old_key), (section, key) in MOVED_KEYS.items():
        old = values.get(old_section)
        if not isinstance(old, dict) or old_key not in old:
            continue
        value = old.pop(old_key)
        target = values.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # reported as a malformed section below
        if key in target and target[key] != value:
            raise ConfigError(
                f"{source}: {old_section}.{old_key} ({value}) and {section}.{key} "
                f"({target[key]}) disagree; {old_section}.{old_key} is the old name of "
                f"{section}.{key}: keep one"
            )
        target[key] = value
        log.warning("%s: %s.%s is now %s.%s", source, old_section, old_key, section, key)
    return values


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
        raise ConfigError(f"{source}: expected a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
        )
    values = _move_old_keys(values, source)
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
