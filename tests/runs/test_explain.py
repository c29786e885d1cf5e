"""``i2moe explain`` and ``write_interpretation`` on tiny runs made by the real command line."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from i2moe.cli import main
from i2moe.data.load import load_data
from i2moe.runs.explain import default_output, write_interpretation


def test_importing_the_command_does_not_import_matplotlib():
    code = (
        "import sys, i2moe.runs.explain; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_output_never_replaces_the_test_split_files(tmp_path):
    assert default_output(tmp_path) == tmp_path / "interpretation"
    assert default_output(tmp_path, "val") == tmp_path / "interpretation" / "val"
    assert default_output(tmp_path, "test", "x/other.npz") == (
        tmp_path / "interpretation" / "other_test"
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An I2MoE run and a vanilla run on 3-modality generated data (1 epoch each)."""
    root = tmp_path_factory.mktemp("runs")
    data = root / "data.npz"
    synth = "synth --interaction mixed --modalities 3 --samples 120 --dim 8".split()
    assert main([*synth, "--output", str(data)]) == 0
    fit = "--quiet fit --epochs 1 --dim 8 --batch-size 32 --fusion ef".split()
    fit += ["--data", str(data)]
    assert main([*fit, "--output", str(root / "moe")]) == 0
    assert main([*fit, "--vanilla", "--output", str(root / "vanilla")]) == 0
    return root


@pytest.mark.slow
def test_explain_a_run_end_to_end(runs):
    run = runs / "moe"
    fit_weights = pd.read_csv(run / "interpretation" / "weights.csv")
    assert main(["--quiet", "explain", "--run", str(run), "--samples", "0", "2"]) == 0
    out = run / "interpretation"
    weights = pd.read_csv(out / "weights.csv")
    expected = ["sample", "uni_mod0", "uni_mod1", "uni_mod2", "syn", "red"]
    assert list(weights.columns) == expected
    pd.testing.assert_frame_equal(weights, fit_weights, atol=1e-6)  # the same format as fit's
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "test" and summary["samples"] == len(weights)
    assert [c["sample"] for c in summary["chosen_samples"]] == [0, 2]
    assert "interaction" in summary["weights_by_group"]  # generated data's true interactions
    for name in summary["files"]:
        assert (out / name).is_file(), name
    assert {"report.html", "samples/sample_0.png", "expert_outputs.csv"} <= set(summary["files"])
    local = pd.read_csv(out / "chosen_samples.csv")
    assert sorted(set(local["sample"])) == [0, 2]
    page = (out / "report.html").read_text()
    assert "http" not in page and 'id="sample-2"' in page


@pytest.mark.slow
def test_explain_another_split_by_id_into_its_own_folder(runs):
    run = runs / "moe"
    before = (run / "interpretation" / "weights.csv").read_bytes()
    val_ids = load_data(str(runs / "data.npz")).val.sample_ids
    command = ["--quiet", "explain", "--run", str(run), "--split", "val", "--tolerance", "0.1"]
    assert main([*command, "--ids", str(val_ids[4])]) == 0
    summary = json.loads((run / "interpretation" / "val" / "summary.json").read_text())
    assert summary["split"] == "val" and summary["samples"] == len(val_ids)
    assert summary["chosen_samples"] == [
        {"sample": 4, "id": val_ids[4], "correct": summary["chosen_samples"][0]["correct"]}
    ]
    assert (run / "interpretation" / "weights.csv").read_bytes() == before


@pytest.mark.slow
def test_explain_refuses_bad_requests(runs, capsys):
    run = str(runs / "moe")
    assert main(["explain", "--run", run, "--samples", "100000"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["explain", "--run", run, "--ids", "no-such-id"]) == 2
    assert "unknown sample id" in capsys.readouterr().err
    assert main(["explain", "--run", run, "--tolerance", "-1"]) == 2
    assert main(["explain", "--run", str(runs / "missing")]) == 2


@pytest.mark.slow
def test_a_vanilla_run_has_nothing_to_explain(runs, capsys):
    vanilla = runs / "vanilla"
    assert main(["explain", "--run", str(vanilla)]) == 2
    assert "no expert weights to explain" in capsys.readouterr().err
    assert write_interpretation(vanilla) is None
    assert not (vanilla / "interpretation" / "report.html").exists()
