"""Tests of i2moe.fusion.early (the ``ef`` backbone and the shared MLP)."""

import pytest
import torch

from helpers import embeddings
from i2moe.fusion import FUSIONS, Fused
from i2moe.fusion.early import MLP, EarlyFusion, early_fusion

DIM = 8


def test_registered_under_ef():
    assert FUSIONS["ef"] is early_fusion


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
def test_output_shape(tokens):
    torch.manual_seed(0)
    model = early_fusion(num_modalities=len(tokens), dim=DIM, tokens=tokens, hidden=12)
    out = model(embeddings(tokens))
    assert isinstance(out, Fused)
    assert model.out_dim == 12
    assert out.latent.shape == (3, 12)
    assert out.aux_loss.shape == () and out.aux_loss.item() == 0.0


def test_input_is_flattened_tokens_in_order():
    torch.manual_seed(0)
    model = EarlyFusion(dim=DIM, tokens=[2, 1], hidden=6, num_layers=1, dropout=0.0).eval()
    x = embeddings([2, 1])
    linear = model.mlp.net[0]
    assert linear.in_features == 3 * DIM
    flat = torch.cat([x[0].reshape(3, -1), x[1].reshape(3, -1)], dim=-1)
    torch.testing.assert_close(model(x).latent, linear(flat))


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    tokens = [2, 1, 3]
    model = early_fusion(num_modalities=3, dim=DIM, tokens=tokens, num_layers=3).train()
    out = model(embeddings(tokens))
    (out.latent.sum() + out.aux_loss).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    tokens = [1, 2]
    model = early_fusion(num_modalities=2, dim=DIM, tokens=tokens, dropout=0.5)
    x = embeddings(tokens)
    model.eval()
    torch.testing.assert_close(model(x).latent, model(x).latent)
    model.train()
    assert not torch.allclose(model(x).latent, model(x).latent)


def test_mlp_layer_count():
    mlp = MLP(5, 7, num_layers=3, dropout=0.0)
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.modules()) == 3
    with pytest.raises(ValueError):
        MLP(5, 7, num_layers=0, dropout=0.0)


def test_rejects_mismatched_tokens_and_unknown_options():
    with pytest.raises(ValueError):
        early_fusion(num_modalities=3, dim=DIM, tokens=[1, 1])
    with pytest.raises(TypeError):
        early_fusion(num_modalities=2, dim=DIM, tokens=[1, 1], hiden=4)
