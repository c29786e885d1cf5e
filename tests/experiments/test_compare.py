"""``i2moe compare``: the grid of backbones and ablations, end to end on tiny data."""

import pandas as pd
import pytest

from i2moe.cli import main
from i2moe.config import ABLATIONS
from i2moe.data.synth import write_synth
from i2moe.experiments.compare import ABLATION_ROWS, BACKBONES, comparison_rows
from i2moe.fusion import FUSIONS


def test_rows_cover_every_backbone_twice_and_every_ablation():
    rows = comparison_rows()
    assert len(rows) == 2 * len(BACKBONES) + len(ABLATION_ROWS)
    vanilla = [r for r in rows if r.model.get("vanilla")]
    assert sorted(r.model["fusion"] for r in vanilla) == sorted(BACKBONES)
    ablations = [r.model["ablation"] for r in rows if "ablation" in r.model]
    assert ablations == list(ABLATION_ROWS)


def test_rows_are_every_registered_backbone_in_the_papers_order_and_every_ablation():
    assert sorted(BACKBONES) == sorted(FUSIONS)
    assert BACKBONES[:3] == ("ef", "lf", "lrtf") and BACKBONES[-1] == "transformer"
    assert ABLATION_ROWS == tuple(a for a in ABLATIONS if a != "none")


@pytest.mark.slow
def test_compare_writes_a_mean_std_table(tmp_path):
    data = write_synth(tmp_path / "mix.npz", "mixed", num_modalities=2, num_samples=120, dim=4)
    out = tmp_path / "cmp"
    code = main(
        [
            "--quiet",
            "compare",
            "--data",
            str(data),
            "--output",
            str(out),
            "--fusions",
            "lf",
            "--ablations",
            "syn-red-only",
            "--seeds",
            "0",
            "1",
            "--epochs",
            "1",
            "--dim",
            "8",
            "--batch-size",
            "32",
        ]
    )
    assert code == 0
    table = pd.read_csv(out / "table.csv")
    assert list(table["row"]) == ["lf (vanilla)", "I2MoE-lf", "I2MoE-transformer syn-red-only"]
    assert table["accuracy_std"].ge(0).all() and table["accuracy_mean"].between(0, 1).all()
    assert (out / "I2MoE-lf" / "seed_1" / "metrics.json").exists()
    assert "± " in (out / "table.md").read_text()


def test_bad_data_leaves_an_existing_comparison_untouched(tmp_path):
    out = tmp_path / "cmp"
    (out / "lf__vanilla" / "seed_0").mkdir(parents=True)
    (out / "lf__vanilla" / "seed_0" / "run.json").write_text("{}")  # marks a comparison
    (out / "table.md").write_text("old table\n")
    code = main(
        [
            "--quiet",
            "compare",
            "--data",
            str(tmp_path / "missing.npz"),
            "--output",
            str(out),
            "--overwrite",
            "--fusions",
            "lf",
            "--ablations",
        ]
    )
    assert code == 2
    assert (out / "table.md").read_text() == "old table\n"
