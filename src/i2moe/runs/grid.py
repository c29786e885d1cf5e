"""Grids of runs (``i2moe compare``, ``i2moe reproduce``): many configurations x seeds, resumable.

Each grid run has a folder under the output, with one run folder per seed (``seed_<s>/``) and a
``summary.csv`` / ``summary.md`` over its seeds. Before anything trains, every seed folder is
classified (:func:`seed_state`): a finished run of the same configuration is reused, an
unfinished one is resumed from its last checkpoint, and one of another configuration stops the
command at once, unless ``overwrite`` (it is then replaced when its turn comes, not before).
A killed grid therefore continues where it stopped when the same command is run again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import yaml

from i2moe.config import RunConfig, config_to_dict, load_config
from i2moe.data.base import DataBundle
from i2moe.runs.files import RunError
from i2moe.runs.fitting import fit_one, summarise
from i2moe.training.distributed import is_primary_process

log = logging.getLogger(__name__)

Metrics = dict[str, dict[str, float]]


class GridResult(NamedTuple):
    """One grid run's outcome: metrics per seed, and their mean +- std (``summary.csv``)."""

    per_seed: dict[int, Metrics]
    summary: pd.DataFrame


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One configuration of a grid: its folder (relative to the output) and its config."""

    folder: str
    config: RunConfig

    def seed_config(self, seed: int) -> RunConfig:
        """The config a seed folder holds: the run's, with that one seed."""
        return dataclasses.replace(
            self.config, train=dataclasses.replace(self.config.train, seeds=[seed])
        )


def normalised(config: RunConfig) -> str:
    """The config as its YAML file reads back, to compare with a run folder's config."""
    return json.dumps(yaml.safe_load(yaml.safe_dump(config_to_dict(config))), sort_keys=True)


def seed_state(seed_dir: Path, config: RunConfig, overwrite: bool) -> str:
    """``new`` (empty or absent), ``done`` (finished, same config), ``resume`` (unfinished, same
    config) or ``replace`` (another config, with ``overwrite``). Deletes nothing.

    Raises:
        RunError: the folder holds a run of another configuration and not ``overwrite``.
    """
    if not seed_dir.exists() or not any(seed_dir.iterdir()):
        return "new"
    saved = seed_dir / "config.yaml"
    if saved.exists() and normalised(load_config(saved)) == normalised(config):
        return "done" if (seed_dir / "metrics.json").exists() else "resume"
    if overwrite:
        return "replace"
    raise RunError(
        f"{seed_dir}: holds a run with another configuration; pass --overwrite to replace it "
        "or choose another --output"
    )


def fit_grid(
    runs: Sequence[GridRun],
    output: str | Path,
    data: Callable[[GridRun, int], DataBundle],
    *,
    overwrite: bool = False,
    interpret: bool = False,
) -> dict[str, GridResult]:
    """Train every run for each of its seeds; returns run folder -> its result.

    Args:
        runs: the grid (folders must differ).
        output: the grid's folder (created; a file there is an error).
        data: the data of a run and seed (called only for seeds that train).
        overwrite: replace seed folders that hold another configuration.
        interpret: write each I2MoE run's interpretation of the test split.

    Raises:
        RunError: ``output`` is a file, or a seed folder holds another configuration (checked
            for every seed before anything trains, so a conflict stops the command at once
            rather than hours in).
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise RunError(f"{output}: is a file; expected a folder for the runs")
    folders = [run.folder for run in runs]
    if len(set(folders)) != len(folders):
        raise ValueError(f"grid runs share a folder: {folders}")
    states = {
        (run.folder, seed): seed_state(
            output / run.folder / f"seed_{seed}", run.seed_config(seed), overwrite
        )
        for run in runs
        for seed in run.config.train.seeds
    }
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, GridResult] = {}
    for run in runs:
        run_dir = output / run.folder
        per_seed: dict[int, Metrics] = {}
        for seed in run.config.train.seeds:
            seed_dir = run_dir / f"seed_{seed}"
            state = states[run.folder, seed]
            if state == "done":
                log.info("%s seed %d: reusing the finished run", run.folder, seed)
                per_seed[seed] = json.loads((seed_dir / "metrics.json").read_text())
                continue
            if state == "replace" and is_primary_process():
                shutil.rmtree(seed_dir)
            log.info(
                "%s seed %d: %s", run.folder, seed, "resuming" if state == "resume" else "training"
            )
            seed_dir.mkdir(parents=True, exist_ok=True)
            per_seed[seed] = fit_one(
                run.seed_config(seed),
                seed_dir,
                seed,
                resume=state == "resume",
                bundle=data(run, seed),
                progress=False,
                interpret=interpret,
            )
        results[run.folder] = GridResult(per_seed, summarise(per_seed, run_dir))
    return results
