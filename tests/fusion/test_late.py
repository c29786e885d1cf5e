"""Tests of i2moe.fusion.late (the ``lf`` backbone)."""

import pytest
import torch

from helpers import embeddings
from i2moe.fusion import FUSIONS
from i2moe.fusion.late import LateFusion, late_fusion

DIM = 8


def test_registered_under_lf():
    assert FUSIONS["lf"] is late_fusion


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
@pytest.mark.parametrize("pool", ["flatten", "mean"])
@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_output_shape(tokens, pool, combine):
    torch.manual_seed(0)
    model = late_fusion(
        num_modalities=len(tokens), dim=DIM, tokens=tokens, hidden=6, pool=pool, combine=combine
    )
    out = model(embeddings(tokens))
    expected = 6 * len(tokens) if combine == "concat" else 6
    assert model.out_dim == expected
    assert out.latent.shape == (3, expected)
    assert out.aux_loss.item() == 0.0


def test_modalities_stay_separate_until_the_end():
    # With concatenation, changing modality 1 must leave modality 0's block untouched.
    torch.manual_seed(0)
    model = LateFusion(
        dim=DIM,
        tokens=[2, 3],
        hidden=5,
        num_layers=2,
        dropout=0.0,
        pool="flatten",
        combine="concat",
    ).eval()
    x = embeddings([2, 3])
    changed = [x[0], x[1] + 1.0]
    a, b = model(x).latent, model(changed).latent
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_sum_equals_sum_of_concat_blocks():
    torch.manual_seed(0)
    kwargs = dict(dim=DIM, tokens=[1, 2, 2], hidden=4, num_layers=2, dropout=0.0, pool="mean")
    concat = LateFusion(**kwargs, combine="concat").eval()
    summed = LateFusion(**kwargs, combine="sum").eval()
    summed.load_state_dict(concat.state_dict())
    x = embeddings([1, 2, 2])
    blocks = concat(x).latent.view(3, 3, 4)
    torch.testing.assert_close(summed(x).latent, blocks.sum(dim=1))


def test_mean_pool_ignores_token_order_flatten_does_not():
    torch.manual_seed(0)
    x = embeddings([3, 1])
    swapped = [x[0].flip(1), x[1]]
    for pool, same in [("mean", True), ("flatten", False)]:
        model = late_fusion(num_modalities=2, dim=DIM, tokens=[3, 1], pool=pool).eval()
        assert torch.allclose(model(x).latent, model(swapped).latent, atol=1e-6) is same


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    tokens = [2, 1, 3, 1]
    model = late_fusion(num_modalities=4, dim=DIM, tokens=tokens, combine="sum").train()
    out = model(embeddings(tokens))
    (out.latent.sum() + out.aux_loss).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_eval_is_deterministic():
    torch.manual_seed(0)
    model = late_fusion(num_modalities=2, dim=DIM, tokens=[1, 2], dropout=0.5).eval()
    x = embeddings([1, 2])
    torch.testing.assert_close(model(x).latent, model(x).latent)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        late_fusion(num_modalities=2, dim=DIM, tokens=[1, 1], pool="max")
    with pytest.raises(ValueError):
        late_fusion(num_modalities=2, dim=DIM, tokens=[1, 1], combine="product")
