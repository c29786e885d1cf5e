"""Tests of i2moe.fusion.switchgate (the ``switchgate`` backbone, Fedus et al. 2022)."""

import pytest
import torch

from helpers import embeddings, probe_loss
from i2moe.fusion.base import FUSIONS
from i2moe.fusion.switchgate import ExpertFFN, SparseTransformerFusion, SwitchMoE, switchgate

DIM = 8


def one_expert(experts: ExpertFFN, e: int, x: torch.Tensor) -> torch.Tensor:
    """Expert e alone on x [N, D]."""
    h = torch.nn.functional.gelu(x @ experts.w1[e] + experts.b1[e, 0])
    return h @ experts.w2[e] + experts.b2[e, 0]


def test_registered_under_switchgate():
    assert FUSIONS["switchgate"] is switchgate


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
def test_output_shape(tokens):
    torch.manual_seed(0)
    model = switchgate(num_modalities=len(tokens), dim=DIM, tokens=tokens, num_experts=3)
    out = model(embeddings(tokens))
    assert isinstance(model, SparseTransformerFusion)
    assert model.out_dim == len(tokens) * DIM
    assert out.latent.shape == (3, len(tokens) * DIM)
    assert out.aux_loss.shape == ()


def test_layer_matches_per_token_top1_reference_without_drops():
    torch.manual_seed(0)
    layer = SwitchMoE(DIM, num_experts=3, hidden=12, capacity_factor=10.0, dropout=0.0)
    x = torch.randn(2, 5, DIM)
    out, aux, logits = layer(x)
    tokens = x.reshape(10, DIM)
    probs = layer.router(tokens).softmax(-1)
    expected = torch.stack(
        [
            probs[i].max() * one_expert(layer.experts, int(probs[i].argmax()), tokens[i])
            for i in range(10)
        ]
    )
    torch.testing.assert_close(out.reshape(10, DIM), expected)
    torch.testing.assert_close(logits.reshape(10, 3), layer.router(tokens))
    fraction = torch.bincount(probs.argmax(-1), minlength=3).float() / 10
    torch.testing.assert_close(aux, 3 * (fraction * probs.mean(0)).sum())


def test_tokens_over_capacity_are_dropped_in_order():
    torch.manual_seed(0)
    layer = SwitchMoE(DIM, num_experts=4, hidden=12, capacity_factor=1.0, dropout=0.0)
    with torch.no_grad():  # every token with positive features prefers expert 2
        layer.router.weight.zero_()
        layer.router.weight[2] = 1.0
    x = torch.rand(2, 4, DIM) + 0.1  # 8 tokens, capacity ceil(1.0 * 8 / 4) = 2
    out, _, _ = layer(x)
    out = out.reshape(8, DIM)
    tokens = x.reshape(8, DIM)
    gate = layer.router(tokens).softmax(-1)[:, 2:3]
    torch.testing.assert_close(out[:2], gate[:2] * one_expert(layer.experts, 2, tokens[:2]))
    assert torch.equal(out[2:], torch.zeros(6, DIM))


def test_dropped_tokens_pass_through_the_residual_only():
    torch.manual_seed(0)
    model = switchgate(
        num_modalities=2,
        dim=DIM,
        tokens=[2, 2],
        num_layers=1,
        dropout=0.0,
        capacity_factor=1.0,
    ).eval()
    block = model.blocks[0]
    with torch.no_grad():
        block.moe.router.weight.zero_()  # all ties -> every token picks expert 0
    x = torch.randn(1, 4, DIM)
    after_attn = x + block.attn(block.norm1(x))
    y, _, _ = block(x)
    # capacity ceil(4 / 4) = 1: token 0 is processed, tokens 1-3 keep the attention output.
    torch.testing.assert_close(y[:, 1:], after_attn[:, 1:])
    assert not torch.allclose(y[:, :1], after_attn[:, :1])


def test_aux_loss_keeps_its_gradient_to_every_router():
    torch.manual_seed(0)
    tokens = [2, 3]
    model = switchgate(num_modalities=2, dim=DIM, tokens=tokens, num_layers=2).train()
    out = model(embeddings(tokens))
    assert out.aux_loss.requires_grad
    out.aux_loss.backward()
    for block in model.blocks:
        assert block.moe.router.weight.grad.abs().sum() > 0


def test_aux_loss_is_the_mean_over_layers():
    torch.manual_seed(0)
    tokens = [1, 2]
    model = switchgate(num_modalities=2, dim=DIM, tokens=tokens, num_layers=3, dropout=0.0)
    x = torch.cat(embeddings(tokens), dim=1) + model.position
    losses = []
    for block in model.blocks:
        x, aux, _ = block(x)
        losses.append(aux)
    torch.testing.assert_close(model(embeddings(tokens)).aux_loss, torch.stack(losses).mean())


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    tokens = [2, 1, 4, 1]
    model = switchgate(
        num_modalities=4, dim=DIM, tokens=tokens, num_experts=2, capacity_factor=2.0
    ).train()
    out = model(embeddings(tokens, batch=4))
    probe_loss(out).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_eval_is_deterministic():
    torch.manual_seed(0)
    tokens = [3, 1]
    model = switchgate(num_modalities=2, dim=DIM, tokens=tokens, dropout=0.5).eval()
    x = embeddings(tokens)
    a, b = model(x), model(x)
    torch.testing.assert_close(a.latent, b.latent)
    torch.testing.assert_close(a.aux_loss, b.aux_loss)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        switchgate(num_modalities=2, dim=DIM, tokens=[1, 1], capacity_factor=0.0)
    with pytest.raises(ValueError):
        switchgate(num_modalities=2, dim=DIM, tokens=[1, 1], num_layers=0)
    with pytest.raises(TypeError):
        switchgate(num_modalities=2, dim=DIM, tokens=[1, 1], experts=4)
