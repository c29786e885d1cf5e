"""The explanation's tables (i2moe.interpret.tables), against hand counts."""

import math

import pytest
import torch

from i2moe.interpret.tables import (
    agreement_table,
    expert_performance,
    ordered_unique,
    sensitivity_tables,
    weight_statistics,
)

from .conftest import EXPERTS, WEIGHTS, hand_outputs


def test_agreement_table_counts_and_percentages():
    agree = torch.tensor([True, True, False, False, False])
    correct = torch.tensor([True, False, True, False, True])
    percent, counts = agreement_table(agree, correct)
    assert counts.to_numpy().tolist() == [[1, 1], [2, 1]]
    assert list(counts.index) == ["agree", "disagree"]
    assert list(counts.columns) == ["correct", "incorrect"]
    assert percent.loc["disagree", "correct"] == pytest.approx(40.0)
    assert percent.to_numpy().sum() == pytest.approx(100.0)


def test_per_expert_accuracy_matches_a_hand_count():
    performance = expert_performance(hand_outputs())
    expected = {"model": 0.6, "uni_a": 0.8, "uni_b": 0.2, "syn": 0.8, "red": 0.4}
    assert list(performance.index) == list(expected)
    for name, accuracy in expected.items():
        assert performance.loc[name, "accuracy"] == pytest.approx(accuracy)
    assert {"auroc", "f1_macro", "f1_micro"} <= set(performance.columns)


def test_weight_statistics_with_extra_groups():
    table = weight_statistics(WEIGHTS, EXPERTS, {"interaction": ["syn", "red", "syn", "red", "x"]})
    syn = table[(table.group == "syn") & (table.expert == "red")]
    assert float(syn["mean"].iloc[0]) == pytest.approx((0.25 + 0.1) / 2)
    with pytest.raises(ValueError, match="labels"):
        weight_statistics(WEIGHTS, EXPERTS, {"bad": ["a"]})


def test_ordered_unique_puts_the_preferred_labels_first():
    labels = ["a", "10", "b", "2"]
    assert ordered_unique(labels, preferred=["b", "z"]) == ["b", "10", "2", "a"]  # text order
    assert ordered_unique(["10", "2", "1"]) == ["1", "2", "10"]  # numbers sort as numbers


def test_sensitivity_tables_leave_out_missing_modalities():
    outputs = hand_outputs()
    outputs.change[1, 0] = math.nan
    outputs.flip[1, 0] = math.nan
    outputs.flip[0, 0] = 1.0
    per_sample, per_modality = sensitivity_tables(outputs)
    assert list(per_sample.columns) == ["sample", "id", "change_a", "flip_a", "change_b", "flip_b"]
    assert per_sample["id"].tolist() == [f"id{i}" for i in range(5)]
    rows = per_modality.set_index("modality")
    assert rows.loc["a", "samples"] == 4 and rows.loc["b", "samples"] == 5
    kept = torch.cat([outputs.change[:1, 0], outputs.change[2:, 0]])
    assert rows.loc["a", "mean_change"] == pytest.approx(float(kept.mean()))
    assert rows.loc["a", "flip_share"] == pytest.approx(0.25)
    assert rows.loc["b", "uni_weight_mean"] == pytest.approx(float(WEIGHTS[:, 1].mean()))
    without_uniqueness = hand_outputs(
        torch.zeros(5, 2, 2), torch.full((5, 2), 0.5), expert_names=["syn", "red"]
    )
    assert sensitivity_tables(without_uniqueness)[1]["uni_weight_mean"].isna().all()
