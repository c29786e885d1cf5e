"""Writing an explanation (i2moe.interpret.files): the documented files and summary.json."""

import json
import logging

import pandas as pd

from i2moe.interpret.files import write_explanation, write_summary, write_tables

from .conftest import EXPERTS, hand_explanation

TABLES = {
    "weights": "weights.csv",
    "expert_outputs": "expert_outputs.csv",
    "chosen_samples": "chosen_samples.csv",
    "weight_summary": "weight_summary.csv",
    "weight_groups": "weight_groups.csv",
    "performance": "expert_performance.csv",
    "agreement": "agreement.csv",
    "sensitivity": "sensitivity.csv",
    "sensitivity_summary": "sensitivity_summary.csv",
}


def test_write_tables_writes_every_documented_table(tmp_path):
    explanation = hand_explanation()
    files = write_tables(explanation, tmp_path / "out")
    assert {name: path.name for name, path in files.items()} == TABLES
    assert all(path.exists() for path in files.values())
    weights = pd.read_csv(files["weights"])
    assert list(weights.columns) == ["sample", *EXPERTS]
    agreement = pd.read_csv(files["agreement"], index_col="experts")
    assert list(agreement.columns) == ["correct", "incorrect", "correct_count", "incorrect_count"]
    chosen = pd.read_csv(files["chosen_samples"])
    assert sorted(set(chosen["sample"])) == explanation.chosen


def test_summary_lists_every_file_written(tmp_path):
    explanation = hand_explanation()
    explanation.files = write_tables(explanation, tmp_path)
    path = write_summary(explanation, tmp_path)
    summary = json.loads(path.read_text())
    assert summary["files"] == sorted([*TABLES.values(), "summary.json"])
    assert explanation.files["summary"] == path


def test_write_explanation_without_figures_writes_no_png(tmp_path, caplog):
    explanation = hand_explanation()
    with caplog.at_level(logging.INFO, logger="i2moe.interpret.files"):
        written = write_explanation(explanation, tmp_path, figures=False, report=False)
    assert written is explanation and explanation.figures == {}
    assert "report" not in explanation.files
    assert not list(tmp_path.rglob("*.png")) and not (tmp_path / "report.html").exists()
    assert "interpretation of 5 samples written to" in caplog.text
