"""Tests of i2moe.fusion.switchgate (the ``switchgate`` backbone, Fedus et al. 2022)."""

import pytest
import torch

from helpers import embeddings, probe_loss
from i2moe.fusion import FUSIONS
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


def _groups(x: torch.Tensor, groups: int) -> list[torch.Tensor]:
    return list(x.chunk(groups))


def test_each_group_is_routed_as_if_it_ran_alone():
    """Capacity, slot order and dropped tokens of a group do not depend on the other groups."""
    torch.manual_seed(0)
    layer = SwitchMoE(DIM, num_experts=3, hidden=12, capacity_factor=1.0, dropout=0.0)
    with torch.no_grad():  # skewed routing, so that every group drops tokens
        layer.router.weight[0] += 0.5
    x = torch.randn(12, 4, DIM)  # 3 groups of 4 rows
    out, aux, logits = layer(x, groups=3)
    routing = layer.route(x, groups=3)
    alone = [layer(part) for part in _groups(x, 3)]
    for g, part in enumerate(_groups(x, 3)):
        own = layer.route(part)
        assert routing.capacity == own.capacity == 6  # ceil(1.0 * 16 tokens / 3 experts)
        assert torch.equal(routing.kept[g], own.kept[0])
        assert torch.equal(routing.expert[g], own.expert[0])
        torch.testing.assert_close(out[4 * g : 4 * (g + 1)], alone[g][0])
        torch.testing.assert_close(logits[4 * g : 4 * (g + 1)], alone[g][2])
    assert not routing.kept.all()
    torch.testing.assert_close(aux, torch.stack([a[1] for a in alone]).mean())
    # Routed as one group, the same tokens share one capacity: other tokens are dropped.
    assert not torch.equal(layer.route(x).kept.view(3, -1), routing.kept)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_backbone_on_folded_groups_equals_each_group_alone(num_layers):
    torch.manual_seed(0)
    tokens = [2, 1, 3, 1]
    model = switchgate(
        num_modalities=4, dim=DIM, tokens=tokens, num_layers=num_layers, capacity_factor=1.0
    ).eval()
    passes = [embeddings(tokens, batch=4, seed=seed) for seed in range(5)]  # P = 5, B = 4
    folded = [torch.cat(parts) for parts in zip(*passes, strict=True)]  # [P*B, T_m, D]
    together = model(folded, groups=5)
    alone = [model(one) for one in passes]
    torch.testing.assert_close(together.latent, torch.cat([a.latent for a in alone]))
    torch.testing.assert_close(together.aux_loss, torch.stack([a.aux_loss for a in alone]).mean())
    assert not torch.allclose(model(folded).latent, together.latent)  # one shared capacity


def test_one_group_is_the_plain_call():
    torch.manual_seed(0)
    tokens = [2, 3]
    model = switchgate(num_modalities=2, dim=DIM, tokens=tokens, capacity_factor=1.0).eval()
    x = embeddings(tokens, batch=4)
    a, b = model(x), model(x, groups=1)
    assert torch.equal(a.latent, b.latent) and torch.equal(a.aux_loss, b.aux_loss)


def test_groups_must_split_the_batch():
    torch.manual_seed(0)
    model = switchgate(num_modalities=2, dim=DIM, tokens=[1, 1])
    with pytest.raises(ValueError, match="equal groups"):
        model(embeddings([1, 1], batch=5), groups=2)
