"""Interaction losses and the training loss against hand computations (docs/method.md section 3)."""

import math

import pytest
import torch

from helpers import SHAPES_3, batch_for, no_dropout, tiny_model
from i2moe.builders import vanilla_model
from i2moe.losses import (
    I2MoELoss,
    LossParts,
    evidence_loss,
    interaction_losses,
    task_loss,
    total_loss,
)
from i2moe.model import I2MoEOutput


def _distance(a, b):
    return math.sqrt(sum((x - y + 1e-6) ** 2 for x, y in zip(a, b, strict=True)))


def _cos(a, b):
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _rows(t):
    return [row.tolist() for row in t]


def test_classification_losses_match_hand_computation():
    torch.manual_seed(3)
    n, b, c = 2, 3, 4
    outputs = torch.randn(n + 2, n + 1, b, c)  # [E, P, B, C]
    losses = interaction_losses(outputs, "classification")

    # uni_0: anchor intact, negative = modality 0 replaced (pass 1), positive = pass 2.
    expected = []
    for i in range(n):
        per_positive = []
        for j in range(n):
            if j == i:
                continue
            terms = []
            for s in range(b):
                a, p, neg = (outputs[i, 0, s], outputs[i, 1 + j, s], outputs[i, 1 + i, s])
                d_ap, d_an = _distance(a.tolist(), p.tolist()), _distance(a.tolist(), neg.tolist())
                terms.append(max(d_ap - d_an + 1.0, 0.0))
            per_positive.append(sum(terms) / b)
        expected.append(sum(per_positive) / len(per_positive))
    syn = sum(
        _cos(outputs[n, 0, s].tolist(), outputs[n, 1 + j, s].tolist())
        for j in range(n)
        for s in range(b)
    ) / (n * b)
    red = sum(
        1 - _cos(outputs[n + 1, 0, s].tolist(), outputs[n + 1, 1 + j, s].tolist())
        for j in range(n)
        for s in range(b)
    ) / (n * b)
    expected += [syn, red]
    torch.testing.assert_close(losses, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_multilabel_uses_classification_form():
    outputs = torch.randn(5, 4, 2, 3)
    torch.testing.assert_close(
        interaction_losses(outputs, "multilabel"), interaction_losses(outputs, "classification")
    )


def test_regression_losses_match_hand_computation():
    # n = 2, B = 1, C = 1: every number visible.
    # passes: intact, mod0 replaced, mod1 replaced
    outputs = torch.tensor(
        [
            [[[0.0]], [[3.0]], [[0.5]]],  # uni_0: negative 3 (far), positive 0.5
            [[[1.0]], [[1.2]], [[1.1]]],  # uni_1: negative 1.1, positive 1.2
            [[[2.0]], [[2.0]], [[0.0]]],  # syn
            [[[1.0]], [[2.0]], [[1.0]]],  # red
        ]
    )
    losses = interaction_losses(outputs, "regression")
    uni0 = max(0.0, 0.5**2 - 3.0**2 + 1.0)  # hinge satisfied -> 0
    uni1 = max(0.0, 0.2**2 - 0.1**2 + 1.0)
    syn = (math.exp(-0.0) + math.exp(-4.0)) / 2  # bounded push-away
    red = (1.0 + 0.0) / 2
    torch.testing.assert_close(losses, torch.tensor([uni0, uni1, syn, red]))


def test_regression_synergy_pushes_away_and_is_bounded():
    near = torch.zeros(4, 3, 2, 1)
    far = near.clone()
    far[2, 1:] = 100.0
    l_near, l_far = interaction_losses(near, "regression"), interaction_losses(far, "regression")
    assert l_far[2] < l_near[2]  # synergy loss falls as the perturbed answer moves away
    assert l_far[2] >= 0  # and never goes below zero


def test_gradients_push_in_the_documented_directions():
    outputs = torch.randn(4, 3, 5, 3, requires_grad=True)
    losses = interaction_losses(outputs, "classification")
    # Descending the synergy loss makes the perturbed passes LESS similar to the intact one.
    grad = torch.autograd.grad(losses[2], outputs, retain_graph=True)[0]
    stepped = (outputs - 0.1 * grad).detach()
    assert interaction_losses(stepped, "classification")[2] < losses[2]
    stepped = (outputs - 0.1 * torch.autograd.grad(losses[3], outputs)[0]).detach()
    assert interaction_losses(stepped, "classification")[3] < losses[3]


def test_valid_mask_excludes_passes_of_missing_modalities():
    torch.manual_seed(0)
    outputs = torch.randn(4, 3, 4, 2)
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[1, 2:] = False  # modality 1 was missing for samples 2 and 3
    masked = interaction_losses(outputs, "classification", valid=valid)
    # The same as dropping those samples' pass-2 entries: check the redundancy expert by hand.
    cos = torch.nn.functional.cosine_similarity
    red_terms = [1 - cos(outputs[3, 0], outputs[3, 1], dim=-1)]
    red_terms.append(1 - cos(outputs[3, 0, :2], outputs[3, 2, :2], dim=-1))
    expected_red = torch.cat(red_terms).mean()
    torch.testing.assert_close(masked[3], expected_red)


def test_less_forward_uniqueness_without_negative_is_zero():
    outputs = torch.randn(5, 2, 3, 2)  # n = 3 modalities, only modality 1 perturbed
    losses = interaction_losses(
        outputs, "classification", roles=[0, 1, 2, "syn", "red"], perturbed=[1]
    )
    assert losses[0] == 0 and losses[2] == 0  # no negative pass for uni_0 / uni_2
    assert losses[1] == 0  # uni_1 has a negative but no positive
    assert losses[3] != 0 and losses[4] != 0


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="roles"):
        interaction_losses(torch.randn(3, 3, 2, 2), "classification")
    with pytest.raises(ValueError, match="perturbed"):
        interaction_losses(torch.randn(4, 3, 2, 2), "classification", perturbed=[0])


