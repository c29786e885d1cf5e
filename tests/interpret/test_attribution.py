"""Attribution methods (i2moe.interpret.attribution): the paper's rule and the written files."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from i2moe import i2moe_model
from i2moe.data.base import ArrayDataset
from i2moe.interpret import attribution
from i2moe.interpret.attribution import (
    DEFAULT_METHOD,
    METHODS,
    Attribution,
    attribute,
    bootstrap_intervals,
    measured_faithfulness,
    paper_rule,
    score_confidence,
    sensitivity_rule,
    soft_rule,
    write_attribution,
)

INTERACTIONS = ["uni_a", "uni_b", "syn", "red"]
NOT_INTERACTIONS = ("intervals", "distinguishable")


def test_paper_rule_on_hand_made_predictions():
    full = np.array([0, 1, 0, 1])
    single = np.array([[0, 0, 1, 1], [1, 1, 1, 1]])  # [M, B]
    # sample 0: only modality 0 agrees; 1: only modality 1; 2: none; 3: both
    assert paper_rule(full, single).tolist() == [0, 1, 2, 3]


def test_paper_rule_generalises_to_three_modalities():
    full = np.array([2, 2, 2])
    single = np.array([[2, 0, 0], [2, 1, 0], [0, 0, 2]])
    # sample 0: two agree -> redundancy; 1: none -> synergy; 2: only modality 2 -> uniqueness
    assert paper_rule(full, single).tolist() == [4, 3, 2]


def test_soft_rule_matches_the_hard_rule_on_certain_agreements_and_sums_to_one():
    agreement = np.array([[1, 0, 0, 1], [0, 1, 0, 1]], dtype=float)
    scores = soft_rule(agreement)
    assert scores.argmax(1).tolist() == [0, 1, 2, 3]
    soft = soft_rule(np.random.default_rng(0).uniform(size=(3, 50)))
    assert soft.shape == (50, 5)
    np.testing.assert_allclose(soft.sum(1), 1.0)
    assert (soft >= 0).all()


def test_sensitivity_rule_on_hand_made_necessities():
    necessity = np.array([[1, 0, 0, 1], [0, 1, 0, 1]], dtype=float)  # [M, B]
    # sample 0: only modality 0 is needed; 1: only modality 1; 2: neither (red); 3: both (syn)
    assert sensitivity_rule(necessity).argmax(1).tolist() == [0, 1, 3, 2]
    three = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=float)
    assert sensitivity_rule(three).argmax(1).tolist() == [0, 4, 3]
    soft = sensitivity_rule(np.random.default_rng(0).uniform(size=(3, 50)))
    np.testing.assert_allclose(soft.sum(1), 1.0)
    assert (soft >= 0).all()


@pytest.fixture
def tiny_model_and_data():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    modalities = {"a": rng.standard_normal((40, 4)), "b": rng.standard_normal((40, 3))}
    dataset = ArrayDataset(modalities, rng.integers(0, 2, 40), "classification")
    model = i2moe_model({"a": (4,), "b": (3,)}, 2, dim=8).eval()
    return model, dataset


def test_every_method_scores_rows_that_sum_to_one(tiny_model_and_data):
    model, dataset = tiny_model_and_data
    results = attribute(model, dataset, METHODS)
    for result in results.values():
        assert result.names == ["uni_a", "uni_b", "syn", "red"]
        assert result.scores.shape == (40, 4)
        np.testing.assert_allclose(result.scores.sum(1), 1.0, atol=1e-6)
        assert sum(result.shares.values()) == pytest.approx(1.0)


def test_write_attribution_files(tiny_model_and_data, tmp_path):
    model, dataset = tiny_model_and_data
    write_attribution(model, dataset, tmp_path, faithfulness={"rule": {"top_correct": 1.0}})
    written = json.loads((tmp_path / "attribution.json").read_text())
    shares = {k: v for k, v in written.items() if k not in NOT_INTERACTIONS}
    assert list(written) == [*INTERACTIONS, *NOT_INTERACTIONS]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert set(written["intervals"]) == set(INTERACTIONS)
    for name, (low, high) in written["intervals"].items():
        assert 0.0 <= low <= shares[name] <= high <= 1.0
    assert isinstance(written["distinguishable"], bool)
    summary = json.loads((tmp_path / "attribution_methods.json").read_text())
    assert summary["method"] == DEFAULT_METHOD
    assert summary["paper_method"] == "weights"
    assert summary["bootstrap"] == {"draws": 1000, "level": 0.95, "seed": 0}
    chosen = summary["methods"][DEFAULT_METHOD]
    assert chosen["shares"] == shares
    assert chosen["intervals"] == written["intervals"]
    assert chosen["distinguishable"] == written["distinguishable"]
    assert set(summary["methods"]) == set(METHODS)
    for method in summary["methods"].values():
        assert {"intervals", "distinguishable", "top", "second", "median_confidence"} <= set(method)
        assert method["second"] != method["top"]
    assert summary["methods"]["rule"]["faithfulness"] == {"top_correct": 1.0}
    table = pd.read_csv(tmp_path / "attribution.csv")
    assert len(table) == 40
    assert list(table.columns[:5]) == ["sample", *INTERACTIONS]
    scores = table[INTERACTIONS].to_numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    assert set(table["top"]) <= set(INTERACTIONS)
    ordered = np.sort(scores, axis=1)
    np.testing.assert_allclose(table["confidence"], ordered[:, -1] - ordered[:, -2], atol=1e-9)
    assert table["entropy"].between(0.0, 1.0).all()
    assert {"top_weights", "top_rule_hard", "top_sensitivity"} - {f"top_{DEFAULT_METHOD}"} <= set(
        table.columns
    )


def _scores(codes, num_interactions=4, noise=0.0, seed=0):
    """Per-sample scores [N, E] peaked on each sample's interaction code, rows summing to 1."""
    rng = np.random.default_rng(seed)
    scores = np.eye(num_interactions)[codes] + noise * rng.uniform(size=(len(codes), 4))
    return scores / scores.sum(1, keepdims=True)


