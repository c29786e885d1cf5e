"""A reproduced table (i2moe.experiments.reproduce.results): records and the files."""

import pandas as pd
import pytest

from i2moe.config import RunConfig
from i2moe.experiments.reproduce.grid import paper_grid
from i2moe.experiments.reproduce.results import table_records, write_table


def _results(runs):
    seeds = {0: {"accuracy": 0.5, "auroc": 0.6}, 1: {"accuracy": 0.7, "auroc": 0.8}}
    return {run: {s: {"test": m} for s, m in seeds.items()} for run in runs}


def test_records_are_percent_mean_and_population_std_beside_the_paper():
    runs = paper_grid(1, ["transformer"])
    records = table_records("adni", 1, _results(runs))
    assert [(r["method"], r["metric"]) for r in records] == [
        ("MulT", "accuracy"),
        ("MulT", "AUROC"),
        ("I2MoE-MulT", "accuracy"),
        ("I2MoE-MulT", "AUROC"),
    ]
    first = records[0]
    assert first["mean_pct"] == pytest.approx(60.0) and first["std_pct"] == pytest.approx(10.0)
    assert (first["paper_mean_pct"], first["paper_std_pct"]) == (59.57, 0.66)
    assert first["seeds"] == "0 1"


def test_table_files_hold_every_row_and_say_where_the_paper_column_comes_from(tmp_path):
    runs = paper_grid(2, ["switchgate"])
    records = table_records("mosi", 2, _results(runs))
    path = write_table(records, tmp_path, "mosi", 2, RunConfig(), epochs_overridden=True)
    lines = path.read_text().splitlines()
    assert lines[0] == "# Table 2: I2MoE with each backbone against the vanilla backbone: mosi"
    assert "not transcribed in docs/method.md" in lines[3] and "Smoke run" in lines[4]
    assert lines[6:] == [
        "| method | accuracy | accuracy (paper) |",
        "|---|---|---|",
        "| SwitchGate | 60.00 ± 10.00 | 72.35 ± 0.27 |",
        "| I2MoE-SwitchGate | 60.00 ± 10.00 | n/a |",
    ]
    frame = pd.read_csv(tmp_path / "table2.csv")
    assert list(frame["method"]) == ["SwitchGate", "I2MoE-SwitchGate"]
