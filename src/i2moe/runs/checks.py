"""Checks before anything is written: configuration, data options, model, Trainer, resume.

Every check raises :class:`~i2moe.config.ConfigError` (or ``RunError`` for a run folder) with a
message naming where the value came from (the flag or ``FILE: section.key``), the value and the
expected form, so a mistake is reported before a run folder is touched (docs/reliability.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L

from i2moe.config import ConfigError, RunConfig, config_to_dict
from i2moe.data.base import DataBundle
from i2moe.runs.files import RunError, read_checkpoint
from i2moe.training.loop import LOGGERS, check_loggers, hardware_options, quiet_lightning
from i2moe.training.module import FusionLightningModule

# What may differ between a run and the command that resumes it: the length of training, the
# hardware and how the experts are executed (the same model computed in another order). Everything
# else would silently change the run being continued.
RESUMABLE_FIELDS: tuple[str, ...] = (
    "train.epochs",
    "train.early_stopping",
    "train.accelerator",
    "train.devices",
    "train.strategy",
    "train.num_nodes",
    "train.num_workers",
    "train.loggers",
    "model.execution",
    "model.expert_chunk_size",
)


def _field(origins: Mapping[str, str] | None, name: str) -> str:
    """Where a config field's value came from, for messages: ``--fusion`` or ``FILE: model.x``."""
    origins = origins or {}
    origin = origins.get(name, origins.get("*", "config"))
    return origin if origin.startswith("--") else f"{origin}: {name}"


def check_data_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse a table without its column mapping before reading it.

    Raises:
        ConfigError: ``name`` is a CSV/Parquet table and ``options`` map no columns.
    """
    from i2moe.data.load import TABLE_SUFFIXES

    if Path(name).suffix in TABLE_SUFFIXES and not {"mapping", "modalities"} & set(options):
        raise ConfigError(
            f"{name}: a table needs its column mapping; expected --columns mapping.yaml (or "
            "data.options.mapping in a config; see docs/data-format.md)"
        )


def _positive_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _number(value: Any, *, positive: bool) -> bool:
    """A finite int or float (not a bool), > 0 if ``positive`` else >= 0."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return False
    return value > 0 if positive else value >= 0


