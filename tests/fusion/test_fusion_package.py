"""Tests of i2moe.fusion (the FUSIONS table, build_fusion, register_fusion)."""

import pytest
from torch import nn

import i2moe.fusion as fusion
from i2moe.fusion import FUSIONS, FusionBuilder, build_fusion, register_fusion


@pytest.fixture
def isolated_table(monkeypatch):
    """A copy of the table that a test may add to."""
    monkeypatch.setattr(fusion, "FUSIONS", dict(FUSIONS))
    return fusion.FUSIONS


def test_the_table_lists_the_built_in_backbones_under_their_own_names():
    assert sorted(FUSIONS) == [
        "ef",
        "interpretcc",
        "lf",
        "lrtf",
        "moepp",
        "switchgate",
        "transformer",
    ]
    for name, builder in FUSIONS.items():
        assert isinstance(builder, FusionBuilder) and builder.name == name


def test_build_fusion_passes_the_shared_arguments_and_options():
    model = build_fusion("ef", num_modalities=2, dim=8, tokens=(1, 3), hidden=5)
    assert model.out_dim == 5 and model.tokens == [1, 3]


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(KeyError, match="unknown fusion 'nope'; valid names: ef, interpretcc, lf"):
        build_fusion("nope", num_modalities=1, dim=8, tokens=[1])


def test_an_unknown_option_through_build_fusion_names_the_backbone():
    with pytest.raises(
        TypeError, match="fusion 'switchgate' takes no option 'experts'.*num_experts"
    ):
        build_fusion("switchgate", num_modalities=1, dim=8, tokens=[1], experts=4)


def test_register_fusion_adds_a_builder_of_ones_own(isolated_table):
    @register_fusion("mine")
    def mine(*, num_modalities: int, dim: int, tokens: list[int]) -> nn.Module:
        return nn.Linear(dim, num_modalities)

    assert isolated_table["mine"] is mine
    assert build_fusion("mine", num_modalities=3, dim=8, tokens=[1, 1, 1]).out_features == 3
    with pytest.raises(ValueError, match="fusion 'ef' is already registered"):
        register_fusion("ef")(mine)
