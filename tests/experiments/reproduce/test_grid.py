"""The runs of each paper table (i2moe.experiments.reproduce.grid)."""

import pytest

from i2moe.config import ABLATIONS
from i2moe.experiments.reproduce.grid import ReproduceError, paper_grid


def test_table1_grid_is_every_vanilla_backbone_then_i2moe_mult():
    runs = paper_grid(1)
    assert [r.method for r in runs] == [
        "EF", "LF", "LRTF", "InterpretCC", "SwitchGate", "MoE++", "MulT", "I2MoE-MulT"
    ]  # fmt: skip
    assert all(r.vanilla for r in runs[:-1]) and not runs[-1].vanilla
    assert runs[-2].folder == "transformer-vanilla" and runs[-1].folder == "transformer-i2moe"
    assert [r.method for r in paper_grid(1, ["transformer", "ef"])] == ["EF", "MulT", "I2MoE-MulT"]


def test_table2_pairs_each_backbone_with_its_i2moe():
    runs = paper_grid(2, ["switchgate"])
    assert [(r.method, r.vanilla, r.folder) for r in runs] == [
        ("SwitchGate", True, "switchgate-vanilla"),
        ("I2MoE-SwitchGate", False, "switchgate-i2moe"),
    ]
    assert len(paper_grid(2)) == 14


def test_table4_and_table5_rows():
    ablations = paper_grid(4)
    assert [r.ablation for r in ablations] == [
        "none", "no-interaction", "latent-contrastive", "simple-weight", "less-forward",
        "syn-red-only",
    ]  # fmt: skip
    assert ablations[0].folder == "transformer-i2moe"  # shared with Tables 1 and 2
    assert ablations[1].folder == "transformer-i2moe-no-interaction"
    masking = paper_grid(5)
    assert [(r.masking, r.folder) for r in masking] == [
        ("random", "transformer-i2moe"),
        ("mean", "transformer-i2moe-masking-mean"),
        ("zero", "transformer-i2moe-masking-zero"),
    ]
    assert masking[0].paper_method == "I2MoE-MulT" and masking[1].paper_method is None


def test_grid_refuses_unknown_table_and_backbone():
    with pytest.raises(ReproduceError, match="--table 3"):
        paper_grid(3)
    with pytest.raises(ReproduceError, match="unknown backbone"):
        paper_grid(1, ["mlp"])


def test_table4_has_every_ablation_of_the_library():
    assert [r.ablation for r in paper_grid(4)] == list(ABLATIONS)