def test_bootstrap_intervals_contain_the_share_and_narrow_with_more_samples():
    rng = np.random.default_rng(0)
    few = rng.dirichlet(np.ones(4), size=30)
    many = rng.dirichlet(np.ones(4), size=3000)
    for scores in (few, many):
        intervals = bootstrap_intervals(scores)
        share = scores.mean(0)
        assert ((intervals[:, 0] <= share) & (share <= intervals[:, 1])).all()
    widths = [np.diff(bootstrap_intervals(s), axis=1).ravel() for s in (few, many)]
    assert (widths[1] < widths[0] / 4).all()  # about sqrt(100) = 10 times narrower
    np.testing.assert_array_equal(
        bootstrap_intervals(few, seed=3), bootstrap_intervals(few, seed=3)
    )
    assert not np.array_equal(bootstrap_intervals(few, seed=3), bootstrap_intervals(few, seed=4))


def test_bootstrap_intervals_cover_the_true_share_about_as_often_as_stated():
    rng = np.random.default_rng(0)
    truth = np.array([0.5, 0.2, 0.2, 0.1])
    covered = 0
    for repeat in range(150):
        codes = rng.choice(4, size=80, p=truth)
        intervals = bootstrap_intervals(np.eye(4)[codes], draws=300, seed=repeat)
        covered += intervals[0, 0] <= truth[0] <= intervals[0, 1]
    assert 0.86 <= covered / 150 <= 0.99


def test_bootstrap_with_fewer_than_two_samples_knows_nothing():
    np.testing.assert_array_equal(bootstrap_intervals(np.eye(4)[:1]), np.tile([0.0, 1.0], (4, 1)))
    one = Attribution("weights", INTERACTIONS, np.eye(4)[:1])
    assert not one.distinguishable()


