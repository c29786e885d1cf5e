"""Faithfulness benchmark (i2moe.experiments.faithfulness) and the evidence-supervised reweighting it
measures (i2moe.losses.evidence_targets / evidence_loss, i2moe.model evidence_weight)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from i2moe import i2moe_model, total_loss
from i2moe.experiments.faithfulness import (
    Case,
    _datasets,
    accuracy_cost,
    check_ground_truth,
    make_data,
    scores,
    suite,
    summarise,
    train_model,
    true_interaction,
)
from i2moe.interpret.attribution import DEFAULT_METHOD, METHODS, write_attribution
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


def test_summary_counts_learned_data_sets_and_mixture_agreement():
    import pandas as pd

    rows = [
        # dataset, kind, method, top_correct, learned, sample_agreement
        ("a", "redundancy", "rule", True, True, 1.0),
        ("b", "synergy_parity", "rule", False, False, 1.0),
        ("c", "mixed", "rule", True, True, 0.75),
        ("a", "redundancy", "weights", False, True, 0.0),
        ("b", "synergy_parity", "weights", False, False, 1.0),
        ("c", "mixed", "weights", True, True, 0.25),
    ]
    frame = pd.DataFrame(
        rows, columns=["dataset", "kind", "method", "top_correct", "learned", "sample_agreement"]
    ).assign(training="paper", truth_share=0.5, accuracy=0.9)
    table = summarise(frame).set_index("method")
    assert table.loc["rule", "datasets"] == 3
    assert table.loc["rule", "top_correct"] == pytest.approx(2 / 3)
    assert table.loc["rule", "top_correct_learned"] == pytest.approx(1.0)
    assert table.loc["rule", "learned"] == pytest.approx(2 / 3)
    assert table.loc["weights", "mixture_agreement"] == pytest.approx(0.25)
    packaged = scores(summarise(frame))
    assert packaged["paper"]["rule"] == {
        "top_correct": 0.667,
        "top_correct_learned": 1.0,
        "mixture_agreement": 0.75,
        "datasets": 3,
    }


def test_accuracy_cost_trains_both_trainings_per_seed(tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, **make_data(Case("redundancy", 2, "vector"), num_samples=120, seed=0))
    frame = accuracy_cost(str(path), seeds=(0,), epochs=1, dim=8)
    assert frame["training"].tolist() == ["paper", "evidence"]
    assert frame["test_accuracy"].between(0, 1).all()


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
def test_end_to_end_default_method_names_the_true_interaction(tmp_path):
    # Redundancy under the paper's training (what `i2moe fit` does): the measured default
    # method names it, where the paper's weights put it on a uniqueness expert.
    arrays = make_data(Case("redundancy", 2, "vector"), num_samples=800, seed=0)
    specs, splits = _datasets(arrays)
    model = train_model(specs, splits, evidence_weight=0.0, epochs=6, seed=0)
    write_attribution(model, splits["test"], tmp_path, reference=splits["train"])
    summary = json.loads((tmp_path / "attribution_methods.json").read_text())
    assert summary["method"] == DEFAULT_METHOD
    assert summary["methods"][DEFAULT_METHOD]["faithfulness"]["training"] == "paper"
    shares = json.loads((tmp_path / "attribution.json").read_text())
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


def test_train_model_defaults_drop_no_units():
    # dropout 0 by default (it keeps 3-4-modality parity at chance, docs/faithfulness.md)
    arrays = make_data(Case("synergy_parity", 2, "vector"), num_samples=200, seed=0)
    specs, splits = _datasets(arrays)
    model = train_model(specs, splits, evidence_weight=0.0, epochs=2, seed=0)
    from i2moe.fusion.transformer import TransformerFusion

    parts = [model.encoders, *(m for m in model.modules() if isinstance(m, TransformerFusion))]
    drops = [m for part in parts for m in part.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(parts) > 1 and drops and all(m.p == 0.0 for m in drops)


def test_suite_sizes_follow_the_number_of_modalities(monkeypatch):
    from i2moe import faithfulness

    seen = []

    def fake_case(case, *, num_samples, epochs, **_):
        seen.append((case.num_modalities, num_samples, epochs))
        row = {"training": "paper", "method": "rule", "top": "red", "top_correct": True}
        row |= {"learned": True, "truth_share": 1.0, "accuracy": 1.0, "kind": case.kind}
        return [row | {"sample_agreement": None}]

    monkeypatch.setattr(faithfulness, "evaluate_case", fake_case)
    options = {"embeddings": ("vector",), "kinds": ("redundancy",), "check_pid": False}
    faithfulness.run_benchmark(modalities=(2, 3, 4), **options)
    assert seen == [(n, *faithfulness.SUITE_SIZES[n]) for n in (2, 3, 4)]
    assert faithfulness.SUITE_SIZES[4][1] > faithfulness.SUITE_SIZES[2][1]
    seen.clear()
    faithfulness.run_benchmark(modalities=(4,), num_samples=100, epochs=1, **options)
    assert seen == [(4, 100, 1)]