def test_task_losses():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 1])
    expected = -(torch.log_softmax(logits, -1)[[0, 1], [0, 1]]).mean()
    torch.testing.assert_close(task_loss(logits, target, "classification"), expected)
    weights = torch.tensor([0.25, 0.75])
    per = -(torch.log_softmax(logits, -1)[[0, 1], [0, 1]])
    weighted = (per * weights[target]).sum() / weights[target].sum()
    torch.testing.assert_close(
        task_loss(logits, target, "classification", class_weights=weights), weighted
    )
    values = torch.tensor([[1.0], [3.0]])
    assert task_loss(values, torch.tensor([[0.0], [1.0]]), "regression").item() == 2.5
    smooth = task_loss(
        values, torch.tensor([[0.0], [1.0]]), "regression", regression_loss="smooth_l1"
    )
    assert smooth.item() == pytest.approx((0.5 + 1.5) / 2)


def test_total_loss_is_task_plus_weighted_mean_interaction():
    output = I2MoEOutput(
        prediction=torch.tensor([[1.0, 0.0]]),
        expert_outputs=torch.zeros(1, 4, 2),
        weights=torch.full((1, 4), 0.25),
        interaction_loss=torch.tensor([1.0, 2.0, 3.0, 6.0]),
        aux_loss=torch.tensor(2.0),
    )
    parts = total_loss(
        output, torch.tensor([0]), "classification", interaction_weight=0.5, aux_weight=0.1
    )
    assert isinstance(parts, LossParts)
    main = task_loss(output.prediction, torch.tensor([0]), "classification")
    torch.testing.assert_close(parts.total, main + 0.5 * 3.0 + 0.1 * 2.0)


def _training_output(evidence_weight=0.0, task="classification", vanilla=False):
    torch.manual_seed(0)
    options = {"num_heads": 2, "dropout": 0.0}
    if vanilla:
        model = vanilla_model(SHAPES_3, 3, dim=8, fusion="switchgate", fusion_options=options)
    else:
        outputs = 1 if task == "regression" else 3
        model = tiny_model(
            num_outputs=outputs,
            task=task,
            fusion="switchgate",  # a non-zero load-balancing loss
            fusion_options=options,
            evidence_weight=evidence_weight,
        )
    model = no_dropout(model).train()
    return model, model(batch_for(SHAPES_3))


TARGETS = {
    "classification": torch.tensor([0, 1, 2, 1]),
    "regression": torch.tensor([[0.5], [-1.0], [2.0], [0.0]]),
}


