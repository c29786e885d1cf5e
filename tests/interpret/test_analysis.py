"""The explanation (i2moe.interpret.analysis): hand-made outputs checked against hand counts."""

import json

import pytest
import torch

from i2moe.interpret.analysis import Explanation, analyse

from .conftest import (
    EXPERTS,
    LABEL_SET_OUTPUTS,
    LABEL_SET_TARGETS,
    LABEL_SET_WEIGHTS,
    MODALITIES,
    hand_explanation,
    hand_outputs,
)


def test_final_outputs_and_correctness_match_hand_values():
    explanation = hand_explanation()
    torch.testing.assert_close(explanation.prediction[2], torch.tensor([1.1, 0.2]))
    torch.testing.assert_close(explanation.prediction[3], torch.tensor([0.7, 0.4]))
    assert explanation.correct.tolist() == [True, False, True, False, True]
    assert explanation.agree.tolist() == [True, True, False, False, False]


def test_the_explanation_carries_the_model_outputs_unchanged():
    outputs = hand_outputs()
    explanation = analyse(outputs)
    assert isinstance(explanation, Explanation)
    assert explanation.task == "classification"
    assert explanation.expert_names == EXPERTS and explanation.modality_names == MODALITIES
    assert explanation.sample_ids == outputs.sample_ids
    for name in ("prediction", "expert_outputs", "weights", "target", "observed", "change"):
        assert getattr(explanation, name) is getattr(outputs, name)
    assert explanation.output_names == ["0", "1"] and explanation.class_names is None


def test_contributions_sum_to_the_final_output():
    explanation = hand_explanation()
    torch.testing.assert_close(explanation.contributions.sum(1), explanation.prediction)
    table = explanation.local_table()
    assert len(table) == 5 * (len(EXPERTS) + 1)
    for sample, rows in table.groupby("sample"):
        experts, final = rows[rows.expert != "final"], rows[rows.expert == "final"]
        for name in ("neg", "pos"):
            column = f"contribution_{name}"
            assert experts[column].sum() == pytest.approx(float(final[column].iloc[0]), abs=1e-6)
            assert float(final[f"output_{name}"].iloc[0]) == pytest.approx(
                float(explanation.prediction[sample, ["neg", "pos"].index(name)]), abs=1e-6
            )
        assert float(final["weight"].iloc[0]) == pytest.approx(1.0)
    row = table[(table["sample"] == 2) & (table.expert == "uni_a")].iloc[0]
    assert row["weight"] == pytest.approx(0.5)
    assert row["contribution_neg"] == pytest.approx(0.5)
    assert row["predicted"] == "neg" and row["target"] == "neg" and row["id"] == "id2"


def test_agreement_table_matches_a_hand_count_and_sums_to_100():
    explanation = hand_explanation()
    counts = explanation.agreement_counts
    assert counts.loc["agree", "correct"] == 1
    assert counts.loc["agree", "incorrect"] == 1
    assert counts.loc["disagree", "correct"] == 2
    assert counts.loc["disagree", "incorrect"] == 1
    assert explanation.agreement.loc["disagree", "correct"] == pytest.approx(40.0)
    assert explanation.agreement.to_numpy().sum() == pytest.approx(100.0)


def test_weight_statistics_overall_and_by_class():
    explanation = hand_explanation()
    overall = explanation.weight_summary.set_index("expert")
    assert overall.loc["uni_a", "mean"] == pytest.approx(0.24)
    assert overall.loc["uni_a", "median"] == pytest.approx(0.25)
    assert overall.loc["uni_a", "min"] == pytest.approx(0.1)
    assert overall.loc["uni_a", "max"] == pytest.approx(0.5)
    groups = explanation.weight_groups.set_index(["breakdown", "group", "expert"])
    assert groups.loc[("class", "neg", "uni_a"), "mean"] == pytest.approx((0.25 + 0.1 + 0.5) / 3)
    assert groups.loc[("class", "pos", "uni_a"), "samples"] == 2
    assert groups.loc[("prediction", "incorrect", "uni_b"), "mean"] == pytest.approx(0.4)
    # Groups are listed in class order, then correct before incorrect.
    order = explanation.weight_groups.drop_duplicates(["breakdown", "group"])["group"].tolist()
    assert order == ["all", "neg", "pos", "correct", "incorrect"]


def test_multilabel_explanation_agrees_on_the_full_label_set():
    outputs, weights, target = LABEL_SET_OUTPUTS, LABEL_SET_WEIGHTS, LABEL_SET_TARGETS
    explanation = analyse(
        hand_outputs(outputs, weights, target, task="multilabel", expert_names=["syn", "red"]),
        class_names=["drama", "comedy"],
    )
    assert explanation.agreement.to_numpy().sum() == pytest.approx(100.0)
    assert explanation.agreement_counts.loc["agree", "incorrect"] == 1
    assert explanation.agreement_counts.loc["disagree", "correct"] == 0
    assert "class" not in explanation.groups
    table = explanation.local_table([1])
    assert table.loc[table.expert == "syn", "predicted"].item() == "drama;comedy"
    assert table.loc[table.expert == "final", "target"].item() == "drama;comedy"


def test_regression_agreement_and_correctness_use_the_tolerance():
    outputs = torch.tensor([[[1.0], [1.2]], [[0.0], [1.0]], [[2.0], [2.4]], [[0.0], [2.0]]])
    target = torch.tensor([[1.0], [0.5], [3.0], [3.0]])
    weights = torch.full((4, 2), 0.5)

    def explained(tolerance):
        return analyse(
            hand_outputs(outputs, weights, target, task="regression", expert_names=["syn", "red"]),
            tolerance=tolerance,
        )

    strict = explained(0.5)
    assert strict.agree.tolist() == [True, False, True, False]
    assert strict.correct.tolist() == [True, True, False, False]
    assert strict.agreement.to_numpy().tolist() == [[25.0, 25.0], [25.0, 25.0]]
    assert strict.output_names == ["value"]
    assert {"mse", "mae", "pearson"} <= set(strict.performance.columns)
    assert strict.performance.loc["syn", "mae"] == pytest.approx((0 + 0.5 + 1 + 3) / 4)
    loose = explained(1.0)
    assert loose.agree.tolist() == [True, True, True, False]
    assert loose.correct.tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="tolerance"):
        explained(-1.0)


def test_chosen_samples_by_position_and_id():
    assert analyse(hand_outputs(), samples=[-1], sample_ids=["id1"]).chosen == [4, 1]
    with pytest.raises(ValueError, match="unknown sample id"):
        analyse(hand_outputs(), sample_ids=["nope"])


def test_missing_modalities_are_marked_in_the_local_table():
    observed = torch.ones(5, 2, dtype=torch.bool)
    observed[1, 1] = False
    explanation = hand_explanation(observed=observed)
    assert explanation.missing_modalities(1) == ["b"]
    table = explanation.local_table([0, 1])
    marked = table[table.modality_missing]
    assert marked[["sample", "expert"]].values.tolist() == [[1, "uni_b"]]
    assert set(table.loc[table["sample"] == 1, "missing"]) == {"b"}
    assert set(table.loc[table["sample"] == 0, "missing"]) == {""}


def test_summary_is_plain_json():
    explanation = hand_explanation()
    summary = explanation.summary()
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text)["agreement"]["counts"]["disagree"]["correct"] == 2
    assert summary["weights"]["uni_a"]["max"] == pytest.approx(0.5)
    assert summary["performance"]["uni_b"]["accuracy"] == pytest.approx(0.2)
    assert summary["weights_by_group"]["class"]["pos"]["uni_a"]["samples"] == 2
