"""Tests of i2moe.fusion.lrtf (the ``lrtf`` backbone, Liu et al. 2018)."""

import pytest
import torch

from helpers import embeddings
from i2moe.fusion import FUSIONS
from i2moe.fusion.lrtf import LowRankTensorFusion, low_rank_tensor_fusion

DIM = 8


def test_registered_under_lrtf():
    assert FUSIONS["lrtf"] is low_rank_tensor_fusion


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
@pytest.mark.parametrize("pool", ["mean", "flatten"])
def test_output_shape(tokens, pool):
    torch.manual_seed(0)
    model = low_rank_tensor_fusion(
        num_modalities=len(tokens), dim=DIM, tokens=tokens, hidden=10, rank=3, pool=pool
    )
    out = model(embeddings(tokens))
    assert model.out_dim == 10
    assert out.latent.shape == (3, 10)
    assert out.aux_loss.item() == 0.0


def test_equals_full_tensor_fusion_with_the_low_rank_weight():
    # The point of LRTF: the same map as tensor fusion of [1, z_1] x [1, z_2] with the weight
    # tensor sum_r w_r W_1^(r) (x) W_2^(r), without forming the outer product.
    torch.manual_seed(0)
    model = LowRankTensorFusion(dim=DIM, tokens=[2, 1], hidden=5, rank=3, pool="mean")
    x = embeddings([2, 1])
    ones = torch.ones(3, 1)
    z1 = torch.cat([ones, x[0].mean(1)], dim=-1)  # [B, D + 1]
    z2 = torch.cat([ones, x[1].mean(1)], dim=-1)
    f1, f2 = model.factors
    weight = torch.einsum("r,rih,rjh->ijh", model.rank_weights, f1, f2)  # [D+1, D+1, H]
    expected = torch.einsum("bi,bj,ijh->bh", z1, z2, weight) + model.bias
    torch.testing.assert_close(model(x).latent, expected)


def test_every_factor_is_registered_saved_and_trained():
    torch.manual_seed(0)
    tokens = [1, 2, 3, 1]
    model = low_rank_tensor_fusion(num_modalities=4, dim=DIM, tokens=tokens, rank=2)
    state = model.state_dict()
    names = dict(model.named_parameters())
    for m in range(4):
        assert f"factors.{m}" in state and f"factors.{m}" in names
    assert set(state) == set(names) == {*(f"factors.{m}" for m in range(4)), "rank_weights", "bias"}

    out = model(embeddings(tokens))
    (out.latent.sum() + out.aux_loss).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name

    # An optimiser built from model.parameters() therefore trains every factor.
    trained = {id(p) for p in model.parameters()}
    assert all(id(factor) in trained for factor in model.factors)


def test_output_scale_does_not_collapse_with_many_modalities():
    torch.manual_seed(0)
    tokens = [1] * 8
    model = low_rank_tensor_fusion(num_modalities=8, dim=DIM, tokens=tokens, hidden=16)
    std = model(embeddings(tokens, batch=4)).latent.std()
    assert 0.05 < std < 20


def test_eval_is_deterministic():
    torch.manual_seed(0)
    model = low_rank_tensor_fusion(num_modalities=2, dim=DIM, tokens=[1, 2]).eval()
    x = embeddings([1, 2])
    torch.testing.assert_close(model(x).latent, model(x).latent)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        low_rank_tensor_fusion(num_modalities=2, dim=DIM, tokens=[1, 1], rank=0)
    with pytest.raises(ValueError):
        low_rank_tensor_fusion(num_modalities=2, dim=DIM, tokens=[1, 1], pool="max")
