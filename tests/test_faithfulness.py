"""Faithfulness benchmark (i2moe.faithfulness) and the evidence-supervised reweighting it
measures (i2moe.losses.evidence_targets / evidence_loss, i2moe.model evidence_weight)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from i2moe import i2moe_model, total_loss
from i2moe.faithfulness import (
    Case,
    _datasets,
    check_ground_truth,
    make_data,
    suite,
    train_model,
    true_interaction,
)
from i2moe.interpret.attribution import DEFAULT_METHOD, write_attribution
from i2moe.losses import evidence_targets


def test_suite_covers_kinds_modalities_and_embeddings():
    cases = suite()
    assert len(cases) == 6 * 3 * 2
    assert {c.num_modalities for c in cases} == {2, 3, 4}
    assert {c.embedding for c in cases} == {"vector", "tokens"}


def test_mixture_carries_its_mechanism_as_a_cue():
    arrays = make_data(Case("mixed", 2, "tokens"), num_samples=400, seed=0)
    assert arrays["mod0"].shape == (400, 4, 16 + 4)
    cue = arrays["mod0"][:, 0, 16:].argmax(1)
    assert (cue == arrays["interaction"]).mean() > 0.95
    assert true_interaction(arrays) == "syn"


def test_circular_synergy_is_balanced_and_curved():
    arrays = make_data(Case("synergy_circular", 3, "vector"), num_samples=2000, seed=0)
    assert 0.4 < arrays["y"].mean() < 0.6
    assert true_interaction(arrays) == "syn"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("uniqueness_last", "uni_mod1"),
        ("redundancy", "red"),
        ("synergy_parity", "syn"),
        ("synergy_circular", "syn"),
        ("mixed", "syn"),
    ],
)
def test_ground_truth_is_verified_by_pid(kind, expected):
    pytest.importorskip("dit")
    check = check_ground_truth(make_data(Case(kind, 2, "vector"), num_samples=800, seed=0))
    assert check["pid"] == expected
    assert check["pid_matches"]


def _passes(fits):
    """Outputs [E, P, B=1, C=2] whose true-class (0) probability per pass is given."""
    probability = torch.tensor(fits, dtype=torch.float).clamp(1e-4, 1 - 1e-4)
    logits = torch.stack([probability.log(), (1 - probability).log()], -1)
    return logits.unsqueeze(2)


def test_evidence_targets_name_the_interaction():
    target = torch.tensor([0])
    # experts uni_0, uni_1, syn, red; passes intact, without 0, without 1. Label = modality 0:
    # every expert is at chance without modality 0 and right without modality 1.
    unique_0 = _passes([[1, 0.5, 1]] * 4)
    synergy = _passes([[1, 0.5, 0.5], [1, 0.5, 0.5], [1, 0.5, 0.5], [1, 0.5, 0.5]])
    redundancy = _passes([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]])
    for outputs, expected in ((unique_0, 0), (synergy, 2), (redundancy, 3)):
        weights = evidence_targets(outputs, target, "classification")
        assert weights.shape == (1, 4)
        assert weights.sum().item() == pytest.approx(1.0)
        assert weights.argmax().item() == expected


def test_evidence_loss_trains_the_reweighter_and_every_expert():
    torch.manual_seed(0)
    model = i2moe_model({"a": (4,), "b": (3,)}, 2, dim=8, evidence_weight=1.0).train()
    batch = {"a": torch.randn(6, 4), "b": torch.randn(6, 3)}
    output = model(batch)
    assert output.evidence is not None and output.evidence.outputs.shape[:2] == (4, 3)
    target = torch.randint(0, 2, (6,))
    total_loss(output, target, "classification", interaction_weight=0.5).total.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
    model.eval()
    assert model(batch).evidence is None


def test_paper_training_is_unchanged_by_default():
    model = i2moe_model({"a": (4,), "b": (3,)}, 2, dim=8).train()
    assert model({"a": torch.randn(3, 4), "b": torch.randn(3, 3)}).evidence is None


@pytest.mark.slow
def test_end_to_end_default_method_names_the_unique_modality(tmp_path):
    arrays = make_data(Case("uniqueness_last", 2, "vector"), num_samples=600, seed=0)
    specs, splits = _datasets(arrays)
    model = train_model(specs, splits, evidence_weight=1.0, epochs=6, seed=0)
    write_attribution(model, splits["test"], tmp_path, reference=splits["train"])
    summary = json.loads((tmp_path / "attribution_methods.json").read_text())
    assert summary["method"] == DEFAULT_METHOD
    shares = json.loads((tmp_path / "attribution.json").read_text())
    assert max(shares, key=shares.get) == "uni_mod1"


@pytest.mark.slow
def test_command_line_writes_the_results_table(tmp_path):
    entry = "import sys; from i2moe.cli import main; sys.exit(main())"  # the `i2moe` script
    command = [sys.executable, "-c", entry, "faithfulness", "--modalities", "2"]
    command += ["--embeddings", "vector", "--kinds", "synergy_parity", "--samples", "500"]
    command += ["--epochs", "5", "--no-pid", "--output", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "| training | method |" in result.stdout
    table = (tmp_path / "summary.md").read_text()
    assert "evidence" in table and "paper" in table
    results = np.genfromtxt(tmp_path / "results.csv", delimiter=",", names=True, dtype=None)
    assert len(results) == 2 * 3
