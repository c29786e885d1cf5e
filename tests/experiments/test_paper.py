"""The paper's tables as data (i2moe.experiments.paper, paper.yaml)."""

from i2moe.config import ABLATIONS
from i2moe.experiments.paper import backbone_order, paper
from i2moe.experiments.reproduce import PAPER_TABLE1
from i2moe.fusion import FUSIONS
from i2moe.perturbation import STRATEGIES


def test_paper_table1_numbers():
    assert PAPER_TABLE1["I2MoE-MulT"]["adni"] == {"accuracy": (65.08, 1.52), "auroc": (81.09, 0.02)}
    assert PAPER_TABLE1["LRTF"]["mosi"] == {"accuracy": (76.63, 0.18)}
    assert PAPER_TABLE1["MulT"]["imdb"] == {"f1_micro": (59.68, 0.19), "f1_macro": (51.41, 0.04)}
    assert PAPER_TABLE1["MoE++"]["enrico"]["accuracy"] == (47.83, 1.86)
    assert PAPER_TABLE1["InterpretCC"]["mimic"]["auroc"] == (61.93, 2.53)


def test_names_are_the_librarys_backbones_ablations_and_maskings():
    assert set(paper().backbones) <= set(FUSIONS)
    assert list(paper().ablations) == [a for a in ABLATIONS if a != "none"]
    assert sorted(paper().maskings) == sorted(STRATEGIES)


def test_table1_has_every_dataset_and_metric_of_each_method():
    metrics = {dataset: {m for m, _ in columns} for dataset, columns in paper().metrics.items()}
    for method, datasets in paper().table1.items():
        assert {d: set(row) for d, row in datasets.items()} == metrics, method
    vanilla = {paper().backbones[f] for f in paper().backbones}
    assert set(paper().table1) == vanilla | {"I2MoE-MulT"}


def test_backbone_order_puts_the_papers_first_then_the_others_as_given():
    assert backbone_order(["transformer", "mine", "ef", "other"]) == [
        "ef",
        "transformer",
        "mine",
        "other",
    ]
