"""Tests of i2moe.fusion.transformer (the ``transformer`` backbone)."""

import pytest
import torch

from helpers import embeddings, probe_loss
from i2moe.fusion import FUSIONS
from i2moe.fusion.transformer import SelfAttention, TransformerBlock, transformer

DIM = 8


def test_registered_under_transformer():
    assert FUSIONS["transformer"] is transformer


@pytest.mark.parametrize("tokens", [[1, 3], [2, 1, 4, 1]])
def test_output_shape(tokens):
    torch.manual_seed(0)
    model = transformer(num_modalities=len(tokens), dim=DIM, tokens=tokens, num_heads=2)
    out = model(embeddings(tokens))
    assert model.out_dim == len(tokens) * DIM
    assert out.latent.shape == (3, len(tokens) * DIM)
    assert out.aux_loss.shape == () and out.aux_loss.item() == 0.0


def test_latent_is_the_per_modality_mean_of_the_normed_tokens():
    torch.manual_seed(0)
    tokens = [2, 3]
    model = transformer(num_modalities=2, dim=DIM, tokens=tokens, num_layers=1).eval()
    x = embeddings(tokens)
    h = torch.cat(x, dim=1) + model.position
    h = model.norm(model.blocks[0](h))
    expected = torch.cat([h[:, :2].mean(1), h[:, 2:].mean(1)], dim=-1)
    torch.testing.assert_close(model(x).latent, expected)


def test_attention_mixes_tokens_across_modalities():
    torch.manual_seed(0)
    tokens = [1, 2]
    model = transformer(num_modalities=2, dim=DIM, tokens=tokens, dropout=0.0).eval()
    x = embeddings(tokens)
    changed = [x[0], torch.randn_like(x[1])]
    # Modality 0's pooled block changes although only modality 1's input did.
    assert not torch.allclose(model(x).latent[:, :DIM], model(changed).latent[:, :DIM])


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    tokens = [2, 1, 4, 1]
    model = transformer(num_modalities=4, dim=DIM, tokens=tokens).train()
    probe_loss(model(embeddings(tokens))).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_block_residual_around_attention():
    # With the attention output projection zeroed the block is x + MLP(LN(x)): the residual
    # around attention is there (the authors' block dropped it).
    torch.manual_seed(0)
    block = TransformerBlock(DIM, num_heads=2, dropout=0.0).eval()
    with torch.no_grad():
        block.attn.proj.weight.zero_()
        block.attn.proj.bias.zero_()
    x = torch.randn(3, 4, DIM)
    torch.testing.assert_close(block(x), x + block.mlp(block.norm2(x)))


def test_block_residual_around_mlp():
    torch.manual_seed(0)
    block = TransformerBlock(DIM, num_heads=2, dropout=0.0).eval()
    with torch.no_grad():
        block.mlp[-1].weight.zero_()
        block.mlp[-1].bias.zero_()
    x = torch.randn(3, 4, DIM)
    torch.testing.assert_close(block(x), x + block.attn(block.norm1(x)))


def test_self_attention_matches_manual_softmax_attention():
    torch.manual_seed(0)
    attn = SelfAttention(DIM, num_heads=1).eval()
    x = torch.randn(2, 3, DIM)
    q, k, v = attn.qkv(x).split(DIM, dim=-1)
    weights = (q @ k.transpose(1, 2) / DIM**0.5).softmax(-1)
    torch.testing.assert_close(attn(x), attn.proj(weights @ v))


def test_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    tokens = [3, 1]
    model = transformer(num_modalities=2, dim=DIM, tokens=tokens, dropout=0.5)
    x = embeddings(tokens)
    model.eval()
    torch.testing.assert_close(model(x).latent, model(x).latent)
    model.train()
    assert not torch.allclose(model(x).latent, model(x).latent)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        transformer(num_modalities=2, dim=DIM, tokens=[1, 1], num_heads=3)
    with pytest.raises(ValueError):
        transformer(num_modalities=3, dim=DIM, tokens=[1, 1])