def _fail(origins: Mapping[str, str] | None, name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{_field(origins, name)}: {value!r}; expected {expected}")


def check_settings(config: RunConfig, origins: Mapping[str, str] | None = None) -> None:
    """Check the training and model settings that need no data, writing nothing.

    Args:
        config: the run's configuration.
        origins: field (``"model.fusion"``) -> where its value came from (``"--fusion"`` or a
            file); ``"*"`` for the rest. Used to name the field in messages.

    Raises:
        ConfigError: naming the field, the value and the expected form.
    """
    from i2moe.config import ABLATIONS
    from i2moe.encoders import ENCODERS
    from i2moe.execution import EXECUTIONS
    from i2moe.fusion import FUSIONS
    from i2moe.perturbation import STRATEGIES

    train, model = config.train, config.model
    for name in ("epochs", "batch_size"):
        if not _positive_int(getattr(train, name)):
            raise _fail(origins, f"train.{name}", getattr(train, name), "a whole number >= 1")
    seeds = train.seeds
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(_positive_int(s, 0) for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise _fail(
            origins, "train.seeds", seeds, "a non-empty list of different whole numbers >= 0"
        )
    if train.early_stopping is not None and not _positive_int(train.early_stopping):
        raise _fail(
            origins, "train.early_stopping", train.early_stopping, "a patience >= 1 (epochs)"
        )
    chunk = model.expert_chunk_size
    if chunk is not None and not _positive_int(chunk):
        raise _fail(origins, "model.expert_chunk_size", chunk, "a whole number >= 1 or null")
    for name in ("num_workers", "interaction_warmup"):
        if not _positive_int(getattr(train, name), 0):
            raise _fail(origins, f"train.{name}", getattr(train, name), "a whole number >= 0")
    numbers = (
        ("train.lr", train.lr, True),
        ("train.weight_decay", train.weight_decay, False),
        ("loss.interaction_weight", config.loss.interaction_weight, False),
        ("loss.gate_weight", config.loss.gate_weight, False),
        ("model.evidence_weight", model.evidence_weight, False),
        ("model.temperature", model.temperature, True),
    )
    for name, value, positive in numbers:
        if not _number(value, positive=positive):
            expected = "a positive number" if positive else "a number >= 0"
            raise _fail(origins, name, value, expected)
    if not isinstance(train.loggers, list) or not all(isinstance(n, str) for n in train.loggers):
        raise _fail(origins, "train.loggers", train.loggers, f"a list of {', '.join(LOGGERS)}")
    try:
        check_loggers(train.loggers)
    except ValueError as error:
        raise ConfigError(f"{_field(origins, 'train.loggers')}: {error}") from None
    clip = train.gradient_clip
    if clip is not None and not _number(clip, positive=True):
        raise _fail(origins, "train.gradient_clip", clip, "a positive number (a norm) or null")
    if train.regression_loss not in ("mse", "smooth_l1"):
        raise _fail(origins, "train.regression_loss", train.regression_loss, "mse or smooth_l1")

    choices = {
        "model.fusion": (model.fusion, sorted(FUSIONS)),
        "model.masking": (model.masking, list(STRATEGIES)),
        "model.ablation": (model.ablation, list(ABLATIONS)),
        "model.execution": (model.execution, list(EXECUTIONS)),
    }
    for name, (value, valid) in choices.items():
        if value not in valid:
            raise _fail(origins, name, value, f"one of {', '.join(valid)}")
    for name in ("dim", "num_patches", "head_hidden", "head_layers", "reweighting_hidden"):
        if not _positive_int(getattr(model, name)):
            raise _fail(origins, f"model.{name}", getattr(model, name), "a whole number >= 1")
    if not isinstance(model.encoders, dict):
        raise _fail(origins, "model.encoders", model.encoders, "a mapping modality: encoder")
    for modality, encoder in model.encoders.items():
        if encoder not in ENCODERS:
            raise _fail(
                origins,
                f"model.encoders.{modality}",
                encoder,
                f"one of {', '.join(sorted(ENCODERS))}",
            )


def check_model(
    config: RunConfig, bundle: DataBundle, origins: Mapping[str, str] | None = None
) -> None:
    """Check the settings against the data and build the model once, writing nothing, so
    every mistake a builder would find (bad fusion or encoder options) is found before a run
    folder is touched.

    Args:
        config: the run's configuration (already through :func:`check_settings`).
        bundle: its data (the first seed's).
        origins: as for :func:`check_settings`.

    Raises:
        ConfigError: naming the field, the value and the expected form.
    """
    train, model = config.train, config.model
    modalities = bundle.modality_names
    if len(modalities) == 1 and not (model.vanilla or model.allow_one_modality):
        raise ConfigError(
            f"{config.data.name}: has one modality ({modalities[0]}); I2MoE's experts explain "
            "how several modalities interact, so with one its uni/syn/red explanation means "
            "nothing: train the backbone alone with --vanilla, or pass --allow-one-modality "
            "to train I2MoE anyway"
        )
    for name in ("encoders", "encoder_options"):
        unknown = sorted(set(getattr(model, name)) - set(modalities))
        if unknown:
            raise _fail(
                origins,
                f"model.{name}",
                getattr(model, name),
                f"keys among the data's modalities {', '.join(modalities)} (not {unknown[0]})",
            )
    if model.perturb_k is not None and not (
        _positive_int(model.perturb_k) and model.perturb_k <= len(modalities)
    ):
        raise _fail(
            origins, "model.perturb_k", model.perturb_k, f"1 to {len(modalities)} (the modalities)"
        )
    if train.class_weights is not None and bundle.task == "classification":
        weights = train.class_weights
        if not isinstance(weights, list) or len(weights) != bundle.num_outputs:
            raise _fail(
                origins,
                "train.class_weights",
                weights,
                f"a list of {bundle.num_outputs} numbers, one per class",
            )
    try:
        FusionLightningModule.from_config(
            bundle.modalities,
            bundle.task,
            bundle.num_outputs,
            model,
            config.loss,
            lr=train.lr,
            weight_decay=train.weight_decay,
            class_weights=train.class_weights or bundle.class_weights,
            regression_loss=train.regression_loss,
            interaction_warmup=train.interaction_warmup,
        )
    except (KeyError, ValueError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise ConfigError(
            f"{_field(origins, 'model')}: cannot build the model for {bundle.name} ({message}); "
            "expected options the chosen fusion and encoders accept (docs/fusion.md)"
        ) from error


def check_trainer(config: RunConfig, origins: Mapping[str, str] | None = None) -> None:
    """Build a throwaway Trainer with the run's hardware settings, writing nothing.

    Raises:
        ConfigError: Lightning refuses the accelerator, devices, strategy, nodes or precision.
    """
    train = config.train
    try:
        with quiet_lightning():
            L.Trainer(
                **hardware_options(train),
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
    except Exception as error:  # Lightning raises several types for a bad setting
        fields = ("accelerator", "devices", "strategy", "num_nodes", "precision")
        named = [f"train.{name}" for name in fields if f"train.{name}" in (origins or {})]
        settings = ", ".join(f"{name} {getattr(train, name)!r}" for name in fields)
        raise ConfigError(
            f"{_field(origins, named[0] if named else 'train')} ({settings}): "
            f"{str(error).rstrip('.')}; expected "
            "settings this machine supports (e.g. --accelerator cpu)"
        ) from error


def check_resume(config: RunConfig, output: Path) -> None:
    """Check that resuming ``output`` with ``config`` continues the same run.

    Raises:
        RunError: the saved configuration differs in a field outside RESUMABLE_FIELDS,
            or a ``last.ckpt`` to resume from cannot be read.
    """
    from i2moe.config import load_config

    saved_path = output / "config.yaml"
    if saved_path.exists():
        saved, wanted = config_to_dict(load_config(saved_path)), config_to_dict(config)
        differences = [
            f"{section}.{key}: {saved[section].get(key)!r} in the run, "
            f"{wanted[section].get(key)!r} now"
            for section in wanted
            for key in sorted(set(saved[section]) | set(wanted[section]))
            if f"{section}.{key}" not in RESUMABLE_FIELDS
            and saved[section].get(key) != wanted[section].get(key)
        ]
        if differences:
            allowed = ", ".join(RESUMABLE_FIELDS)
            raise RunError(
                f"{saved_path}: --resume with another configuration ({'; '.join(differences[:4])}"
                f"); expected the run's own settings (only {allowed} may change), or "
                "--overwrite to start a new run"
            )
    folders = (
        [output]
        if len(config.train.seeds) == 1
        else [output / f"seed_{seed}" for seed in config.train.seeds]
    )
    for folder in folders:
        last = folder / "checkpoints" / "last.ckpt"
        if last.exists():
            read_checkpoint(last, purpose="resume from")
