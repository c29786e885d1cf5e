"""Runs: fit a model into a run folder, test it again, predict with it.

A run folder holds ``config.yaml`` (the resolved configuration), ``run.json`` (the data's
modalities, task and classes), ``checkpoints/`` (``best.ckpt``, ``last.ckpt``), ``metrics.json``
(``{"val": {...}, "test": {...}}``), ``predictions.csv`` for the test split,
``interpretation/weights.csv``, and ``logs/``. With several seeds, each seed has such a folder
``seed_<s>/`` and the top folder holds ``summary.csv`` / ``summary.md`` (mean +- std).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset, Sampler

from i2moe.config import RunConfig, save_config
from i2moe.data.base import DataBundle
from i2moe.data.load import load_data
from i2moe.model import I2MoE
from i2moe.training.metrics import selection_metric
from i2moe.training.module import FusionTask, task_from_config

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run folder cannot be used as asked (exists already, missing, or damaged)."""


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
    """Saves and restores the random generators with each checkpoint (exact resume on CPU)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["i2moe_random_state"] = {
            "torch": torch.get_rng_state(),
            # Kept as plain tensors and numbers so the file loads with weights_only=True.
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("i2moe_random_state")
        if state is not None:
            torch.set_rng_state(state["torch"])
            np.random.set_state(_numpy_state_from_plain(state["numpy"]))
            random.setstate(state["python"])


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


def prepare_output(output: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a folder holding a run unless asked to resume or overwrite."""
    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other")
    holds_run = output.exists() and any(output.iterdir())
    if holds_run and not (resume or overwrite):
        raise RunError(
            f"{output}: the output folder is not empty (it may hold a run); "
            "pass --resume to continue it or --overwrite to replace it"
        )
    if holds_run and overwrite:
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


