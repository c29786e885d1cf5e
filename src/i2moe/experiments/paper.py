"""The I2MoE paper's tables as data, read from ``paper.yaml`` beside this module.

The datasets with their metric columns, the backbones, ablations and masking strategies under
the paper's names and in its row order, the titles of the tables ``i2moe reproduce`` writes,
and the numbers of the paper's Table 1 (docs/method.md section 8).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

PAPER_FILE = Path(__file__).with_name("paper.yaml")

# method -> dataset -> metric -> (mean %, std %)
Table1 = dict[str, dict[str, dict[str, tuple[float, float]]]]


@dataclass(frozen=True)
class PaperTable:
    """One table ``i2moe reproduce`` writes: its title and where its paper column comes from."""

    title: str
    note: str


@dataclass(frozen=True)
class Paper:
    """What ``paper.yaml`` holds.

    Attributes:
        metrics: dataset -> ((our metric name, the paper's column name), ...), the datasets in
            the order of Table 1's columns.
        backbones: fusion backbone -> its name in the paper, in the paper's row order.
        ablations: ablation -> its row name in Table 4.
        maskings: Table 5's masking strategies, in its row order.
        tables: table number -> its title and note.
        table1: the paper's Table 1.
    """

    metrics: dict[str, tuple[tuple[str, str], ...]]
    backbones: dict[str, str]
    ablations: dict[str, str]
    maskings: tuple[str, ...]
    tables: dict[int, PaperTable]
    table1: Table1


@functools.cache
def paper() -> Paper:
    """The contents of ``paper.yaml`` (read once)."""
    values = yaml.safe_load(PAPER_FILE.read_text())
    return Paper(
        metrics={
            dataset: tuple(columns.items()) for dataset, columns in values["datasets"].items()
        },
        backbones=dict(values["backbones"]),
        ablations=dict(values["ablations"]),
        maskings=tuple(values["maskings"]),
        tables={int(number): PaperTable(**table) for number, table in values["tables"].items()},
        table1={
            method: {
                dataset: {metric: (float(mean), float(std)) for metric, (mean, std) in row.items()}
                for dataset, row in datasets.items()
            }
            for method, datasets in values["table1"].items()
        },
    )


def backbone_order(names: Sequence[str]) -> list[str]:
    """``names`` in the paper's row order; backbones the paper does not have follow, as given."""
    order = list(paper().backbones)
    return sorted(names, key=lambda name: order.index(name) if name in order else len(order))
