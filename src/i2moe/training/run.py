"""Runs: fit a model into a run folder, test it again, predict with it.

A run folder holds ``config.yaml`` (the resolved configuration), ``run.json`` (the data's
modalities, task and classes), ``checkpoints/`` (``best.ckpt``, ``last.ckpt``), ``metrics.json``
(``{"val": {...}, "test": {...}}``), ``predictions.csv`` for the test split,
``interpretation/weights.csv``, and ``logs/``. With several seeds, each seed has such a folder
``seed_<s>/`` and the top folder holds ``summary.csv`` / ``summary.md`` (mean +- std).

Reliability (``docs/reliability.md``): everything a run needs (configuration, data, model,
Trainer settings, the folder) is checked before anything is written, so a mistake never damages
an existing run; checkpoints and result files are written atomically and ``metrics.json`` last,
so it marks a finished run; ``--resume`` continues a killed run exactly where its last
checkpoint left it (same metrics as an uninterrupted run on CPU).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import yaml
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from torch.utils.data import DataLoader, Dataset, Sampler

from i2moe.config import ConfigError, RunConfig, TrainConfig, config_to_dict
from i2moe.data.base import DataBundle
from i2moe.data.load import load_data
from i2moe.model import I2MoE
from i2moe.training.metrics import selection_metric
from i2moe.training.module import FusionTask, task_from_config

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run folder cannot be used as asked (exists already, missing, or damaged)."""


# A run's data description, written first by every run: a folder holding one (itself, in a
# seed folder ``seed_<s>/``, or in a comparison's ``<row>/seed_<s>/``) holds runs.
RUN_MARKERS: tuple[str, ...] = ("run.json", "seed_*/run.json", "*/seed_*/run.json")
# What may differ between a run and the command that resumes it: the length of training and
# the hardware. Everything else would silently change the run being continued.
RESUMABLE_TRAIN_FIELDS: tuple[str, ...] = (
    "epochs",
    "early_stopping",
    "accelerator",
    "devices",
    "strategy",
    "num_nodes",
    "num_workers",
)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place, so a
    killed process leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _config_text(config: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it into place, so a killed run
    never leaves a half-written checkpoint for ``--resume`` to load."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


class EpochShuffleSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = state
    keys = torch.from_numpy(keys.astype(np.int64))
    return {"kind": kind, "keys": keys, "pos": position, "gauss": (has_gauss, cached)}


def _numpy_state_from_plain(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["kind"], keys, state["pos"], *state["gauss"])


class RandomStateCheckpoint(L.Callback):
    """Saves and restores the random generators with each checkpoint (exact resume on CPU;
    the CUDA generators too, where there are GPUs)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        state = {
            "torch": torch.get_rng_state(),
            # Kept as plain tensors and numbers so the file loads with weights_only=True.
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["i2moe_random_state"] = state

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("i2moe_random_state")
        if state is not None:
            torch.set_rng_state(state["torch"])
            np.random.set_state(_numpy_state_from_plain(state["numpy"]))
            random.setstate(state["python"])
            cuda = state.get("cuda")
            # Only onto the same number of GPUs: elsewhere the states would not match devices.
            if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)


def _loader(
    dataset: Dataset, batch_size: int, seed: int, workers: int, shuffle: bool
) -> DataLoader:
    # Each loader has its own generator: drawing worker seeds must not consume the global RNG,
    # or a resumed run would see different noise.
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(dataset), seed) if shuffle else None,
        num_workers=workers,
        generator=generator,
        persistent_workers=workers > 0,
    )


class FlushLogsOnCheckpoint(L.Callback):
    """Writes the buffered log rows with every checkpoint, so a killed run's CSV log holds every
    epoch its last checkpoint has seen (Lightning otherwise flushes every 100 steps)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        for logger in trainer.loggers:
            logger.save()


class _ContinuedExperimentWriter(ExperimentWriter):
    """Keeps the rows of the epochs a resumed checkpoint has seen instead of deleting the file
    (Lightning's writer empties an existing ``metrics.csv``)."""

    def __init__(self, log_dir: str, first_new_epoch: int) -> None:
        self.first_new_epoch = first_new_epoch
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            keys = list(reader.fieldnames or [])
            # Rows of later epochs belong to the killed attempt; the resumed run logs them again.
            rows = [row for row in reader if _row_epoch(row) < self.first_new_epoch]
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)


