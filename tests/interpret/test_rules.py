"""Per-task rules (i2moe.interpret.rules): predictions, correctness, agreement, change."""

import math

import torch

from i2moe.interpret.rules import (
    expert_contributions,
    experts_agree,
    output_names,
    predicted_labels,
    prediction_change,
    prediction_correct,
)

from .conftest import (
    LABEL_SET_OUTPUTS,
    LABEL_SET_TARGETS,
    LABEL_SET_WEIGHTS,
    OUTPUTS,
    WEIGHTS,
)


def test_output_names_by_task():
    assert output_names("classification", 2, ["neg", "pos"]) == ["neg", "pos"]
    assert output_names("classification", 3, ["neg", "pos"]) == ["0", "1", "2"]
    assert output_names("multilabel", 2) == ["0", "1"]
    assert output_names("regression", 1, ["ignored"]) == ["value"]


def test_predicted_labels_by_task():
    outputs = torch.tensor([[0.5, -1.0, 2.0], [-0.5, 1.0, 0.0]])
    assert predicted_labels("classification", outputs).tolist() == [2, 1]
    assert predicted_labels("multilabel", outputs).tolist() == [
        [True, False, True],
        [False, True, False],
    ]
    assert predicted_labels("regression", outputs[:, :1]).tolist() == [0.5, -0.5]


def test_contributions_are_weight_times_output_and_sum_to_the_prediction():
    contributions = expert_contributions(WEIGHTS, OUTPUTS)
    torch.testing.assert_close(contributions[2, 0], torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(contributions.sum(1), torch.einsum("ne,nec->nc", WEIGHTS, OUTPUTS))


def test_multilabel_agreement_is_on_the_full_label_set():
    outputs, weights, target = LABEL_SET_OUTPUTS, LABEL_SET_WEIGHTS, LABEL_SET_TARGETS
    prediction = torch.einsum("ne,nec->nc", weights, outputs)
    assert experts_agree("multilabel", outputs, 0.5).tolist() == [True, False, True]
    assert prediction_correct("multilabel", prediction, target, 0.5).tolist() == [
        True,
        False,
        False,
    ]


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
