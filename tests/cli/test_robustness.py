"""``i2moe robustness`` and ``i2moe test --drop`` through the real command line."""

from __future__ import annotations

import json

import pytest

from helpers import listing
from i2moe.cli import main
from i2moe.runs.evaluation import evaluate_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robustness")
    data = folder / "mixed3.npz"
    synth = ["--quiet", "synth", "--interaction", "mixed", "--modalities", "3"]
    assert main([*synth, "--samples", "90", "--dim", "4", "--output", str(data)]) == 0
    run = folder / "run"
    args = ["--quiet", "fit", "--data", str(data), "--output", str(run), "--epochs", "1"]
    assert main([*args, "--dim", "8", "--seeds", "0"]) == 0
    return run


@pytest.mark.slow
def test_robustness_prints_a_table_and_writes_the_json(run, capsys):
    assert main(["--quiet", "robustness", "--run", str(run)]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| mod")]
    assert len(rows) == 7
    assert table.startswith("| present | absent | accuracy |")
    written = json.loads((run / "robustness.json").read_text())
    assert [entry["present"] for entry in written][0] == ["mod0", "mod1", "mod2"]
    assert written[0]["metrics"] == pytest.approx(evaluate_run(run))


@pytest.mark.slow
def test_robustness_json_goes_where_asked(run, tmp_path, capsys):
    before = listing(run)
    target = tmp_path / "out" / "rows.json"
    assert main(["--quiet", "robustness", "--run", str(run), "--json", str(target)]) == 0
    assert len(json.loads(target.read_text())) == 7
    assert listing(run) == before


@pytest.mark.slow
def test_test_drop_prints_the_metrics_without_the_modalities(run, capsys):
    capsys.readouterr()
    assert main(["--quiet", "test", "--run", str(run), "--drop", "mod0", "mod2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == pytest.approx(evaluate_run(run, drop=["mod2", "mod0"]))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        (["nope"], "cannot drop 'nope': not a modality of the run; expected names from: mod0"),
        (["mod0", "mod1", "mod2"], "cannot drop every modality (mod0, mod1, mod2)"),
    ],
)
def test_a_bad_drop_is_one_message_and_leaves_the_run_alone(run, capsys, drop, expected):
    before = listing(run)
    capsys.readouterr()
    assert main(["test", "--run", str(run), "--drop", *drop]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("i2moe test: error: ")
    assert expected in lines[0]
    assert captured.out == ""
    assert listing(run) == before


@pytest.mark.parametrize("command", ["robustness", "test"])
def test_a_folder_that_is_not_a_run_is_one_message(tmp_path, capsys, command):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    assert main([command, "--run", str(folder)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "not a run folder" in lines[0]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
