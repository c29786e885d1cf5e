"""Fixtures of the run-folder tests: a tiny finished run."""

from __future__ import annotations

import pytest

from helpers import tiny_run_config, write_npz
from i2moe.runs.fitting import fit_one


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-epoch run (no interpretation) with early stopping, written by ``fit_one``."""
    folder = tmp_path_factory.mktemp("tiny_run")
    data = write_npz(folder / "d.npz")
    config = tiny_run_config(data, epochs=3)
    config.train.early_stopping = 5
    config.train.interaction_warmup = 2
    run = folder / "run"
    run.mkdir()
    metrics = fit_one(config, run, 0, progress=False, interpret=False)
    return run, metrics
