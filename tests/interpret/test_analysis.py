"""The interpretation numbers: hand-made cases checked against hand counts, and a real model."""

import json
import math

import pytest
import torch
from torch.utils.data import DataLoader

from i2moe.builders import vanilla_model
from i2moe.interpret import explain
from i2moe.interpret.analysis import (
    Collected,
    analyse,
    choose_samples,
    collect,
    experts_agree,
    intact_pass,
    prediction_change,
    prediction_correct,
    resolve_samples,
    weight_statistics,
)

from .conftest import tiny_data, tiny_model, trained

EXPERTS = ["uni_a", "uni_b", "syn", "red"]
MODALITIES = ["a", "b"]

# Five samples, four experts, two classes (see the expected counts in the tests).
OUTPUTS = torch.tensor(
    [
        [[2.0, 0.0], [1.0, 0.0], [3.0, 0.0], [1.0, -1.0]],  # all say 0; target 0
        [[0.0, 1.0], [0.0, 2.0], [-1.0, 1.0], [0.0, 3.0]],  # all say 1; target 0
        [[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 1.0]],  # mixed; target 0
        [[0.0, 2.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],  # mixed; target 1
        [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],  # mixed; target 1
    ]
)
WEIGHTS = torch.tensor(
    [
        [0.25, 0.25, 0.25, 0.25],
        [0.1, 0.2, 0.3, 0.4],
        [0.5, 0.1, 0.3, 0.1],
        [0.1, 0.6, 0.2, 0.1],
        [0.25, 0.25, 0.25, 0.25],
    ]
)
TARGETS = torch.tensor([0, 0, 0, 1, 1])


def hand_collected(outputs=OUTPUTS, weights=WEIGHTS, targets=TARGETS, observed=None):
    n, _, _ = outputs.shape
    return Collected(
        prediction=torch.einsum("ne,nec->nc", weights, outputs),
        expert_outputs=outputs,
        weights=weights,
        target=targets,
        observed=torch.ones(n, 2, dtype=torch.bool) if observed is None else observed,
        change=torch.rand(n, 2, generator=torch.Generator().manual_seed(0)),
        flip=torch.zeros(n, 2),
        sample_ids=[f"id{i}" for i in range(n)],
    )


def hand_explanation(**options):
    return analyse(
        hand_collected(**options),
        task="classification",
        expert_names=EXPERTS,
        modality_names=MODALITIES,
        class_names=["neg", "pos"],
    )


def test_final_outputs_and_correctness_match_hand_values():
    explanation = hand_explanation()
    torch.testing.assert_close(explanation.prediction[2], torch.tensor([1.1, 0.2]))
    torch.testing.assert_close(explanation.prediction[3], torch.tensor([0.7, 0.4]))
    assert explanation.correct.tolist() == [True, False, True, False, True]
    assert explanation.agree.tolist() == [True, True, False, False, False]


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


def test_per_expert_accuracy_matches_a_hand_count():
    performance = hand_explanation().performance
    expected = {"model": 0.6, "uni_a": 0.8, "uni_b": 0.2, "syn": 0.8, "red": 0.4}
    assert list(performance.index) == list(expected)
    for name, accuracy in expected.items():
        assert performance.loc[name, "accuracy"] == pytest.approx(accuracy)
    assert {"auroc", "f1_macro", "f1_micro"} <= set(performance.columns)


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


def test_weight_statistics_with_extra_groups():
    table = weight_statistics(WEIGHTS, EXPERTS, {"interaction": ["syn", "red", "syn", "red", "x"]})
    syn = table[(table.group == "syn") & (table.expert == "red")]
    assert float(syn["mean"].iloc[0]) == pytest.approx((0.25 + 0.1) / 2)
    with pytest.raises(ValueError, match="labels"):
        weight_statistics(WEIGHTS, EXPERTS, {"bad": ["a"]})


def test_multilabel_agreement_is_on_the_full_label_set():
    outputs = torch.tensor(
        [
            [[1.0, -1.0], [2.0, -3.0]],  # {0} and {0}: agree
            [[1.0, 1.0], [1.0, -1.0]],  # {0, 1} and {0}: disagree
            [[-1.0, -1.0], [-2.0, -1.0]],  # {} and {}: agree
        ]
    )
    weights = torch.full((3, 2), 0.5)
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    prediction = torch.einsum("ne,nec->nc", weights, outputs)
    assert experts_agree("multilabel", outputs, 0.5).tolist() == [True, False, True]
    assert prediction_correct("multilabel", prediction, target, 0.5).tolist() == [
        True,
        False,
        False,
    ]
    explanation = analyse(
        hand_collected(outputs, weights, target),
        task="multilabel",
        expert_names=["syn", "red"],
        modality_names=MODALITIES,
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
            hand_collected(outputs, weights, target),
            task="regression",
            expert_names=["syn", "red"],
            modality_names=MODALITIES,
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


def test_prediction_change_by_task():
    third = math.log(3.0)
    base = torch.tensor([[third, 0.0], [third, 0.0]])
    changed = torch.tensor([[0.0, third], [third, 0.0]])
    change, flip = prediction_change("classification", base, changed)
    torch.testing.assert_close(change, torch.tensor([0.5, 0.0]))  # 0.75/0.25 -> 0.25/0.75
    assert flip.tolist() == [1.0, 0.0]
    change, flip = prediction_change("multilabel", base, changed)
    torch.testing.assert_close(change, torch.tensor([0.25, 0.0]))  # sigmoid 0.75/0.5 swapped
    assert flip.tolist() == [1.0, 0.0]
    change, flip = prediction_change("regression", torch.tensor([[1.0]]), torch.tensor([[-0.5]]))
    assert change.tolist() == [1.5] and math.isnan(flip.item())


def test_default_samples_are_correct_and_wrong_predictions():
    correct = torch.tensor([True] * 10 + [False] * 4)
    assert choose_samples(correct, count=3) == [0, 4, 9, 10, 12, 13]  # spread over each group
    assert choose_samples(torch.tensor([True, True]), count=3) == [0, 1]
    assert choose_samples(correct, count=0) == []


def test_samples_by_position_and_by_id():
    ids = ["a", "b", 7, "d"]
    assert resolve_samples(4, ids) is None
    assert resolve_samples(4, ids, samples=[2, -1]) == [2, 3]
    assert resolve_samples(4, ids, ids=["7", "a"]) == [2, 0]
    assert resolve_samples(4, ids, samples=[1], ids=["b"]) == [1]
    with pytest.raises(ValueError, match="out of range"):
        resolve_samples(4, ids, samples=[4])
    with pytest.raises(ValueError, match="unknown sample id"):
        resolve_samples(4, ids, ids=["zz"])
    assert hand_explanation(observed=None).chosen  # defaults: correct and wrong ones


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


# --------------------------------------------------------------------------- a real model


def test_intact_pass_equals_the_model_in_eval_mode():
    dataset = tiny_data(3, num_samples=20)
    model = tiny_model(dataset).eval()
    batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])
    with torch.no_grad():
        expected = model(batch["inputs"])
        prediction, outputs, weights = intact_pass(model, model.embed(batch["inputs"]))
    torch.testing.assert_close(prediction, expected.prediction)
    torch.testing.assert_close(outputs, expected.expert_outputs)
    torch.testing.assert_close(weights, expected.weights)


