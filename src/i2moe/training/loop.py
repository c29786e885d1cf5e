"""The one training path: loaders, the Lightning Trainer and its checkpoints for any model."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader, Dataset, Sampler

from i2moe.config import TrainConfig
from i2moe.data.base import DataBundle
from i2moe.metrics import selection_metric
from i2moe.training.callbacks import (
    AtomicCheckpointIO,
    FlushLogsOnCheckpoint,
    RandomStateCheckpoint,
    RunCSVLogger,
)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info messages off, and its own deprecation of a torch name it calls."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def hardware_options(train: TrainConfig) -> dict[str, Any]:
    """The Trainer options that say where and in what precision training runs."""
    return {
        "accelerator": train.accelerator,
        "devices": train.devices,
        "strategy": train.strategy,
        "num_nodes": train.num_nodes,
        "precision": train.precision,
    }


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


def make_loader(
    dataset: Dataset, batch_size: int, seed: int, workers: int, shuffle: bool
) -> DataLoader:
    """A split's loader; the training one shuffles by (seed, epoch) alone."""
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


class LaterTiesCheckpoint(ModelCheckpoint):
    """Keeps the best checkpoint, and on a tie with it the later epoch (Lightning keeps the
    earlier one): of two epochs equally good on validation, the one trained longer."""

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or len(self.best_k_models) < self.save_top_k:
            return current is not None
        at_least = {"min": torch.le, "max": torch.ge}[self.mode]
        better = bool(at_least(current, self.best_k_models[self.kth_best_model_path]))
        return trainer.strategy.reduce_boolean_decision(better)


def build_trainer(
    train: TrainConfig,
    output: Path,
    monitor: str,
    mode: str,
    progress: bool,
    resume_epoch: int | None = None,
    later_ties: bool = False,
) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Trainer of a run in ``output``: best and last checkpoints, random states, CSV and
    TensorBoard logs; returns it with the callback that keeps the best checkpoint (on a tie,
    the earlier epoch, or with ``later_ties`` the later one)."""
    checkpoint = (LaterTiesCheckpoint if later_ties else ModelCheckpoint)(
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
    loggers = build_loggers(train.loggers, output, resume_epoch)
    trainer = L.Trainer(
        max_epochs=train.epochs,
        **hardware_options(train),
        gradient_clip_val=train.gradient_clip,
        gradient_clip_algorithm="norm",
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


# Loggers a run may write to, beside its CSV log (which ``--resume`` reads and is always kept).
LOGGERS: tuple[str, ...] = ("csv", "tensorboard", "wandb", "mlflow")
LOGGER_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow"}


def check_loggers(names: Sequence[str]) -> None:
    """Refuse unknown logger names and loggers whose package is not installed.

    Raises:
        ValueError: naming the logger, the valid names, or the package to install.
    """
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger '{name}'; expected some of {', '.join(LOGGERS)}")
        package = LOGGER_PACKAGES.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            raise ValueError(
                f"the {name} logger needs the package {package}: pip install {package} "
                f'(or pip install "i2moe[loggers]")'
            )


def build_loggers(names: Sequence[str], output: Path, resume_epoch: int | None) -> list[Any]:
    """The run's loggers: the CSV log first, then each of ``names`` that is not ``csv``.

    TensorBoard writes to ``logs/tensorboard``, Weights & Biases in offline mode to ``logs/``
    (``wandb sync`` uploads it later), MLflow to the file store ``logs/mlruns``.
    """
    check_loggers(names)
    loggers: list[Any] = [RunCSVLogger(output, resume_epoch)]
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            if importlib.util.find_spec("tensorboard") is None:
                log.info("tensorboard not installed: no TensorBoard log")
                continue
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(output, name="logs", version="tensorboard"))
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger

            loggers.append(WandbLogger(save_dir=str(output / "logs"), offline=True))
        elif name == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger

            # A file store inside the run folder needs no server; recent MLflow versions keep
            # it behind this opt-in (set the variable yourself to choose otherwise).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (output / "logs" / "mlruns").resolve().as_uri()
            loggers.append(MLFlowLogger(experiment_name="i2moe", tracking_uri=uri))
    return loggers


class TrainingResult(NamedTuple):
    """What :func:`train_module` returns: the metrics of the best checkpoint on each split."""

    val: dict[str, float]
    test: dict[str, float]
    best_checkpoint: str


def train_module(
    module: L.LightningModule,
    bundle: DataBundle,
    train: TrainConfig,
    output: str | Path,
    *,
    seed: int,
    progress: bool = False,
    resume_from: Path | None = None,
    resume_epoch: int | None = None,
    later_ties: bool = False,
) -> TrainingResult:
    """Train ``module`` on the bundle's training split, keep the checkpoint that is best on
    validation, and evaluate it on the validation and test splits.

    Args:
        module: a :class:`~i2moe.training.module.FusionLightningModule`.
        bundle: the data.
        train: epochs, batch size, early stopping, hardware.
        output: folder for ``checkpoints/`` and ``logs/``.
        seed: the loaders' shuffling seed (the caller seeds the model's initialisation).
        progress: show Lightning's progress bar.
        resume_from: a ``last.ckpt`` to continue from; ``resume_epoch`` is its epoch.
        later_ties: of epochs tied on the validation metric keep the later (default: the
            earlier, Lightning's rule).
    """
    output = Path(output)
    metric, mode = selection_metric(bundle.task)
    trainer, checkpoint = build_trainer(
        train, output, f"val/{metric}", mode, progress, resume_epoch, later_ties
    )
    batch, workers = train.batch_size, train.num_workers
    train_loader = make_loader(bundle.train, batch, seed, workers, shuffle=True)
    val_loader = make_loader(bundle.val, batch, seed, workers, shuffle=False)
    test_loader = make_loader(bundle.test, batch, seed, workers, shuffle=False)
    trainer.fit(
        module, train_loader, val_loader, ckpt_path=str(resume_from) if resume_from else None
    )
    best = checkpoint.best_model_path or str(output / "checkpoints" / "last.ckpt")
    val = trainer.validate(module, val_loader, ckpt_path=best, verbose=False)
    test = trainer.test(module, test_loader, ckpt_path=best, verbose=False)
    return TrainingResult(_only_split(val, "val"), _only_split(test, "test"), best)


def _only_split(results: list[dict[str, float]], split: str) -> dict[str, float]:
    prefix = f"{split}/"
    return {k[len(prefix) :]: float(v) for k, v in results[0].items() if k.startswith(prefix)}
