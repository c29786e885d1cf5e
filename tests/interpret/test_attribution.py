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
    attribute,
    measured_faithfulness,
    paper_rule,
    sensitivity_rule,
    soft_rule,
    write_attribution,
)


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
    shares = json.loads((tmp_path / "attribution.json").read_text())
    assert list(shares) == ["uni_a", "uni_b", "syn", "red"]
    assert sum(shares.values()) == pytest.approx(1.0)
    summary = json.loads((tmp_path / "attribution_methods.json").read_text())
    assert summary["method"] == DEFAULT_METHOD
    assert summary["paper_method"] == "weights"
    assert summary["methods"][DEFAULT_METHOD]["shares"] == shares
    assert set(summary["methods"]) == set(METHODS)
    assert summary["methods"]["rule"]["faithfulness"] == {"top_correct": 1.0}
    table = pd.read_csv(tmp_path / "attribution.csv")
    assert len(table) == 40
    assert list(table.columns[:5]) == ["sample", "uni_a", "uni_b", "syn", "red"]
    np.testing.assert_allclose(table[["uni_a", "uni_b", "syn", "red"]].sum(axis=1), 1.0, atol=1e-6)
    assert set(table["top"]) <= {"uni_a", "uni_b", "syn", "red"}
    assert {"top_weights", "top_rule_hard", "top_sensitivity"} - {f"top_{DEFAULT_METHOD}"} <= set(
        table.columns
    )


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
