"""Training on several devices: Lightning's DDP launcher starts the command again in every
further process, and only the primary process may check and write the run folder."""

import json
import os
import subprocess
import sys

import pytest

from i2moe.data.synth import write_synth
from i2moe.runs.evaluation import evaluate_run
from i2moe.training.distributed import is_primary_process

RANK_VARIABLES = ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "LOCAL_RANK", "NODE_RANK")


@pytest.mark.parametrize(
    ("environment", "primary"),
    [
        ({}, True),
        ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, True),  # rank 0 after Lightning's launch
        ({"LOCAL_RANK": "1"}, False),  # a process Lightning's launcher started
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),  # first process of a second node
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),  # torchrun
        ({"RANK": "3", "LOCAL_RANK": "1"}, False),
        ({"SLURM_PROCID": "2"}, False),
    ],
)
def test_primary_process_is_global_rank_zero(monkeypatch, environment, primary):
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert is_primary_process() is primary


def on_two_processes(arguments: list[str]) -> subprocess.CompletedProcess:
    """Run an ``i2moe`` command with DDP over 2 CPU processes (tiny model); it must succeed."""
    command = [sys.executable, "-m", "i2moe", "--quiet", *arguments]
    command += ["--dim", "8", "--batch-size", "16", "--accelerator", "cpu"]
    command += ["--devices", "2", "--strategy", "ddp"]
    environment = {k: v for k, v in os.environ.items() if k not in RANK_VARIABLES}
    environment["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_fit_on_two_cpu_processes_with_ddp(tmp_path):
    data = tmp_path / "d.npz"
    write_synth(data, "mixed", num_modalities=2, num_samples=200, dim=6, seed=0)
    run = tmp_path / "run"
    fit = ["fit", "--data", str(data), "--output", str(run), "--seeds", "0", "1", "--epochs", "2"]
    on_two_processes(fit)
    assert (run / "summary.md").exists()
    for seed in (0, 1):
        seed_dir = run / f"seed_{seed}"
        metrics = json.loads((seed_dir / "metrics.json").read_text())
        # The test split (30 samples) divides evenly over the 2 processes, so the metrics
        # synchronised across them equal one process's evaluation of the whole split.
        alone = evaluate_run(seed_dir)
        assert metrics["test"]["accuracy"] == pytest.approx(alone["accuracy"], abs=1e-6)
        assert metrics["test"]["auroc"] == pytest.approx(alone["auroc"], abs=1e-6)
        assert (seed_dir / "interpretation" / "report.html").exists()


@pytest.mark.slow
def test_compare_on_two_cpu_processes_writes_its_table_once(tmp_path):
    data = tmp_path / "d.npz"
    write_synth(data, "redundancy", num_modalities=2, num_samples=120, dim=6, seed=0)
    output = tmp_path / "cmp"
    compare = ["compare", "--data", str(data), "--output", str(output), "--epochs", "1"]
    done = on_two_processes([*compare, "--fusions", "lf", "--ablations"])
    assert "error" not in done.stderr  # no further process complained
    assert done.stdout.count("| model |") == 1  # the table, printed by rank 0 only
    assert sorted(p.name for p in output.iterdir()) == [
        "I2MoE-lf",
        "lf__vanilla",
        "table.csv",
        "table.md",
    ]
