"""The benchmark over the suite and the accuracy cost (i2moe.experiments.faithfulness.run),
end to end through the command line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from i2moe.experiments.faithfulness import run as faithfulness
from i2moe.experiments.faithfulness.datasets import SUITE_SIZES, Case, make_data, suite_bundle
from i2moe.experiments.faithfulness.run import accuracy_cost
from i2moe.experiments.faithfulness.training import train_model
from i2moe.interpret.attribution import DEFAULT_METHOD, METHODS, write_attribution


def test_accuracy_cost_trains_both_trainings_per_seed(tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, **make_data(Case("redundancy", 2, "vector"), num_samples=120, seed=0))
    frame = accuracy_cost(str(path), seeds=(0,), epochs=1, dim=8)
    assert frame["training"].tolist() == ["paper", "evidence"]
    assert frame["test_accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_end_to_end_default_method_names_the_true_interaction(tmp_path):
    # Redundancy under the paper's training (what `i2moe fit` does): the measured default
    # method names it, where the paper's weights put it on a uniqueness expert.
    arrays = make_data(Case("redundancy", 2, "vector"), num_samples=800, seed=0)
    bundle = suite_bundle(arrays)
    model = train_model(bundle, evidence_weight=0.0, epochs=6, seed=0).model
    write_attribution(model, bundle.test, tmp_path, reference=bundle.train)
    summary = json.loads((tmp_path / "attribution_methods.json").read_text())
    assert summary["method"] == DEFAULT_METHOD
    assert summary["methods"][DEFAULT_METHOD]["faithfulness"]["training"] == "paper"
    attribution = json.loads((tmp_path / "attribution.json").read_text())
    shares = {k: v for k, v in attribution.items() if k not in ("intervals", "distinguishable")}
    assert max(shares, key=shares.get) == "red"
    assert shares["red"] > 0.6


@pytest.mark.slow
def test_command_line_writes_the_results_table(tmp_path):
    entry = "import sys; from i2moe.cli import main; sys.exit(main())"  # the `i2moe` script
    command = [sys.executable, "-c", entry, "faithfulness", "--modalities", "2"]
    command += ["--embeddings", "vector", "--kinds", "synergy_parity", "--samples", "300"]
    command += ["--epochs", "2", "--no-pid", "--output", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "| training | method |" in result.stdout
    table = (tmp_path / "summary.md").read_text()
    assert "evidence" in table and "paper" in table
    results = np.genfromtxt(tmp_path / "results.csv", delimiter=",", names=True, dtype=None)
    assert len(results) == 2 * len(METHODS)


def test_suite_sizes_follow_the_number_of_modalities(monkeypatch):
    seen = []

    def fake_case(case, *, num_samples, epochs, **_):
        seen.append((case.num_modalities, num_samples, epochs))
        row = {"training": "paper", "method": "rule", "top": "red", "top_correct": True}
        row |= {"learned": True, "truth_share": 1.0, "accuracy": 1.0, "kind": case.kind}
        return [row | {"sample_agreement": None}]

    monkeypatch.setattr(faithfulness, "evaluate_case", fake_case)
    options = {"embeddings": ("vector",), "kinds": ("redundancy",), "check_pid": False}
    faithfulness.run_benchmark(modalities=(2, 3, 4), **options)
    assert seen == [(n, *SUITE_SIZES[n]) for n in (2, 3, 4)]
    assert SUITE_SIZES[4][1] > SUITE_SIZES[2][1]
    seen.clear()
    faithfulness.run_benchmark(modalities=(4,), num_samples=100, epochs=1, **options)
    assert seen == [(4, 100, 1)]
