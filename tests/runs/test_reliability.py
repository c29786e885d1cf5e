"""End-to-end reliability of ``i2moe fit``: missing modalities, killed and resumed runs,
repeated runs, and a run writing only inside its output folder (docs/reliability.md).

These run the real command line on tiny generated data. The reference run is trained once per
module; the others are compared with it bit for bit (CPU, one thread).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import i2moe.runs.explain as interpret_cli
from i2moe.cli import main
from i2moe.data.synth import generate

pytestmark = pytest.mark.slow

EPOCHS = 12
FIT = ("--quiet", "fit", "--epochs", str(EPOCHS), "--dim", "8", "--batch-size", "16", "--seed", "3")


def _data_with_gaps(path: Path, *, nan_rows: bool, num_samples: int = 300) -> Path:
    """Mixed interactions over 3 modalities; about a fifth of the samples lack one modality,
    marked by all-NaN rows (``nan_rows``) or by an ``observed`` array."""
    arrays = generate("mixed", num_modalities=3, num_samples=num_samples, dim=4, seed=0)
    lacking = np.random.default_rng(1).random(num_samples) < 0.2
    if nan_rows:
        arrays["mod0"][lacking] = np.nan
    else:
        observed = np.ones((num_samples, 3), dtype=bool)
        observed[lacking, 1] = False
        arrays["observed"] = observed
    np.savez(path, **arrays)
    return path


def _no_interpretation(monkeypatch) -> None:
    # The interpretation (figures) takes most of a tiny run's time and is tested elsewhere.
    monkeypatch.setattr(interpret_cli, "write_interpretation", lambda *args, **kwargs: None)


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run, started with the working directory in an empty folder."""
    root = tmp_path_factory.mktemp("reference")
    (root / "data").mkdir()
    (root / "work").mkdir()
    data = _data_with_gaps(root / "data" / "gaps.npz", nan_rows=False)
    previous = Path.cwd()
    os.chdir(root / "work")
    try:
        assert main([*FIT, "--data", str(data), "--output", "run"]) == 0
    finally:
        os.chdir(previous)
    return root, data, root / "work" / "run"


def test_a_run_writes_nothing_outside_its_output_folder(reference):
    root, data, run = reference
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if "run" not in p.parts)
    assert found == ["data", "data/gaps.npz", "work"]  # no lightning_logs/, no stray files
    assert (run / "metrics.json").exists() and (run / "interpretation" / "report.html").exists()
    leftovers = [p.name for p in run.rglob("*.tmp")]
    assert leftovers == []


def test_the_same_command_twice_gives_identical_results(reference, tmp_path, monkeypatch):
    _, data, run = reference
    _no_interpretation(monkeypatch)
    again = tmp_path / "again"
    assert main([*FIT, "--data", str(data), "--output", str(again)]) == 0
    assert json.loads((again / "metrics.json").read_text()) == json.loads(
        (run / "metrics.json").read_text()
    )
    assert (again / "predictions.csv").read_bytes() == (run / "predictions.csv").read_bytes()
    before, after = (
        _state_dict(run / "checkpoints" / "last.ckpt"),
        _state_dict(again / "checkpoints" / "last.ckpt"),
    )
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_a_killed_run_resumes_to_the_result_of_an_uninterrupted_one(
    reference, tmp_path, monkeypatch
):
    _, data, run = reference
    resumed = tmp_path / "resumed"
    command = [sys.executable, "-m", "i2moe.cli", *FIT, "--data", str(data), "--output"]
    # One thread, like the reference run (pytest's conftest), so the arithmetic is identical.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [*command, str(resumed)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    last = resumed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint: {process.stderr.read()}")
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    time.sleep(0.3)  # usually a few epochs later
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    killed_after = torch.load(last, weights_only=True)["epoch"]
    assert not (resumed / "metrics.json").exists(), "the run finished before it was killed"
    assert killed_after < EPOCHS - 1

    _no_interpretation(monkeypatch)
    assert main([*FIT, "--data", str(data), "--output", str(resumed), "--resume"]) == 0
    assert json.loads((resumed / "metrics.json").read_text()) == json.loads(
        (run / "metrics.json").read_text()
    )
    assert (resumed / "predictions.csv").read_bytes() == (run / "predictions.csv").read_bytes()
    before, after = _state_dict(run / "checkpoints" / "last.ckpt"), _state_dict(last)
    assert all(torch.equal(before[key], after[key]) for key in before)
    # The log keeps the epochs of the killed attempt and has each epoch's validation once.
    logged = pd.read_csv(resumed / "logs" / "metrics.csv")
    reference_log = pd.read_csv(run / "logs" / "metrics.csv")
    val = ["epoch", "step", "val/loss", "val/accuracy"]
    pd.testing.assert_frame_equal(
        logged[val].dropna().reset_index(drop=True),
        reference_log[val].dropna().reset_index(drop=True),
    )


@pytest.mark.parametrize("nan_rows", [True, False], ids=["nan-rows", "observed-array"])
def test_missing_modalities_through_fit_predict_and_explain(tmp_path, monkeypatch, nan_rows):
    data = _data_with_gaps(tmp_path / "gaps.npz", nan_rows=nan_rows, num_samples=200)
    lacking = "mod0" if nan_rows else "mod1"
    run = tmp_path / "run"
    if not nan_rows:
        _no_interpretation(monkeypatch)  # explained below with the command
    fit = ["--quiet", "fit", "--epochs", "2", "--dim", "8", "--batch-size", "32"]
    assert main([*fit, "--data", str(data), "--output", str(run)]) == 0

    first, second = tmp_path / "p1.csv", tmp_path / "p2.csv"
    for output in (first, second):
        assert (
            main(["predict", "--run", str(run), "--data", str(data), "--output", str(output)]) == 0
        )
    predictions = pd.read_csv(first)
    assert len(predictions) == 200
    observed = predictions[f"observed_{lacking}"]
    assert 0 < (~observed).sum() < 100 and predictions["observed_mod2"].all()
    # Random masking at evaluation: the missing modality's noise is keyed by the sample, so
    # predicting twice gives the same file.
    assert first.read_bytes() == second.read_bytes()
    weights = predictions.filter(like="weight_").to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)

    if not nan_rows:
        assert main(["--quiet", "explain", "--run", str(run), "--examples", "1"]) == 0
    table = pd.read_csv(run / "interpretation" / "expert_outputs.csv")
    missing = table.groupby("sample")["missing"].first().fillna("")
    test_rows = predictions[predictions["split"] == "test"]
    assert (missing == lacking).sum() == (~test_rows[f"observed_{lacking}"]).sum() > 0
    explained = pd.read_csv(run / "interpretation" / "weights.csv").drop(columns="sample")
    np.testing.assert_allclose(
        explained.to_numpy(), test_rows.filter(like="weight_").to_numpy(), atol=1e-5
    )
