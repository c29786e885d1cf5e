"""Tests of i2moe.fusion.moepp (the ``moepp`` backbone, Jin et al. 2024)."""

import pytest
import torch

from helpers import embeddings, probe_loss
from i2moe.fusion import FUSIONS
from i2moe.fusion.moepp import MoEPlusPlus, moepp
from i2moe.fusion.switchgate import SparseTransformerFusion

DIM = 8


def layer(gating_residual: bool = False, **options) -> MoEPlusPlus:
    settings = dict(num_zero=1, num_copy=1, num_constant=2, top_k=2, balance_tau=0.75)
    settings.update(options)
    return MoEPlusPlus(DIM, 3, 12, gating_residual=gating_residual, dropout=0.0, **settings)


def reference_expert(moe: MoEPlusPlus, i: int, x: torch.Tensor) -> torch.Tensor:
    """Expert i of [FFN x3, zero, copy, constant x2] on one token x [D]."""
    if i < 3:
        ffn = moe.experts
        h = torch.nn.functional.gelu(x @ ffn.w1[i] + ffn.b1[i, 0])
        return h @ ffn.w2[i] + ffn.b2[i, 0]
    if i == 3:
        return torch.zeros_like(x)
    if i == 4:
        return x
    c = i - 5
    a = (x @ moe.constant_mix[c]).softmax(-1)
    return a[0] * x + a[1] * moe.constant[c]


def test_registered_under_moepp():
    assert FUSIONS["moepp"] is moepp


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
def test_output_shape(tokens):
    torch.manual_seed(0)
    model = moepp(num_modalities=len(tokens), dim=DIM, tokens=tokens)
    out = model(embeddings(tokens))
    assert isinstance(model, SparseTransformerFusion)
    assert model.out_dim == len(tokens) * DIM
    assert out.latent.shape == (3, len(tokens) * DIM)
    assert out.aux_loss.shape == ()


def test_layer_matches_per_token_top2_reference():
    torch.manual_seed(0)
    moe = layer()
    x = torch.randn(2, 6, DIM)
    out, aux, logits = moe(x)
    tokens = x.reshape(12, DIM)
    probs = moe.router(tokens).softmax(-1)  # [12, 7]
    top_p, top_i = probs.topk(2, dim=-1)
    expected = torch.stack(
        [
            sum(top_p[n, j] * reference_expert(moe, int(top_i[n, j]), tokens[n]) for j in range(2))
            for n in range(12)
        ]
    )
    torch.testing.assert_close(out.reshape(12, DIM), expected)
    # Heterogeneous balance: eta = 1 for the 3 FFN experts, 0.75 for the 4 others.
    chosen = torch.zeros(7).index_add(0, top_i.flatten(), torch.ones(24)) / 24
    eta = torch.tensor([1.0, 1.0, 1.0, 0.75, 0.75, 0.75, 0.75])
    torch.testing.assert_close(aux, 7 * (eta * chosen * probs.mean(0)).sum())
    torch.testing.assert_close(logits.reshape(12, 7), moe.router(tokens))


def test_gating_residual_adds_mapped_previous_logits():
    torch.manual_seed(0)
    moe = layer(gating_residual=True)
    x = torch.randn(2, 3, DIM)
    prev = torch.randn(2, 3, 7)
    _, _, logits = moe(x, prev)
    torch.testing.assert_close(logits, moe.router(x) + prev @ moe.residual.weight.T)
    assert layer(gating_residual=False).residual is None


def test_first_layer_has_no_residual_map_and_later_layers_do():
    model = moepp(num_modalities=2, dim=DIM, tokens=[1, 1], num_layers=3)
    assert [block.moe.residual is not None for block in model.blocks] == [False, True, True]


def test_layer_output_reaches_the_backbone_output():
    # The authors' code computed the MoE++ output and dropped it; here it must matter.
    torch.manual_seed(0)
    tokens = [2, 3]
    model = moepp(num_modalities=2, dim=DIM, tokens=tokens, dropout=0.0).eval()
    x = embeddings(tokens)
    before = model(x).latent
    with torch.no_grad():
        for block in model.blocks:
            block.moe.experts.w2.mul_(3.0)
    assert not torch.allclose(model(x).latent, before)


def test_aux_loss_keeps_its_gradient_to_every_router():
    torch.manual_seed(0)
    tokens = [2, 3]
    model = moepp(num_modalities=2, dim=DIM, tokens=tokens).train()
    out = model(embeddings(tokens))
    assert out.aux_loss.requires_grad
    out.aux_loss.backward()
    for block in model.blocks:
        assert block.moe.router.weight.grad.abs().sum() > 0


def test_every_parameter_gets_a_gradient():
    # Includes every FFN expert of every layer, the constant experts' vectors and mixing
    # weights, and the gating-residual maps.
    torch.manual_seed(0)
    tokens = [2, 1, 4, 1]
    model = moepp(num_modalities=4, dim=DIM, tokens=tokens).train()
    out = model(embeddings(tokens, batch=4))
    probe_loss(out).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_eval_is_deterministic():
    torch.manual_seed(0)
    tokens = [3, 1]
    model = moepp(num_modalities=2, dim=DIM, tokens=tokens, dropout=0.5).eval()
    x = embeddings(tokens)
    a, b = model(x), model(x)
    torch.testing.assert_close(a.latent, b.latent)
    torch.testing.assert_close(a.aux_loss, b.aux_loss)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        moepp(num_modalities=2, dim=DIM, tokens=[1, 1], top_k=9)
    with pytest.raises(ValueError):
        moepp(num_modalities=2, dim=DIM, tokens=[1, 1], num_experts=0)
    with pytest.raises(TypeError):
        moepp(num_modalities=2, dim=DIM, tokens=[1, 1], experts=4)


def test_each_group_has_its_own_load_balancing_loss():
    """Routing is per token; the loss of G folded groups is the mean of each group's alone."""
    torch.manual_seed(0)
    tokens = [2, 1, 3]
    model = moepp(num_modalities=3, dim=DIM, tokens=tokens, dropout=0.0).eval()
    passes = [embeddings(tokens, batch=2, seed=seed) for seed in range(4)]  # P = 4, B = 2
    folded = [torch.cat(parts) for parts in zip(*passes, strict=True)]
    together = model(folded, groups=4)
    alone = [model(one) for one in passes]
    torch.testing.assert_close(together.latent, torch.cat([a.latent for a in alone]))
    torch.testing.assert_close(together.aux_loss, torch.stack([a.aux_loss for a in alone]).mean())
    torch.testing.assert_close(model(folded).latent, together.latent)
