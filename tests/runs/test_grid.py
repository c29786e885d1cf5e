"""Tests of ``i2moe.runs.grid``: a grid of runs x seeds that reuses, resumes and refuses."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from helpers import tiny_run_config
from i2moe.config import RunConfig
from i2moe.data.load import load_data
from i2moe.data.synth import write_synth
from i2moe.runs.files import RunError
from i2moe.runs.grid import GridRun, fit_grid, seed_state


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synth(
        tmp_path_factory.mktemp("grid") / "d.npz", "redundancy", num_samples=80, dim=4
    )


def _config(data, epochs=1) -> RunConfig:
    config = tiny_run_config(data, epochs, batch_size=32)
    config.train.seeds = [0, 1]
    return config


class CountingData:
    """The grid's data callable, counting the seeds it was asked for."""

    def __init__(self, path):
        self.path = path
        self.calls: list[tuple[str, int]] = []

    def __call__(self, run: GridRun, seed: int):
        self.calls.append((run.folder, seed))
        return load_data(str(self.path), seed=seed)


def test_seed_state_classifies_without_deleting(tmp_path, data):
    config = _config(data)
    run = GridRun("a", config)
    assert seed_state(tmp_path / "absent", run.seed_config(0), False) == "new"
    fit_grid([run], tmp_path, CountingData(data))
    seed_dir = tmp_path / "a" / "seed_0"
    assert seed_state(seed_dir, run.seed_config(0), False) == "done"
    (seed_dir / "metrics.json").unlink()
    assert seed_state(seed_dir, run.seed_config(0), False) == "resume"
    other = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2))
    with pytest.raises(RunError, match="another configuration; pass --overwrite"):
        seed_state(seed_dir, GridRun("a", other).seed_config(0), False)
    assert seed_state(seed_dir, GridRun("a", other).seed_config(0), True) == "replace"
    assert (seed_dir / "config.yaml").exists()  # classified, not deleted


def test_a_grid_run_again_reuses_finished_seeds_and_resumes_unfinished(tmp_path, data):
    runs = [GridRun("a", _config(data)), GridRun("b", _config(data, epochs=2))]
    first = CountingData(data)
    results = fit_grid(runs, tmp_path, first)
    assert first.calls == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert set(results) == {"a", "b"} and set(results["b"].per_seed) == {0, 1}
    summary = pd.read_csv(tmp_path / "b" / "summary.csv")
    pd.testing.assert_frame_equal(summary, results["b"].summary)

    again = CountingData(data)
    reused = fit_grid(runs, tmp_path, again)
    assert again.calls == []
    for folder in ("a", "b"):  # read back from metrics.json
        assert reused[folder].per_seed == results[folder].per_seed
        pd.testing.assert_frame_equal(reused[folder].summary, results[folder].summary)

    (tmp_path / "b" / "seed_1" / "metrics.json").unlink()  # as if killed in its last epoch
    resumed = CountingData(data)
    fit_grid(runs, tmp_path, resumed)
    assert resumed.calls == [("b", 1)]
    assert (tmp_path / "b" / "seed_1" / "metrics.json").exists()


def test_a_conflicting_seed_stops_the_grid_before_anything_trains(tmp_path, data):
    fit_grid([GridRun("a", _config(data))], tmp_path, CountingData(data))
    before = (tmp_path / "a" / "seed_1" / "metrics.json").read_text()
    runs = [GridRun("new", _config(data)), GridRun("a", _config(data, epochs=2))]
    refused = CountingData(data)
    with pytest.raises(RunError, match="seed_0: holds a run with another configuration"):
        fit_grid(runs, tmp_path, refused)
    assert refused.calls == [] and not (tmp_path / "new").exists()
    assert (tmp_path / "a" / "seed_1" / "metrics.json").read_text() == before

    replaced = CountingData(data)
    fit_grid(runs, tmp_path, replaced, overwrite=True)
    assert replaced.calls == [("new", 0), ("new", 1), ("a", 0), ("a", 1)]
    saved = (tmp_path / "a" / "seed_0" / "config.yaml").read_text()
    assert "epochs: 2" in saved


def test_runs_must_have_their_own_folders(tmp_path, data):
    with pytest.raises(ValueError, match="share a folder"):
        fit_grid([GridRun("a", _config(data))] * 2, tmp_path, CountingData(data))


def test_output_that_is_a_file_is_refused(tmp_path, data):
    a_file = tmp_path / "grid"
    a_file.write_text("not a folder")
    with pytest.raises(RunError, match="grid: is a file; expected a folder for the runs"):
        fit_grid([GridRun("a", _config(data))], a_file, CountingData(data))
    assert a_file.read_text() == "not a folder"
