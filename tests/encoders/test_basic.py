"""General-purpose encoders and the encoder registry."""

import pytest
import torch

from i2moe.data.base import ModalitySpec
from i2moe.encoders import (
    CNNEncoder,
    GRUEncoder,
    LSTMEncoder,
    MLPEncoder,
    PatchTokenizer,
    build_encoder,
)


def test_patch_tokenizer_pads_and_cuts_into_chunks():
    tok = PatchTokenizer(10, 4, 6)  # chunks of 3, padded to 12
    assert tok.chunk == 3 and tok.pad == 2
    x = torch.randn(2, 10)
    out = tok(x)
    assert out.shape == (2, 4, 6)
    # The last chunk holds feature 9 and two zeros.
    chunk = torch.cat([x[:, 9:], torch.zeros(2, 2)], dim=1)
    torch.testing.assert_close(out[:, 3], tok.proj(chunk) + tok.patch_offset[3])


@pytest.mark.parametrize(
    "encoder, x, shape",
    [
        (MLPEncoder(5, 8), torch.randn(3, 5), (3, 8)),
        (GRUEncoder(4, 8), torch.randn(3, 7, 4), (3, 8)),
        (LSTMEncoder(4, 8), torch.randn(3, 7, 4), (3, 8)),
        (LSTMEncoder(4, 8, return_sequence=True), torch.randn(3, 7, 4), (3, 7, 8)),
        (CNNEncoder(3, 8, channels=(4, 8)), torch.randn(2, 3, 12, 10), (2, 8)),
    ],
)
def test_encoder_shapes_and_gradients(encoder, x, shape):
    out = encoder(x)
    assert out.shape == shape
    out.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_registry_builds_by_kind_and_name():
    vec = ModalitySpec("v", (12,), "vector")
    assert build_encoder(vec, 8)(torch.randn(2, 12)).shape == (2, 8)
    assert isinstance(build_encoder(vec, 8), MLPEncoder)
    seq = ModalitySpec("s", (5, 4), "sequence")
    assert isinstance(build_encoder(seq, 8), GRUEncoder)
    assert isinstance(build_encoder(seq, 8, "lstm"), LSTMEncoder)
    with pytest.raises(KeyError, match="valid names"):
        build_encoder(vec, 8, "transformer-xl")
