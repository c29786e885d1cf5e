"""Tests of i2moe.fusion.base (the builder that makes a backbone from its options)."""

import pytest
import torch
from torch import nn

from i2moe.fusion.base import Fused, FusionBuilder, as_fused, check_tokens


class Probe(nn.Module):
    """A backbone that records what it was built with."""

    def __init__(self, *, dim: int, tokens: list[int], width: int = 3, scale: float = 1.0):
        super().__init__()
        self.built = dict(dim=dim, tokens=tokens, width=width, scale=scale)
        self.out_dim = width


def test_options_are_the_keyword_parameters_beside_dim_and_tokens():
    builder = FusionBuilder("probe", Probe)
    assert builder.options == ("width", "scale")
    model = builder(num_modalities=2, dim=8, tokens=(1, 3), scale=2.0)
    assert model.built == dict(dim=8, tokens=[1, 3], width=3, scale=2.0)


def test_a_function_that_builds_the_parts_serves_as_well():
    def make(*, dim: int, tokens: list[int], double: bool = False) -> Probe:
        return Probe(dim=dim, tokens=tokens, width=2 * dim if double else dim)

    builder = FusionBuilder("made", make)
    assert builder.options == ("double",)
    assert builder(num_modalities=1, dim=4, tokens=[2], double=True).out_dim == 8


def test_an_unknown_option_names_the_backbone_and_its_options():
    builder = FusionBuilder("probe", Probe)
    with pytest.raises(
        TypeError, match="fusion 'probe' takes no option 'wdth'; valid options: width, scale"
    ):
        builder(num_modalities=1, dim=8, tokens=[1], wdth=4)
    with pytest.raises(TypeError, match="'a', 'b'"):
        builder(num_modalities=1, dim=8, tokens=[1], a=1, b=2)


def test_shared_arguments_are_keyword_only_and_checked():
    builder = FusionBuilder("probe", Probe)
    with pytest.raises(TypeError):
        builder(2, 8, [1, 1])
    with pytest.raises(ValueError, match="tokens has 2 entries for 3 modalities"):
        builder(num_modalities=3, dim=8, tokens=[1, 1])


@pytest.mark.parametrize("num_modalities, tokens", [(0, []), (2, [1, 0])])
def test_check_tokens_needs_a_modality_and_a_token_each(num_modalities, tokens):
    with pytest.raises(ValueError, match="at least one modality and one token"):
        check_tokens(num_modalities, tokens)


def test_as_fused_normalises_a_latent_or_a_pair():
    latent, loss = torch.randn(3, 4), torch.tensor(0.5)
    fused = Fused(latent, loss)
    assert as_fused(fused) is fused
    assert as_fused((latent, loss)) == fused
    alone = as_fused(latent)
    assert alone.latent is latent and alone.aux_loss.shape == () and alone.aux_loss.item() == 0.0