def _row_epoch(row: Mapping[str, str]) -> float:
    try:
        return float(row.get("epoch") or 0)
    except ValueError:
        return 0.0


class RunCSVLogger(CSVLogger):
    """Lightning's CSV logger that, when resuming, continues ``metrics.csv`` instead of
    replacing it.

    Args:
        save_dir: the run folder.
        resume_epoch: the epoch the resumed checkpoint finished (None for a new run).
    """

    def __init__(self, save_dir: Path, resume_epoch: int | None = None) -> None:
        super().__init__(save_dir, name="logs", version="")
        self.resume_epoch = resume_epoch

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.resume_epoch is not None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedExperimentWriter(self.log_dir, self.resume_epoch + 1)
        return super().experiment


def _holds_run(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in RUN_MARKERS)


def check_output(output: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check that ``output`` may be written as asked, writing nothing.

    Returns:
        Whether the folder already holds a run (to be resumed or replaced).

    Raises:
        RunError: ``resume`` with ``overwrite``; a file where the folder should be; a folder
            that is not empty, without ``resume`` or ``overwrite``; or, with one of them, a
            folder holding files that are not a run (never deleted or written into).
    """
    if resume and overwrite:
        raise RunError(
            "--resume and --overwrite exclude each other; expected --resume to continue the "
            "run or --overwrite to replace it"
        )
    if output.exists() and not output.is_dir():
        raise RunError(f"{output}: is a file; expected a folder for the run (new or empty)")
    contents = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if not contents:
        return False
    if not (resume or overwrite):
        raise RunError(
            f"{output}: the output folder is not empty (it may hold a run); "
            "pass --resume to continue it or --overwrite to replace it"
        )
    if not _holds_run(output):
        shown = ", ".join(contents[:5]) + (", ..." if len(contents) > 5 else "")
        flag = "--resume only continues" if resume else "--overwrite only replaces"
        raise RunError(
            f"{output}: holds files that are not an i2moe run ({shown}); {flag} a folder "
            "written by 'i2moe fit'; expected a new or empty folder"
        )
    return True


def prepare_output(output: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a folder holding a run unless asked to resume or overwrite; with
    ``overwrite`` delete the old run. Callers check everything else first (see :func:`fit`)."""
    holds_run = check_output(output, resume=resume, overwrite=overwrite)
    if holds_run and overwrite:
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


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
    from i2moe.builders import ABLATIONS
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
    if not _positive_int(train.num_workers, 0):
        raise _fail(origins, "train.num_workers", train.num_workers, "a whole number >= 0")
    for name, expected in (("lr", "a positive number"), ("weight_decay", "a number >= 0")):
        value = getattr(train, name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or value < 0 or (name == "lr" and value == 0):
            raise _fail(origins, f"train.{name}", value, expected)
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
        task_from_config(
            bundle.modalities,
            bundle.task,
            bundle.num_outputs,
            model,
            lr=train.lr,
            weight_decay=train.weight_decay,
            class_weights=train.class_weights or bundle.class_weights,
            regression_loss=train.regression_loss,
        )
    except (KeyError, ValueError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise ConfigError(
            f"{_field(origins, 'model')}: cannot build the model for {bundle.name} ({message}); "
            "expected options the chosen fusion and encoders accept (docs/fusion.md)"
        ) from error


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _hardware(train: TrainConfig) -> dict[str, Any]:
    """The Trainer options that say where and in what precision training runs."""
    return {
        "accelerator": train.accelerator,
        "devices": train.devices,
        "strategy": train.strategy,
        "num_nodes": train.num_nodes,
        "precision": train.precision,
    }


def check_trainer(config: RunConfig, origins: Mapping[str, str] | None = None) -> None:
    """Build a throwaway Trainer with the run's hardware settings, writing nothing.

    Raises:
        ConfigError: Lightning refuses the accelerator, devices, strategy, nodes or precision.
    """
    train = config.train
    try:
        with _quiet_lightning():
            L.Trainer(
                **_hardware(train),
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
        RunError: the saved configuration differs in a field outside RESUMABLE_TRAIN_FIELDS,
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
            if not (section == "train" and key in RESUMABLE_TRAIN_FIELDS)
            and saved[section].get(key) != wanted[section].get(key)
        ]
        if differences:
            allowed = ", ".join(f"train.{key}" for key in RESUMABLE_TRAIN_FIELDS)
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


def _trainer(
    config: RunConfig,
    output: Path,
    monitor: str,
    mode: str,
    progress: bool,
    resume_epoch: int | None = None,
):
    train = config.train
    checkpoint = ModelCheckpoint(
        dirpath=output / "checkpoints",
        filename="best",
        monitor=monitor,
        mode=mode,
        enable_version_counter=False,
    )
    # Lightning's save_last writes last.ckpt only in epochs that improve the best one, so a
    # killed run would resume from its best epoch; this callback writes it after every epoch.
    # It comes after ``checkpoint`` so the file holds that epoch's best-model state too.
    last = ModelCheckpoint(
        dirpath=output / "checkpoints", filename="last", enable_version_counter=False
    )
    callbacks: list[L.Callback] = [
        checkpoint,
        last,
        RandomStateCheckpoint(),
        FlushLogsOnCheckpoint(),
    ]
    if train.early_stopping:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=train.early_stopping))
    loggers: list[Any] = [RunCSVLogger(output, resume_epoch)]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(output, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        log.info("tensorboard not installed: CSV logs only")
    trainer = L.Trainer(
        max_epochs=train.epochs,
        **_hardware(train),
        deterministic=train.deterministic,
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=output,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )
    return trainer, checkpoint


def run_info(bundle: DataBundle) -> dict[str, Any]:
    """What ``run.json`` records of the data: enough to check and prepare other data."""
    statistics = bundle.meta.get("standardization") or {}
    return {
        "dataset": bundle.name,
        "task": bundle.task,
        "num_outputs": bundle.num_outputs,
        "modalities": FusionTask.spec_dicts(bundle.modalities),
        "class_names": bundle.class_names,
        # The training split's feature statistics, so new data is scaled as the run's was.
        "standardization": {
            name: {"mean": np.asarray(s["mean"]).tolist(), "std": np.asarray(s["std"]).tolist()}
            for name, s in statistics.items()
        },
    }


def restandardize(bundle: DataBundle, statistics: dict[str, dict[str, list[float]]]) -> None:
    """Re-scale a bundle read on its own statistics to the run's training statistics.

    Readers standardise each vector modality with the training split of the file they read;
    a model must see new data scaled like its own training data: x = z * s_new + m_new, then
    (x - m_run) / s_run. Only modalities with statistics on both sides are touched.
    """
    own = bundle.meta.get("standardization") or {}
    for name, run_stats in statistics.items():
        if name not in own:
            continue
        mean_new = torch.as_tensor(np.asarray(own[name]["mean"]), dtype=torch.float32)
        std_new = torch.as_tensor(np.asarray(own[name]["std"]), dtype=torch.float32)
        mean_run = torch.tensor(run_stats["mean"], dtype=torch.float32)
        std_run = torch.tensor(run_stats["std"], dtype=torch.float32)
        if torch.equal(mean_new, mean_run) and torch.equal(std_new, std_run):
            continue  # the run's own data: already in its units, leave it bit for bit
        for split in ("train", "val", "test"):
            dataset = bundle.split(split)
            arrays = getattr(dataset, "arrays", None)
            if arrays is None or name not in arrays:
                continue
            present = dataset.observed[:, dataset.names.index(name)]  # missing rows stay 0
            raw = arrays[name][present] * std_new + mean_new
            arrays[name][present] = (raw - mean_run) / std_run
    bundle.meta["standardization"] = statistics


def fit_one(
    config: RunConfig,
    output: Path,
    seed: int,
    *,
    resume: bool = False,
    progress: bool | None = None,
    bundle: DataBundle | None = None,
    interpret: bool = True,
) -> dict[str, dict[str, float]]:
    """Train one seed into ``output``; returns ``{"val": {...}, "test": {...}}``.

    With ``resume`` training continues from ``output/checkpoints/last.ckpt`` when there is
    one (model, optimiser, loops, callbacks and random generators restored). With ``interpret``
    the global interpretation of the test split is written to ``output/interpretation`` (see
    :mod:`i2moe.interpret`). ``metrics.json`` is written last: it marks a finished run.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    if bundle is None:
        bundle = load_data(
            config.data.name, task=config.data.task, seed=seed, **config.data.options
        )
    seed_config = dataclasses.replace(config, train=dataclasses.replace(config.train, seeds=[seed]))
    write_atomic(output / "run.json", json.dumps(run_info(bundle), indent=2))  # marks a run
    write_atomic(output / "config.yaml", _config_text(seed_config))

    class_weights = config.train.class_weights or bundle.class_weights
    module = task_from_config(
        bundle.modalities,
        bundle.task,
        bundle.num_outputs,
        config.model,
        lr=config.train.lr,
        weight_decay=config.train.weight_decay,
        class_weights=class_weights,
        regression_loss=config.train.regression_loss,
    )
    last = output / "checkpoints" / "last.ckpt"
    resume_from = read_checkpoint(last, purpose="resume from") if resume and last.exists() else None
    resume_epoch = resume_from["epoch"] if resume_from is not None else None
    metric, mode = selection_metric(bundle.task)
    progress = sys.stderr.isatty() if progress is None else progress
    trainer, checkpoint = _trainer(config, output, f"val/{metric}", mode, progress, resume_epoch)
    batch, workers = config.train.batch_size, config.train.num_workers
    train_loader = _loader(bundle.train, batch, seed, workers, shuffle=True)
    val_loader = _loader(bundle.val, batch, seed, workers, shuffle=False)
    test_loader = _loader(bundle.test, batch, seed, workers, shuffle=False)

    if resume_from is not None:
        log.info("resuming %s after epoch %d", output, resume_epoch + 1)
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume_from else None)

    best = checkpoint.best_model_path or str(last)
    metrics = {
        "val": _only_split(
            trainer.validate(module, val_loader, ckpt_path=best, verbose=False), "val"
        ),
        "test": _only_split(
            trainer.test(module, test_loader, ckpt_path=best, verbose=False), "test"
        ),
    }
    metrics["best_checkpoint"] = os.path.relpath(best, output)  # type: ignore[assignment]
    write_predictions(module, bundle, "test", output)
    if interpret and isinstance(module.model, I2MoE):
        from i2moe.interpret.cli import write_interpretation

        write_interpretation(output, "test", bundle=bundle, seed=seed)
    write_atomic(output / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _only_split(results: list[dict[str, float]], split: str) -> dict[str, float]:
    prefix = f"{split}/"
    return {k[len(prefix) :]: float(v) for k, v in results[0].items() if k.startswith(prefix)}


@torch.no_grad()
def predict_split(module: FusionTask, dataset: Dataset, batch_size: int = 256) -> dict[str, Any]:
    """Predictions, expert weights and outputs for every sample of a split (eval mode)."""
    module.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    parts: dict[str, list[torch.Tensor]] = {"prediction": [], "target": [], "observed": []}
    is_i2moe = isinstance(module.model, I2MoE)
    if is_i2moe:
        parts |= {"weights": [], "expert_outputs": []}
    device = module.device
    for batch in loader:
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        observed = batch["observed"].to(device)
        output = module.model(inputs, None if bool(observed.all()) else observed)
        parts["prediction"].append(output.prediction.cpu())
        parts["target"].append(batch["target"])
        parts["observed"].append(batch["observed"])
        if is_i2moe:
            parts["weights"].append(output.weights.cpu())
            parts["expert_outputs"].append(output.expert_outputs.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def prediction_frame(module: FusionTask, result: dict[str, Any], class_names=None) -> pd.DataFrame:
    """One row per sample: prediction columns, target, and each expert's weight."""
    task = module.task
    prediction = result["prediction"]
    frame = pd.DataFrame({"sample": np.arange(len(prediction))})
    if task == "classification":
        probabilities = prediction.softmax(-1).numpy()
        labels = probabilities.argmax(-1)
        frame["prediction"] = [class_names[i] for i in labels] if class_names else labels
        frame["target"] = result["target"].numpy()
        for c in range(probabilities.shape[1]):
            name = class_names[c] if class_names else c
            frame[f"prob_{name}"] = probabilities[:, c]
    elif task == "multilabel":
        probabilities = prediction.sigmoid().numpy()
        for c in range(probabilities.shape[1]):
            name = class_names[c] if class_names else c
            frame[f"prob_{name}"] = probabilities[:, c]
            frame[f"pred_{name}"] = (probabilities[:, c] > 0.5).astype(int)
            frame[f"target_{name}"] = result["target"][:, c].numpy().astype(int)
    else:
        frame["prediction"] = prediction[:, 0].numpy()
        frame["target"] = result["target"].reshape(-1).numpy()
    if "weights" in result:
        for e, name in enumerate(module.model.expert_names):
            frame[f"weight_{name}"] = result["weights"][:, e].numpy()
    for m, name in enumerate(module.model.modality_names):
        frame[f"observed_{name}"] = result["observed"][:, m].numpy()
    return frame


def weights_frame(module: FusionTask, result: dict[str, Any]) -> pd.DataFrame:
    """``sample``, then ``uni_<modality>`` ..., ``syn``, ``red``: one row per sample."""
    frame = pd.DataFrame({"sample": np.arange(len(result["weights"]))})
    for e, name in enumerate(module.model.expert_names):
        frame[name] = result["weights"][:, e].numpy()
    return frame


def write_predictions(module: FusionTask, bundle: DataBundle, split: str, output: Path) -> None:
    result = predict_split(module, bundle.split(split))
    frame = prediction_frame(module, result, bundle.class_names)
    write_atomic(output / "predictions.csv", frame.to_csv(index=False))
    if "weights" in result:
        weights = weights_frame(module, result).to_csv(index=False)
        write_atomic(output / "interpretation" / "weights.csv", weights)


def summarise(per_seed: dict[int, dict[str, dict[str, float]]], output: Path) -> pd.DataFrame:
    """Mean +- std over seeds of every val/test metric, as CSV and Markdown."""
    rows = []
    for split in ("val", "test"):
        names = sorted({k for m in per_seed.values() for k in m[split]})
        for name in names:
            values = np.array([m[split][name] for m in per_seed.values() if name in m[split]])
            rows.append(
                {
                    "split": split,
                    "metric": name,
                    "mean": values.mean(),
                    "std": values.std(ddof=0),
                    "seeds": len(values),
                }
            )
    frame = pd.DataFrame(rows)
    write_atomic(output / "summary.csv", frame.to_csv(index=False))
    lines = ["| split | metric | mean ± std | seeds |", "|---|---|---|---|"]
    lines += [
        f"| {r.split} | {r.metric} | {r.mean:.4f} ± {r.std:.4f} | {r.seeds} |"
        for r in frame.itertuples()
    ]
    write_atomic(output / "summary.md", "\n".join(lines) + "\n")
    return frame


def fit(
    config: RunConfig,
    output: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    origins: Mapping[str, str] | None = None,
) -> dict[int, dict[str, dict[str, float]]]:
    """Train every seed of ``config``; returns metrics per seed.

    The output folder, the configuration, the data (first seed's split), the model and the
    Trainer settings are all checked before anything is written, so a mistake leaves an
    existing run untouched, even with ``overwrite`` (the old run is deleted only then).

    Args:
        config: the run's configuration.
        output: the run folder.
        resume: continue the run in ``output`` from its last checkpoints.
        overwrite: replace the run in ``output``.
        progress: show a progress bar (default: when stderr is a terminal).
        origins: field -> where its value came from, to name it in errors (see
            :func:`check_settings`).

    Raises:
        RunError, ConfigError, DataError: a mistake found before training, with the file,
            field and expected form.
    """
    output = Path(output)
    holds_run = check_output(output, resume=resume, overwrite=overwrite)
    seeds = config.train.seeds
    check_settings(config, origins)
    check_trainer(config, origins)
    if holds_run and resume:
        check_resume(config, output)
    check_data_options(config.data.name, config.data.options)
    first = seeds[0]
    bundle = load_data(config.data.name, task=config.data.task, seed=first, **config.data.options)
    check_model(config, bundle, origins)
    prepare_output(output, resume=resume, overwrite=overwrite)

    if len(seeds) == 1:
        return {
            first: fit_one(config, output, first, resume=resume, progress=progress, bundle=bundle)
        }
    write_atomic(output / "config.yaml", _config_text(config))
    per_seed = {}
    for seed in seeds:
        seed_dir = output / f"seed_{seed}"
        seed_dir.mkdir(exist_ok=True)
        per_seed[seed] = fit_one(
            config,
            seed_dir,
            seed,
            resume=resume,
            progress=progress,
            bundle=bundle if seed == first else None,
        )
    summarise(per_seed, output)
    return per_seed


def _read_json(path: Path, expected: str) -> Any:
    if not path.is_file():
        raise RunError(f"{path}: missing; expected {expected} (written by 'i2moe fit')")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path}: cannot be read ({error}); expected {expected}") from None


def load_run(run: str | Path) -> tuple[FusionTask, RunConfig, dict[str, Any]]:
    """The best checkpoint's model, the run's config and its data description.

    Raises:
        RunError: not a run folder (or one of several seeds), or a damaged file in it.
    """
    from i2moe.config import load_config

    run = Path(run)
    if not run.is_dir():
        raise RunError(f"{run}: no such folder; expected a run folder written by 'i2moe fit'")
    if not (run / "config.yaml").exists():
        seeds = sorted(run.glob("seed_*/config.yaml"))
        if seeds:
            raise RunError(f"{run}: holds several seeds; name one of them, e.g. {seeds[0].parent}")
        raise RunError(
            f"{run}: not a run folder (no config.yaml); expected a folder written by 'i2moe fit'"
        )
    config = load_config(run / "config.yaml")
    info = _read_json(run / "run.json", "the run's data description (JSON)")
    metrics_file = run / "metrics.json"
    best = run / "checkpoints" / "best.ckpt"
    if metrics_file.exists():
        metrics = _read_json(metrics_file, "the run's metrics (JSON)")
        best = run / str(metrics.get("best_checkpoint", "checkpoints/best.ckpt"))
    if not best.exists():
        best = run / "checkpoints" / "last.ckpt"
    module = load_checkpoint(best)
    return module, config, info


def read_checkpoint(path: str | Path, purpose: str = "load") -> dict[str, Any]:
    """Read an i2moe checkpoint file without running any code stored in it.

    Args:
        path: the ``.ckpt`` file.
        purpose: what it is read for, for messages (``"load"``, ``"resume from"``).

    Raises:
        RunError: the file is missing, damaged (e.g. truncated), not a torch checkpoint, or a
            checkpoint of something else.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: checkpoint not found; expected a file written by 'i2moe fit'")
    try:
        # weights_only: a foreign file may hold a pickle that runs code; ours hold only
        # tensors, numbers, strings and containers.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, not a torch file, unsafe pickle, ...
        raise RunError(
            f"{path}: cannot {purpose} this checkpoint ({type(error).__name__}); expected a "
            "complete file written by 'i2moe fit' (it may be truncated or come from elsewhere)"
        ) from None
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    required = ("modalities", "task", "num_outputs", "model")
    if not isinstance(hparams, dict) or not set(required) <= set(hparams):
        raise RunError(
            f"{path}: not an i2moe checkpoint; expected a file written by 'i2moe fit' (field "
            f"'hyper_parameters' with {', '.join(required)}, and 'state_dict')"
        )
    if not isinstance(checkpoint.get("state_dict"), dict):
        raise RunError(f"{path}: has no 'state_dict'; expected a file written by 'i2moe fit'")
    return checkpoint


def load_checkpoint(path: str | Path) -> FusionTask:
    """Load a FusionTask checkpoint, with a clear error for a damaged or foreign file."""
    checkpoint = read_checkpoint(path)
    try:
        module = FusionTask(**checkpoint["hyper_parameters"])
        module.load_state_dict(checkpoint["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        first_line = str(message).splitlines()[0] if str(message) else type(error).__name__
        raise RunError(
            f"{path}: its model cannot be rebuilt ({first_line}); expected a checkpoint of this "
            "version of i2moe with its fusions and encoders available"
        ) from error
    module.eval()
    return module


def run_data(config: RunConfig, info: dict[str, Any], data: str | None) -> DataBundle:
    """The run's own data (same seed, so the same split), or another file checked against it."""
    from i2moe.data.load import TABLE_SUFFIXES

    seed = config.train.seeds[0]
    options = config.data.options if data is None else {}
    if data is not None and {Path(data).suffix, Path(config.data.name).suffix} <= set(
        TABLE_SUFFIXES
    ):
        options = config.data.options  # another table of the run's form: the same mapping
    elif (
        data is not None and data.startswith("paper:") and "sequence_chunks" in config.data.options
    ):
        # The same paper dataset from another folder: feed its vectors as the run did.
        options = {"sequence_chunks": config.data.options["sequence_chunks"]}
    check_data_options(data or config.data.name, options)
    bundle = load_data(data or config.data.name, task=info["task"], seed=seed, **options)
    expected = [(m["name"], list(m["shape"])) for m in info["modalities"]]
    found = [(m.name, list(m.shape)) for m in bundle.modalities]
    if found != expected:
        raise RunError(
            f"{data or config.data.name}: has the modalities {found}; expected the run's "
            f"{expected} (names and per-sample shapes)"
        )
    if data is not None and info.get("standardization"):
        restandardize(bundle, info["standardization"])
    return bundle


def evaluate_run(
    run: str | Path, *, data: str | None = None, split: str = "test"
) -> dict[str, float]:
    """Metrics of a run's best checkpoint on a split of its data (or of ``data``)."""
    from i2moe.training.metrics import metric_inputs, task_metrics

    module, config, info = load_run(run)
    bundle = run_data(config, info, data)
    result = predict_split(module, bundle.split(split))
    metrics = task_metrics(module.task, module.num_outputs)
    metrics.update(*metric_inputs(module.task, result["prediction"], result["target"]))
    return {k: float(v) for k, v in metrics.compute().items()}


def predict_run(run: str | Path, *, data: str, output: str | Path) -> pd.DataFrame:
    """Predictions and expert weights for every sample of ``data`` (all splits) as a CSV."""
    module, config, info = load_run(run)
    bundle = run_data(config, info, data)
    frames = []
    for split in ("train", "val", "test"):
        frame = prediction_frame(
            module, predict_split(module, bundle.split(split)), info["class_names"]
        )
        frame.insert(0, "split", split)
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(output, index=False)
    return result