@pytest.mark.parametrize(
    ("task", "evidence_weight", "options"),
    [
        ("classification", 0.0, {}),
        ("classification", 0.0, {"class_weights": [0.2, 0.3, 0.5]}),
        ("classification", 0.7, {}),
        ("regression", 0.0, {"regression_loss": "smooth_l1"}),
        ("regression", 1.0, {}),
    ],
)
def test_loss_object_equals_total_loss_on_todays_training(task, evidence_weight, options):
    model, output = _training_output(evidence_weight, task)
    assert (output.evidence is not None) == (evidence_weight > 0)
    target = TARGETS[task]
    old_options = dict(options)
    if "class_weights" in options:
        old_options["class_weights"] = torch.tensor(options["class_weights"])
    expected = total_loss(
        output, target, task, interaction_weight=0.3, aux_weight=0.05, **old_options
    )
    loss = I2MoELoss(
        task,
        interaction_weight=0.3,
        gate_weight=0.05,
        evidence_weight=evidence_weight,
        **options,
    )
    parts = loss(output, target)
    assert isinstance(parts, LossParts)
    for a, b in zip(parts, expected, strict=True):
        assert torch.equal(a, b)
    assert output.aux_loss > 0
    for_model = I2MoELoss.for_model(model, interaction_weight=0.3, gate_weight=0.05, **options)
    assert for_model.task == task and for_model.evidence_weight == evidence_weight
    assert torch.equal(for_model(output, target).total, parts.total)


def test_loss_terms_by_hand():
    _, output = _training_output(evidence_weight=0.7)
    target = TARGETS["classification"]
    parts = I2MoELoss(
        "classification", interaction_weight=0.3, gate_weight=0.05, evidence_weight=0.7
    )(output, target)
    evidence = evidence_loss(
        output.evidence.outputs,
        output.weights,
        target,
        "classification",
        roles=output.evidence.roles,
        perturbed=output.evidence.perturbed,
    )
    main = task_loss(output.prediction, target, "classification")
    torch.testing.assert_close(parts.task, main)
    torch.testing.assert_close(parts.interaction, output.interaction_loss.mean())
    torch.testing.assert_close(parts.aux, output.aux_loss)
    torch.testing.assert_close(parts.evidence, evidence)
    torch.testing.assert_close(
        parts.total, main + 0.3 * parts.interaction + 0.05 * parts.aux + 0.7 * evidence
    )


def test_loss_object_on_a_vanilla_model():
    model, output = _training_output(vanilla=True)
    target = TARGETS["classification"]
    loss = I2MoELoss.for_model(model, task="classification", gate_weight=0.1)
    parts = loss(output, target)
    main = task_loss(output.prediction, target, "classification")
    torch.testing.assert_close(parts.total, main + 0.1 * output.aux_loss)
    assert parts.interaction == 0 and parts.evidence == 0
    expected = total_loss(output, target, "classification", interaction_weight=0.5, aux_weight=0.1)
    assert torch.equal(parts.total, expected.total)
    assert I2MoELoss.for_model(model).task == "classification"  # the builder's task
    model.task = None  # a VanillaFusion built without a task
    with pytest.raises(ValueError, match="task"):
        I2MoELoss.for_model(model)


def test_interaction_weight_per_call_and_class_weights_buffer():
    _, output = _training_output()
    target = TARGETS["classification"]
    loss = I2MoELoss("classification", class_weights=[1.0, 2.0, 3.0])
    warm = loss(output, target, interaction_weight=0.0)
    torch.testing.assert_close(warm.total, warm.task + 0.01 * warm.aux)
    assert loss(output, target).total > warm.total
    assert loss.state_dict()["class_weights"].tolist() == [1.0, 2.0, 3.0]
    assert loss.double().class_weights.dtype == torch.float64
    assert I2MoELoss("classification").class_weights is None


def test_loss_object_refuses_evidence_it_does_not_weight_and_bad_options():
    _, output = _training_output(evidence_weight=0.7)
    with pytest.raises(ValueError, match="evidence_weight"):
        I2MoELoss("classification")(output, TARGETS["classification"])
    with pytest.raises(ValueError, match="task"):
        I2MoELoss("ranking")
    with pytest.raises(ValueError, match="regression_loss"):
        I2MoELoss("regression", regression_loss="huber")
