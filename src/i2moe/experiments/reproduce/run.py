"""``reproduce``: train every run of one of the paper's tables on one dataset, and write the
table next to the paper's own numbers (docs/method.md section 8: paper Table 1)::

    i2moe reproduce --dataset mosi --data-root data/cmu-mosi --table 1

A finished seed whose configuration is unchanged is reused, not retrained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from i2moe.config import RunConfig
from i2moe.experiments.reproduce.configs import DATASETS, build_run_config, parse_overrides
from i2moe.experiments.reproduce.grid import ReproduceError, paper_grid
from i2moe.experiments.reproduce.results import table_records, write_table


def _bundle_key(config: RunConfig) -> str:
    options = {k: v for k, v in config.data.options.items() if k != "sequence_chunks"}
    return json.dumps([config.data.name, config.data.task, options], sort_keys=True, default=str)


def reproduce(
    dataset: str,
    data_root: str | Path,
    *,
    table: int = 1,
    fusions: Sequence[str] | None = None,
    output: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    dim: int | None = None,
    batch_size: int | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    interpret: bool = False,
) -> list[dict[str, Any]]:
    """Train every run of a paper table on one dataset and write the table.

    Args:
        dataset: ``adni``, ``mimic``, ``imdb``, ``mosi`` or ``enrico``.
        data_root: the dataset's folder (docs/paper-datasets.md).
        table: 1, 2, 4 or 5 (see :func:`paper_grid`).
        fusions: backbones to include (default: see :func:`paper_grid`).
        output: folder for ``table<k>.md`` / ``table<k>.csv`` and the run folders
            ``<run>/seed_<s>/`` (default ``runs/reproduce/<dataset>``).
        seeds / epochs / dim / batch_size: override every config (smoke runs).
        overrides: ``SECTION.KEY=VALUE`` settings applied to every config (``--set``).
        overwrite: replace run folders whose configuration differs instead of refusing.
        interpret: also write each I2MoE run's interpretation of the test split.

    Returns:
        One record per table row and metric (the rows of ``table<k>.csv``).
    """
    from i2moe.data.load import as_sequences, load_paper_data
    from i2moe.data.paper import paper_dataset_name, spellings
    from i2moe.runs.grid import GridRun, fit_grid
    from i2moe.training.distributed import is_primary_process

    canonical = paper_dataset_name(dataset)
    if canonical not in DATASETS:
        raise ReproduceError(f"--dataset {dataset}: expected one of {spellings()}")
    dataset = canonical
    runs = paper_grid(table, fusions)
    parsed = parse_overrides(overrides)
    output = Path(output) if output is not None else Path("runs") / "reproduce" / dataset
    configs = {
        run: build_run_config(
            dataset,
            run,
            data_root,
            overrides=parsed,
            seeds=seeds,
            epochs=epochs,
            dim=dim,
            batch_size=batch_size,
        )
        for run in runs
    }
    bundles: dict[str, Any] = {}

    def data(grid_run: GridRun, seed: int) -> Any:
        # The paper datasets have fixed splits: one read per data configuration, any seed.
        config = grid_run.config
        key = _bundle_key(config)
        if key not in bundles:
            options = {k: v for k, v in config.data.options.items() if k != "sequence_chunks"}
            bundle = load_paper_data(config.data.name, task=config.data.task, **options)
            chunks = config.data.options.get("sequence_chunks")
            bundles[key] = as_sequences(bundle, chunks) if chunks else bundle
        return bundles[key]

    grid = [GridRun(run.folder, config) for run, config in configs.items()]
    by_folder = fit_grid(grid, output, data, overwrite=overwrite, interpret=interpret)
    results = {run: by_folder[run.folder].per_seed for run in configs}
    records = table_records(dataset, table, results)
    base = next(iter(configs.values()))
    if is_primary_process():
        write_table(records, output, dataset, table, base, epochs_overridden=epochs is not None)
    return records
