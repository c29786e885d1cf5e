"""Tests of i2moe.fusion.interpretcc (the ``interpretcc`` backbone, Swamy et al. 2024)."""

import pytest
import torch

from helpers import embeddings
from i2moe.fusion import FUSIONS
from i2moe.fusion.interpretcc import InterpretCCFusion, gumbel_sigmoid, interpretcc

DIM = 8


def build(tokens: list[int], **options) -> InterpretCCFusion:
    return interpretcc(num_modalities=len(tokens), dim=DIM, tokens=tokens, **options)


def force_gates(model: InterpretCCFusion, open_: list[bool]) -> None:
    """Make the gating network output +-20 logits regardless of the input."""
    last = model.gate[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([20.0 if o else -20.0 for o in open_]))


def test_registered_under_interpretcc():
    assert FUSIONS["interpretcc"] is interpretcc


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
def test_output_shape(tokens):
    torch.manual_seed(0)
    model = build(tokens, hidden=10)
    out = model(embeddings(tokens))
    assert model.out_dim == 10
    assert out.latent.shape == (3, 10)
    assert out.aux_loss.item() == 0.0
    assert model.gates(embeddings(tokens)).shape == (3, len(tokens))


def test_eval_gates_are_the_thresholded_sigmoid_without_noise():
    torch.manual_seed(0)
    tokens = [2, 1, 3]
    model = build(tokens, tau=0.7, threshold=0.6).eval()
    x = embeddings(tokens, batch=4)
    pooled = torch.cat([e.mean(1) for e in x], dim=-1)
    expected = (torch.sigmoid(model.gate(pooled) / 0.7) > 0.6).float()
    torch.testing.assert_close(model.gates(x), expected)
    torch.testing.assert_close(model(x).latent, model(x).latent)


def test_soft_gates_in_eval_are_the_sigmoid():
    torch.manual_seed(0)
    tokens = [1, 2]
    model = build(tokens, hard=False, tau=2.0).eval()
    x = embeddings(tokens)
    pooled = torch.cat([e.mean(1) for e in x], dim=-1)
    torch.testing.assert_close(model.gates(x), torch.sigmoid(model.gate(pooled) / 2.0))


def test_a_closed_gate_removes_its_modality():
    torch.manual_seed(0)
    tokens = [2, 1, 3]
    model = build(tokens).eval()
    force_gates(model, [False, True, True])
    x = embeddings(tokens)
    base = model(x).latent
    closed_changed = [x[0] + 5.0, x[1], x[2]]
    open_changed = [x[0], x[1] + 5.0, x[2]]
    # Modality 0 still feeds the gating network, but its gate stays shut at logit -20.
    torch.testing.assert_close(model(closed_changed).latent, base)
    assert not torch.allclose(model(open_changed).latent, base)


def test_train_gates_are_hard_noisy_and_straight_through():
    torch.manual_seed(0)
    tokens = [1, 2, 1, 1]
    model = build(tokens).train()
    x = embeddings(tokens, batch=4)
    first, second = model.gates(x), model.gates(x)
    # Forward values are exactly 0 or 1 ...
    assert set(first.detach().unique().tolist()) <= {0.0, 1.0}
    # ... Gumbel noise makes them differ between calls ...
    assert not torch.equal(first, second)
    # ... and the gradient is the soft sigmoid's, not zero (straight-through estimator).
    first.sum().backward()
    assert model.gate[-1].weight.grad.abs().sum() > 0


def test_gumbel_sigmoid_mean_matches_logistic_probability():
    torch.manual_seed(0)
    logits = torch.full((20000,), 1.0)
    # With tau -> the hard threshold 0.5, P(sigmoid((l + g)/tau) > 0.5) = sigmoid(l).
    hard = (gumbel_sigmoid(logits, tau=1.0) > 0.5).float().mean()
    assert abs(hard.item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.02


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    tokens = [2, 1, 3, 1]
    model = build(tokens).train()
    out = model(embeddings(tokens, batch=4))
    (out.latent.sum() + out.aux_loss).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        build([1, 1], tau=0.0)
    with pytest.raises(ValueError):
        build([1, 1], threshold=1.0)