def _trainer(config: RunConfig, output: Path, monitor: str, mode: str, progress: bool):
    train = config.train
    checkpoint = ModelCheckpoint(
        dirpath=output / "checkpoints",
        filename="best",
        monitor=monitor,
        mode=mode,
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list[L.Callback] = [checkpoint, RandomStateCheckpoint()]
    if train.early_stopping:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=train.early_stopping))
    loggers: list[Any] = [CSVLogger(output, name="logs", version="")]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(output, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        log.info("tensorboard not installed: CSV logs only")
    trainer = L.Trainer(
        max_epochs=train.epochs,
        accelerator=train.accelerator,
        devices=train.devices,
        strategy=train.strategy,
        num_nodes=train.num_nodes,
        precision=train.precision,
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
    return {
        "dataset": bundle.name,
        "task": bundle.task,
        "num_outputs": bundle.num_outputs,
        "modalities": FusionTask.spec_dicts(bundle.modalities),
        "class_names": bundle.class_names,
    }


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

    With ``interpret`` the global interpretation of the test split is written to
    ``output/interpretation`` (see :mod:`i2moe.interpret`).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    if bundle is None:
        bundle = load_data(
            config.data.name, task=config.data.task, seed=seed, **config.data.options
        )
    seed_config = dataclasses.replace(config, train=dataclasses.replace(config.train, seeds=[seed]))
    save_config(seed_config, output / "config.yaml")
    (output / "run.json").write_text(json.dumps(run_info(bundle), indent=2))

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
    metric, mode = selection_metric(bundle.task)
    progress = sys.stderr.isatty() if progress is None else progress
    trainer, checkpoint = _trainer(config, output, f"val/{metric}", mode, progress)
    batch, workers = config.train.batch_size, config.train.num_workers
    train_loader = _loader(bundle.train, batch, seed, workers, shuffle=True)
    val_loader = _loader(bundle.val, batch, seed, workers, shuffle=False)
    test_loader = _loader(bundle.test, batch, seed, workers, shuffle=False)

    last = output / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)

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
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_predictions(module, bundle, "test", output)
    if interpret and isinstance(module.model, I2MoE):
        from i2moe.interpret.cli import write_interpretation

        write_interpretation(output, "test", bundle=bundle, seed=seed)
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
    prediction_frame(module, result, bundle.class_names).to_csv(
        output / "predictions.csv", index=False
    )
    if "weights" in result:
        (output / "interpretation").mkdir(exist_ok=True)
        weights_frame(module, result).to_csv(output / "interpretation" / "weights.csv", index=False)


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
    frame.to_csv(output / "summary.csv", index=False)
    lines = ["| split | metric | mean ± std | seeds |", "|---|---|---|---|"]
    lines += [
        f"| {r.split} | {r.metric} | {r.mean:.4f} ± {r.std:.4f} | {r.seeds} |"
        for r in frame.itertuples()
    ]
    (output / "summary.md").write_text("\n".join(lines) + "\n")
    return frame


def fit(
    config: RunConfig,
    output: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[int, dict[str, dict[str, float]]]:
    """Train every seed of ``config``; returns metrics per seed."""
    output = Path(output)
    prepare_output(output, resume=resume, overwrite=overwrite)
    seeds = config.train.seeds
    if len(seeds) == 1:
        return {seeds[0]: fit_one(config, output, seeds[0], resume=resume, progress=progress)}
    save_config(config, output / "config.yaml")
    per_seed = {}
    for seed in seeds:
        seed_dir = output / f"seed_{seed}"
        seed_dir.mkdir(exist_ok=True)
        per_seed[seed] = fit_one(config, seed_dir, seed, resume=resume, progress=progress)
    summarise(per_seed, output)
    return per_seed


def load_run(run: str | Path) -> tuple[FusionTask, RunConfig, dict[str, Any]]:
    """The best checkpoint's model, the run's config and its data description."""
    from i2moe.config import load_config

    run = Path(run)
    if not (run / "config.yaml").exists():
        seeds = sorted(run.glob("seed_*/config.yaml"))
        if seeds:
            raise RunError(f"{run}: holds several seeds; name one of them, e.g. {seeds[0].parent}")
        raise RunError(f"{run}: not a run folder (no config.yaml)")
    config = load_config(run / "config.yaml")
    info = json.loads((run / "run.json").read_text())
    metrics_file = run / "metrics.json"
    best = run / "checkpoints" / "best.ckpt"
    if metrics_file.exists():
        best = run / json.loads(metrics_file.read_text()).get(
            "best_checkpoint", "checkpoints/best.ckpt"
        )
    if not best.exists():
        best = run / "checkpoints" / "last.ckpt"
    module = load_checkpoint(best)
    return module, config, info


def load_checkpoint(path: str | Path) -> FusionTask:
    """Load a FusionTask checkpoint, with a clear error for a damaged or foreign file."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # truncated zip, not a torch file, ...
        raise RunError(
            f"{path}: cannot read the checkpoint ({type(error).__name__}); "
            "expected a file written by 'i2moe fit' (it may be truncated)"
        ) from None
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if not {"modalities", "task", "num_outputs", "model"} <= set(hparams):
        raise RunError(
            f"{path}: not an i2moe checkpoint (field 'hyper_parameters' lacks modalities, task, "
            "num_outputs, model)"
        )
    module = FusionTask(**hparams)
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return module


def _run_data(config: RunConfig, info: dict[str, Any], data: str | None) -> DataBundle:
    """The run's own data (same seed, so the same split), or another file checked against it."""
    seed = config.train.seeds[0]
    options = config.data.options if data is None else {}
    bundle = load_data(data or config.data.name, task=info["task"], seed=seed, **options)
    expected = [(m["name"], list(m["shape"])) for m in info["modalities"]]
    found = [(m.name, list(m.shape)) for m in bundle.modalities]
    if found != expected:
        raise RunError(
            f"{data or config.data.name}: modalities {found} do not match the run's {expected}"
        )
    return bundle


def evaluate_run(
    run: str | Path, *, data: str | None = None, split: str = "test"
) -> dict[str, float]:
    """Metrics of a run's best checkpoint on a split of its data (or of ``data``)."""
    from i2moe.training.metrics import metric_inputs, task_metrics

    module, config, info = load_run(run)
    bundle = _run_data(config, info, data)
    result = predict_split(module, bundle.split(split))
    metrics = task_metrics(module.task, module.num_outputs)
    metrics.update(*metric_inputs(module.task, result["prediction"], result["target"]))
    return {k: float(v) for k, v in metrics.compute().items()}


def predict_run(run: str | Path, *, data: str, output: str | Path) -> pd.DataFrame:
    """Predictions and expert weights for every sample of ``data`` (all splits) as a CSV."""
    module, config, info = load_run(run)
    bundle = _run_data(config, info, data)
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