def test_collect_is_deterministic_and_leaves_state_alone():
    dataset = tiny_data(2, num_samples=24)
    model = tiny_model(dataset).train()
    rng = torch.get_rng_state()
    first = collect(model, DataLoader(dataset, batch_size=10), seed=3)
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng)
    second = collect(model, DataLoader(dataset, batch_size=10), seed=3)
    torch.testing.assert_close(first.change, second.change)
    other_seed = collect(model, DataLoader(dataset, batch_size=10), seed=4)
    assert not torch.allclose(first.change, other_seed.change)
    whole = collect(model, dataset, seed=3)  # batching changes the draws, not the outputs
    torch.testing.assert_close(first.prediction, whole.prediction)
    torch.testing.assert_close(first.weights.sum(-1), torch.ones(24))
    assert first.sample_ids[:2] == ["s000", "s001"]
    assert first.change.shape == (24, 2) and not torch.isnan(first.change).any()
    assert ((first.flip >= 0) & (first.flip <= 1)).all()


def test_sensitivity_equals_the_model_run_with_the_modality_missing():
    # With zero masking, replacing a modality is exactly what the model does when it is missing.
    dataset = tiny_data(3, num_samples=20)
    model = tiny_model(dataset, masking="zero").eval()
    collected = collect(model, dataset)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(20)])
    with torch.no_grad():
        base = model(batch["inputs"]).prediction.softmax(-1)
        for m in range(3):
            observed = torch.ones(20, 3, dtype=torch.bool)
            observed[:, m] = False
            without = model(batch["inputs"], observed).prediction.softmax(-1)
            expected = 0.5 * (base - without).abs().sum(-1)
            torch.testing.assert_close(collected.change[:, m], expected)


def test_sensitivity_leaves_out_missing_modalities():
    model, dataset = trained(3, missing=0.3)
    collected = collect(model, dataset)
    missing = ~dataset.observed
    assert missing.any()
    assert torch.isnan(collected.change[missing]).all()
    assert not torch.isnan(collected.change[~missing]).any()
    assert torch.equal(collected.observed, dataset.observed)


def test_a_model_without_experts_is_refused():
    dataset = tiny_data(2, num_samples=20)
    shapes = {name: tuple(array.shape[1:]) for name, array in dataset.arrays.items()}
    model = vanilla_model(shapes, 2, fusion="ef", dim=8)
    with pytest.raises(ValueError, match="no experts"):
        collect(model, dataset)


def test_a_shuffled_loader_is_refused():
    dataset = tiny_data(2, num_samples=20)
    with pytest.raises(ValueError, match="shuffles"):
        collect(tiny_model(dataset), DataLoader(dataset, shuffle=True))


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_explain_numbers_for_other_tasks(task):
    model, dataset = trained(2, task=task)
    explanation = explain(model, dataset, None, sample_ids=["s001"], tolerance=0.4)
    assert explanation.files == {}
    assert explanation.chosen == [1]
    assert explanation.agreement.to_numpy().sum() == pytest.approx(100.0)
    assert explanation.expert_outputs.shape == (48, 4, 2 if task == "multilabel" else 1)
    summary = explanation.sensitivity_summary
    assert summary["modality"].tolist() == ["mod0", "mod1"]
    if task == "regression":
        assert summary["flip_share"].isna().all()
    else:
        assert summary["flip_share"].between(0, 1).all()
