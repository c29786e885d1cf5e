"""Runs: fit a model into a run folder, one seed or several.

With several seeds, each seed has its own run folder ``seed_<s>/`` and the top folder holds
``summary.csv`` / ``summary.md`` (mean +- std). The folder's files are described in
:mod:`i2moe.runs.files`; using a finished run is
:mod:`i2moe.runs.loading`, :mod:`i2moe.runs.evaluation` and :mod:`i2moe.runs.prediction`.

Reliability (``docs/reliability.md``): everything a run needs (configuration, data, model,
Trainer settings, the folder) is checked before anything is written
(:mod:`i2moe.runs.checks`), so a mistake never damages an existing run; checkpoints and
result files are written atomically and ``metrics.json`` last, so it marks a finished run;
``--resume`` continues a killed run exactly where its last checkpoint left it (same metrics as
an uninterrupted run on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd

from i2moe.config import RunConfig
from i2moe.data.base import DataBundle
from i2moe.data.load import load_data
from i2moe.model import I2MoE
from i2moe.runs.checks import (
    check_data_options,
    check_model,
    check_resume,
    check_settings,
    check_trainer,
)
from i2moe.runs.explain import write_interpretation
from i2moe.runs.files import (
    check_output,
    config_text,
    prepare_output,
    read_checkpoint,
    write_atomic,
)
from i2moe.runs.loading import run_info
from i2moe.runs.model_card import write_model_card
from i2moe.runs.prediction import write_predictions
from i2moe.runs.tables import markdown_table, mean_std, mean_std_cell
from i2moe.training.distributed import is_primary_process
from i2moe.training.loop import train_module
from i2moe.training.module import FusionLightningModule

log = logging.getLogger(__name__)


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

    module = FusionLightningModule.from_config(
        bundle.modalities,
        bundle.task,
        bundle.num_outputs,
        config.model,
        config.loss,
        lr=config.train.lr,
        weight_decay=config.train.weight_decay,
        class_weights=config.train.class_weights or bundle.class_weights,
        regression_loss=config.train.regression_loss,
        interaction_warmup=config.train.interaction_warmup,
    )
    last = output / "checkpoints" / "last.ckpt"
    resume_from = read_checkpoint(last, purpose="resume from") if resume and last.exists() else None
    resume_epoch = resume_from["epoch"] if resume_from is not None else None
    if resume_from is not None:
        log.info("resuming %s after epoch %d", output, resume_epoch + 1)
    result = train_module(
        module,
        bundle,
        config.train,
        output,
        seed=seed,
        progress=sys.stderr.isatty() if progress is None else progress,
        resume_from=last if resume_from is not None else None,
        resume_epoch=resume_epoch,
    )
    metrics: dict[str, Any] = {
        "val": result.val,
        "test": result.test,
        "best_checkpoint": os.path.relpath(result.best_checkpoint, output),
    }
    if not primary:  # the primary process writes the predictions, interpretation and metrics
        return metrics
    write_predictions(module, bundle, "test", output)
    if interpret and isinstance(module.model, I2MoE):
        write_interpretation(output, "test", bundle=bundle, seed=seed)
    write_atomic(output / "metrics.json", json.dumps(metrics, indent=2))
    write_model_card(output)
    return metrics


def summarise(per_seed: dict[int, dict[str, dict[str, float]]], output: Path) -> pd.DataFrame:
    """Mean +- std over seeds of every val/test metric, as CSV and Markdown."""
    rows = []
    for split in ("val", "test"):
        names = sorted({k for m in per_seed.values() for k in m[split]})
        for name in names:
            values = [m[split][name] for m in per_seed.values() if name in m[split]]
            mean, std = mean_std(values)
            rows.append(
                {"split": split, "metric": name, "mean": mean, "std": std, "seeds": len(values)}
            )
    frame = pd.DataFrame(rows)
    if not is_primary_process():
        return frame
    write_atomic(output / "summary.csv", frame.to_csv(index=False))
    table = markdown_table(
        ["split", "metric", "mean ± std", "seeds"],
        [[r.split, r.metric, mean_std_cell(r.mean, r.std, 4), r.seeds] for r in frame.itertuples()],
    )
    write_atomic(output / "summary.md", table)
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
    if primary:
        write_model_card(output)
    return per_seed
