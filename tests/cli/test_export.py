"""Tests of ``i2moe export``: a file written and checked, and every mistake one message with
exit code 2 that leaves the run folder (and an existing output file) as they were."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from helpers import write_npz
from i2moe.cli import main
from i2moe.runs import export


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _fails(capsys, *argv: str) -> str:
    """Run ``i2moe export``, check it failed cleanly, return its one error message."""
    code = main(["--quiet", "export", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    prefix = "i2moe export: error: "
    errors = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, err
    return errors[0][len(prefix) :]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A one-epoch I2MoE run of the tiny data, written by ``i2moe fit``."""
    folder = tmp_path_factory.mktemp("export_cli")
    data = write_npz(folder / "d.npz")
    run = folder / "run"
    fit = ["--quiet", "fit", "--data", str(data), "--output", str(run), "--epochs", "1"]
    assert main([*fit, "--dim", "8", "--batch-size", "16"]) == 0
    return run


@pytest.fixture
def untouched(run):
    """Fails the test if it changed a file of the run folder."""
    before = _snapshot(run)
    yield run
    assert _snapshot(run) == before


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_export_writes_a_checked_file_and_logs_the_difference(untouched, tmp_path, capsys):
    output = tmp_path / "new" / "folder" / "model.pt"  # missing folders are created
    argv = ["export", "--run", str(untouched), "--format", "torchscript", "--output", str(output)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "max abs difference from the PyTorch model" in err
    assert "inputs a, b, observed; outputs prediction, weights" in err
    assert torch.jit.load(str(output)) is not None
    assert [p.name for p in output.parent.iterdir()] == ["model.pt"]  # no temporary left


def test_a_missing_run_folder(tmp_path, capsys):
    output = tmp_path / "m.pt"
    message = _fails(
        capsys, "--run", str(tmp_path / "nope"), "--format", "torchscript", "--output", str(output)
    )
    assert (
        message
        == f"{tmp_path / 'nope'}: no such folder; expected a run folder written by 'i2moe fit'"
    )
    assert not output.exists()


def test_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    output = tmp_path / "m.pt"
    message = _fails(
        capsys, "--run", str(tmp_path / "notes"), "--format", "torchscript", "--output", str(output)
    )
    assert "not a run folder (no config.yaml)" in message
    assert not output.exists()


# The format and the output path are checked before the run is read: these need no run.


def test_an_unknown_format(tmp_path, capsys):
    output = tmp_path / "m.tflite"
    message = _fails(capsys, "--run", str(tmp_path), "--format", "tflite", "--output", str(output))
    assert message == "--format: 'tflite'; expected one of torchscript, onnx"
    assert not output.exists()


def test_an_existing_output_file_is_kept_without_overwrite(tmp_path, capsys):
    output = tmp_path / "m.pt"
    output.write_text("keep me")
    message = _fails(
        capsys, "--run", str(tmp_path), "--format", "torchscript", "--output", str(output)
    )
    assert message == f"{output}: exists already; pass --overwrite to replace it"
    assert output.read_text() == "keep me"


@pytest.mark.slow
def test_overwrite_replaces_an_existing_output_file(untouched, tmp_path):
    output = tmp_path / "m.pt"
    output.write_text("old")
    argv = ["--quiet", "export", "--run", str(untouched), "--format", "torchscript"]
    assert main([*argv, "--output", str(output), "--overwrite"]) == 0
    assert output.read_bytes()[:2] == b"PK"  # a TorchScript archive


def test_an_output_path_that_is_a_folder_or_under_a_file(tmp_path, capsys):
    argv = ("--run", str(tmp_path), "--format", "torchscript", "--output")
    message = _fails(capsys, *argv, str(tmp_path))
    assert message == f"{tmp_path}: is a folder; expected the path of the file to write"
    (tmp_path / "file").write_text("")
    message = _fails(capsys, *argv, str(tmp_path / "file" / "m.pt"))
    assert message.endswith(f"{tmp_path / 'file'} is a file; expected a folder (or none) there")


def test_missing_onnx_packages_name_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # find_spec then finds nothing
    output = tmp_path / "m.onnx"
    message = _fails(capsys, "--run", str(tmp_path), "--format", "onnx", "--output", str(output))
    assert message == 'exporting to ONNX needs onnxruntime: pip install "i2moe[export]"'
    assert not output.exists()


@pytest.mark.slow
def test_an_exporter_failure_names_the_backbone(untouched, tmp_path, capsys, monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate\nmore detail")

    monkeypatch.setattr(torch.jit, "trace", unsupported)
    output = tmp_path / "m.pt"
    message = _fails(
        capsys, "--run", str(untouched), "--format", "torchscript", "--output", str(output)
    )
    assert message == (
        "the 'transformer' backbone cannot be exported to torchscript: "
        "unsupported operator aten::frobnicate"
    )
    assert not output.exists()


@pytest.mark.slow
def test_a_file_over_the_tolerance_is_refused_and_removed(untouched, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", 0.0)
    output = tmp_path / "m.pt"
    message = _fails(
        capsys, "--run", str(untouched), "--format", "torchscript", "--output", str(output)
    )
    assert message.startswith("the 'transformer' backbone does not export faithfully")
    assert "tolerance 0" in message and message.endswith(f"nothing written to {output}")
    assert list(tmp_path.iterdir()) == []
