"""The paper readers' folder checks (i2moe.data.paper.folder_checks)."""

import pytest

from i2moe.data.base import DataError
from i2moe.data.paper.folder_checks import Problems


def test_read_csv_records_unreadable_files_and_missing_columns(tmp_path):
    (tmp_path / "ok.csv").write_text("id,y\na,1\n")
    (tmp_path / "bad.csv").write_bytes(b'id,y\n"a,1\n')  # unclosed quote
    problems = Problems("TEST", tmp_path)
    table = problems.read_csv("ok.csv", ("id", "y"))
    assert list(table.columns) == ["id", "y"] and problems.items == []
    assert problems.read_csv("ok.csv", ("id", "label", "site"), "(0 or 1)") is None
    assert problems.read_csv("bad.csv") is None
    assert problems.read_csv("absent.csv") is None
    assert problems.items[0] == (
        "ok.csv: column(s) label, site missing; expected columns id, label, site (0 or 1)"
    )
    assert problems.items[1].startswith("bad.csv: cannot be read as CSV (")
    assert problems.items[2].startswith("absent.csv: cannot be read as CSV (")
    with pytest.raises(DataError, match="3 problems"):
        problems.raise_if_any()
