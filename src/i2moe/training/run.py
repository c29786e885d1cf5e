"""Runs: fit a model into a run folder, one seed or several.

With several seeds, each seed has its own run folder ``seed_<s>/`` and the top folder holds
``summary.csv`` / ``summary.md`` (mean +- std). The folder's files are described in
:mod:`i2moe.training.files`; using a finished run is :mod:`i2moe.training.inference`.

Reliability (``docs/reliability.md``): everything a run needs (configuration, data, model,
Trainer settings, the folder) is checked before anything is written
(:mod:`i2moe.training.checks`), so a mistake never damages an existing run; checkpoints and
result files are written atomically and ``metrics.json`` last, so it marks a finished run;
``--resume`` continues a killed run exactly where its last checkpoint left it (same metrics as
an uninterrupted run on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader, Dataset, Sampler

from i2moe.config import RunConfig
from i2moe.data.base import DataBundle
from i2moe.data.load import load_data
from i2moe.model import I2MoE
from i2moe.training.checks import (
    check_data_options,
    check_model,
    check_resume,
    check_settings,
    check_trainer,
    hardware_options,
)
from i2moe.training.files import (
    AtomicCheckpointIO,
    FlushLogsOnCheckpoint,
    RunCSVLogger,
    check_output,
    config_text,
    is_primary_process,
    prepare_output,
    read_checkpoint,
    write_atomic,
)
from i2moe.training.inference import run_info, write_predictions
from i2moe.training.metrics import selection_metric
from i2moe.training.module import task_from_config

log = logging.getLogger(__name__)


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
    primary = is_primary_process()
    if primary:
        write_atomic(output / "run.json", json.dumps(run_info(bundle), indent=2))  # marks a run
        write_atomic(output / "config.yaml", config_text(seed_config))

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
        interaction_warmup=config.train.interaction_warmup,
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
    if not primary:  # the primary process writes the predictions, interpretation and metrics
        return metrics
    write_predictions(module, bundle, "test", output)
    if interpret and isinstance(module.model, I2MoE):
        from i2moe.interpret.cli import write_interpretation

        write_interpretation(output, "test", bundle=bundle, seed=seed)
    write_atomic(output / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _only_split(results: list[dict[str, float]], split: str) -> dict[str, float]:
    prefix = f"{split}/"
    return {k[len(prefix) :]: float(v) for k, v in results[0].items() if k.startswith(prefix)}


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
    if not is_primary_process():
        return frame
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
    # In a distributed run this command runs again in every further process (see
    # is_primary_process): only the primary one checks and writes the output folder.
    primary = is_primary_process()
    holds_run = check_output(output, resume=resume, overwrite=overwrite) if primary else False
    seeds = config.train.seeds
    check_settings(config, origins)
    check_trainer(config, origins)
    if holds_run and resume:
        check_resume(config, output)
    check_data_options(config.data.name, config.data.options)
    first = seeds[0]
    bundle = load_data(config.data.name, task=config.data.task, seed=first, **config.data.options)
    check_model(config, bundle, origins)
    if primary:
        prepare_output(output, resume=resume, overwrite=overwrite)

    if len(seeds) == 1:
        return {
            first: fit_one(config, output, first, resume=resume, progress=progress, bundle=bundle)
        }
    if primary:
        write_atomic(output / "config.yaml", config_text(config))
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