def test_distinguishable_on_a_clear_case_and_not_on_a_fifty_fifty_case():
    clear = Attribution("rule", INTERACTIONS, _scores(np.r_[np.full(150, 2), np.full(50, 3)]))
    assert clear.top == "syn" and clear.runner_up == "red"
    assert clear.distinguishable()
    even = Attribution("rule", INTERACTIONS, _scores(np.r_[np.full(100, 2), np.full(100, 3)]))
    assert set(even.shares) == set(INTERACTIONS) and even.shares["syn"] == pytest.approx(0.5)
    assert not even.distinguishable()
    intervals = even.intervals()
    assert intervals["syn"][0] < 0.5 < intervals["syn"][1]


def test_score_confidence_is_the_margin_and_the_normalised_entropy():
    scores = np.array(
        [[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0], [0.7, 0.2, 0.1, 0]]
    )
    margin, entropy = score_confidence(scores)
    np.testing.assert_allclose(margin, [1.0, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(entropy[:3], [0.0, 1.0, 0.5])
    assert 0.0 < entropy[3] < 1.0


def test_packaged_scores_fill_faithfulness_by_default(tiny_model_and_data, tmp_path):
    model, dataset = tiny_model_and_data
    packaged = measured_faithfulness(model)
    assert set(packaged) == set(METHODS)
    assert {"top_correct", "mixture_agreement", "training"} <= set(packaged[DEFAULT_METHOD])
    assert packaged[DEFAULT_METHOD]["training"] == "paper"
    model.evidence_weight = 1.0
    assert measured_faithfulness(model)[DEFAULT_METHOD]["training"] == "evidence"
    model.evidence_weight = 0.0
    write_attribution(model, dataset, tmp_path)
    summary = json.loads((tmp_path / "attribution_methods.json").read_text())
    for name in METHODS:
        assert summary["methods"][name]["faithfulness"] == packaged[name]


def test_regression_model_is_attributed_by_its_weights(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    modalities = {"a": rng.standard_normal((12, 4)), "b": rng.standard_normal((12, 3))}
    dataset = ArrayDataset(modalities, rng.standard_normal(12), "regression")
    model = i2moe_model({"a": (4,), "b": (3,)}, 1, dim=8, task="regression").eval()
    results = write_attribution(model, dataset, tmp_path, method="weights")
    assert list(results) == ["weights"]
    with pytest.raises(ValueError, match="classification"):
        attribute(model, dataset, ["rule"])


def test_unknown_method_is_refused(tiny_model_and_data, tmp_path):
    model, dataset = tiny_model_and_data
    with pytest.raises(ValueError, match="does not apply"):
        write_attribution(model, dataset, tmp_path, method="shapley")


def test_default_method_is_the_best_measured_one_for_the_training(
    tiny_model_and_data, tmp_path, monkeypatch
):
    model, _ = tiny_model_and_data
    scores = {
        "benchmark": "test",
        "trainings": {
            "paper": {
                "weights": {"top_correct": 0.4, "mixture_agreement": 0.1},
                "rule": {"top_correct": 0.8, "mixture_agreement": 0.8},
                "sensitivity": {"top_correct": 0.8, "mixture_agreement": 0.5},
            },
            "evidence": {
                "weights": {"top_correct": 0.9, "mixture_agreement": 0.9},
                "rule": {"top_correct": 0.7, "mixture_agreement": 0.9},
            },
        },
    }
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(scores))
    monkeypatch.setattr(attribution, "SCORES_FILE", path)
    assert attribution.default_method(model) == "rule"  # ties on top_correct: mixtures decide
    model.evidence_weight = 1.0
    assert attribution.default_method(model) == "weights"
    model.evidence_weight = 0.0
    monkeypatch.setattr(attribution, "SCORES_FILE", tmp_path / "absent.json")
    assert attribution.default_method(model) == DEFAULT_METHOD
    monkeypatch.setattr(model, "task", "regression")
    assert attribution.default_method(model) == "weights"
