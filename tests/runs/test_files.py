"""Tests of ``i2moe.runs.files``: atomic writes, the output folder, checkpoint reading."""

from __future__ import annotations

import pickle

import pytest
import torch

from i2moe.runs.files import (
    RunError,
    check_output,
    prepare_output,
    read_checkpoint,
    write_atomic,
)


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_atomic(target, "old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_check_output_writes_nothing_and_refuses_what_it_must(tmp_path):
    new = tmp_path / "new"
    assert check_output(new, resume=False, overwrite=False) is False
    assert not new.exists()
    with pytest.raises(RunError, match="exclude each other"):
        check_output(new, resume=True, overwrite=True)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(RunError, match="is a file"):
        check_output(a_file, resume=False, overwrite=True)

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(RunError, match="not empty.*--resume.*--overwrite"):
        check_output(run, resume=False, overwrite=False)
    assert check_output(run, resume=True, overwrite=False) is True

    other = tmp_path / "home"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    for flags in ({"resume": True, "overwrite": False}, {"resume": False, "overwrite": True}):
        with pytest.raises(RunError, match="not an i2moe run \\(thesis.tex\\)"):
            prepare_output(other, **flags)
    assert (other / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("marker", ["seed_1/run.json", "row/seed_1/run.json"])
def test_prepare_output_overwrite_replaces_runs_of_several_seeds_or_rows(tmp_path, marker):
    run = tmp_path / "run"
    (run / marker).parent.mkdir(parents=True)
    (run / marker).write_text("{}")
    (run / "summary.csv").write_text("x")
    prepare_output(run, resume=False, overwrite=True)
    assert run.is_dir() and not any(run.iterdir())


class _RunsCode:
    def __reduce__(self):
        return (print, ("a checkpoint must never run code",))


@pytest.mark.parametrize("damage", ["truncated", "foreign", "pickle", "text"])
def test_read_checkpoint_refuses_damaged_and_foreign_files(tmp_path, damage):
    path = tmp_path / "best.ckpt"
    if damage == "truncated":
        torch.save({"hyper_parameters": {}, "state_dict": {"w": torch.ones(1000)}}, path)
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "foreign":
        torch.save({"a": 1}, path)
    elif damage == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": _RunsCode()}))
    else:
        path.write_text("not a checkpoint")
    with pytest.raises(RunError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "expected" in message
    if damage == "foreign":
        assert "not an i2moe checkpoint" in message
    with pytest.raises(RunError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.ckpt")
