"""Using a finished run: load its model, read new data as it read its own, evaluate, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from i2moe.config import RunConfig
from i2moe.data.base import DataBundle
from i2moe.data.load import load_data
from i2moe.model import I2MoE
from i2moe.runs.checks import check_data_options
from i2moe.runs.files import RunError, read_checkpoint, read_json, write_atomic
from i2moe.training.module import FusionLightningModule, spec_dicts


def run_info(bundle: DataBundle) -> dict[str, Any]:
    """What ``run.json`` records of the data: enough to check and prepare other data."""
    statistics = bundle.meta.get("standardization") or {}
    return {
        "dataset": bundle.name,
        "task": bundle.task,
        "num_outputs": bundle.num_outputs,
        "modalities": spec_dicts(bundle.modalities),
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


@torch.no_grad()
def predict_split(
    module: FusionLightningModule, dataset: Dataset, batch_size: int = 256
) -> dict[str, Any]:
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


def prediction_frame(
    module: FusionLightningModule, result: dict[str, Any], class_names=None
) -> pd.DataFrame:
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


def weights_frame(module: FusionLightningModule, result: dict[str, Any]) -> pd.DataFrame:
    """``sample``, then ``uni_<modality>`` ..., ``syn``, ``red``: one row per sample."""
    frame = pd.DataFrame({"sample": np.arange(len(result["weights"]))})
    for e, name in enumerate(module.model.expert_names):
        frame[name] = result["weights"][:, e].numpy()
    return frame


def write_predictions(
    module: FusionLightningModule, bundle: DataBundle, split: str, output: Path
) -> None:
    result = predict_split(module, bundle.split(split))
    frame = prediction_frame(module, result, bundle.class_names)
    write_atomic(output / "predictions.csv", frame.to_csv(index=False))
    if "weights" in result:
        weights = weights_frame(module, result).to_csv(index=False)
        write_atomic(output / "interpretation" / "weights.csv", weights)


def load_run(run: str | Path) -> tuple[FusionLightningModule, RunConfig, dict[str, Any]]:
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
    info = read_json(run / "run.json", "the run's data description (JSON)")
    metrics_file = run / "metrics.json"
    best = run / "checkpoints" / "best.ckpt"
    if metrics_file.exists():
        metrics = read_json(metrics_file, "the run's metrics (JSON)")
        best = run / str(metrics.get("best_checkpoint", "checkpoints/best.ckpt"))
    if not best.exists():
        best = run / "checkpoints" / "last.ckpt"
    module = load_checkpoint(best)
    return module, config, info


def load_checkpoint(path: str | Path) -> FusionLightningModule:
    """Load a run's checkpoint, with a clear error for a damaged or foreign file."""
    checkpoint = read_checkpoint(path)
    try:
        module = FusionLightningModule.from_checkpoint_state(checkpoint["hyper_parameters"])
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
    from i2moe.metrics import metric_inputs, task_metrics

    module, config, info = load_run(run)
    bundle = run_data(config, info, data)
    result = predict_split(module, bundle.split(split))
    metrics = task_metrics(module.task, module.num_outputs, sync=False)
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
