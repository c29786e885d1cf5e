"""The experiments' Markdown tables (i2moe.runs.tables)."""

import math

import pandas as pd
import pytest

from i2moe.runs.tables import (
    cell,
    frame_markdown,
    markdown_table,
    mean_std,
    mean_std_cell,
)


def test_mean_std_is_the_population_std():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(1.25))
    assert mean_std([0.7]) == (0.7, 0.0)


def test_cells_round_floats_only():
    assert mean_std_cell(0.98765, 0.00123, 4) == "0.9877 ± 0.0012"
    assert (cell(0.5), cell(3), cell("n/a"), cell(True)) == ("0.500", "3", "n/a", "True")


def test_markdown_table_has_a_header_a_rule_and_one_line_per_row():
    text = markdown_table(["model", "accuracy"], [["lf", 0.25], ["ef", "n/a"]], digits=2)
    assert text == "| model | accuracy |\n|---|---|\n| lf | 0.25 |\n| ef | n/a |\n"


def test_frame_markdown_uses_the_columns_as_header():
    frame = pd.DataFrame({"training": ["paper"], "top_correct": [2 / 3], "datasets": [3]})
    assert frame_markdown(frame).splitlines() == [
        "| training | top_correct | datasets |",
        "|---|---|---|",
        "| paper | 0.667 | 3 |",
    ]
