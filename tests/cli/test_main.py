"""Tests of the ``i2moe`` command line: every user mistake ends with exit code 2 and one message
naming the file, the field and the expected form, before anything is written.

Most cases fail before training, so they run in well under a second each; the few that need a
run folder share one tiny run trained once per module.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from i2moe.cli import fusions, main
from i2moe.config import RunConfig
from i2moe.runs.fitting import fit_one

FIT = ("--quiet", "fit", "--epochs", "1", "--dim", "8", "--batch-size", "16")


def _arrays(num_samples: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(num_samples) % 2
    return {
        "a": rng.normal(size=(num_samples, 3)) + y[:, None],
        "b": rng.normal(size=(num_samples, 2)),
        "y": y,
    }


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def _fails(capsys, *argv: str, command: str = "fit") -> str:
    """Run the command line, check it failed cleanly, return its error message."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    prefix = f"i2moe {command}: error: "
    errors = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(errors) == 1, err
    # A paper reader lists its problems on the lines after the first.
    return err[err.index(errors[0]) + len(prefix) :].strip()


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def out(tmp_path) -> str:
    return str(tmp_path / "out")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A one-epoch run of the tiny data (written by ``fit_one``, without interpretation)."""
    folder = tmp_path_factory.mktemp("cli_run")
    data = _npz(folder / "d.npz", **_arrays())
    config = RunConfig()
    config.data.name = data
    config.model.dim = 8
    config.train.epochs = 1
    config.train.batch_size = 16
    run = folder / "run"
    run.mkdir()
    fit_one(config, run, 0, progress=False, interpret=False)
    return run


@pytest.fixture
def run_copy(run_folder, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy)
    return copy


# --- bad data ------------------------------------------------------------------------------


def test_missing_label_array(tmp_path, capsys, out):
    arrays = _arrays()
    del arrays["y"]
    data = _npz(tmp_path / "d.npz", **arrays)
    message = _fails(capsys, *FIT, "--data", data, "--output", out)
    assert message.startswith(f"{data}: has no array 'y'; expected an array 'y' with the labels")
    assert not Path(out).exists()


def test_modality_with_another_number_of_samples(tmp_path, capsys, out):
    arrays = _arrays()
    arrays["a"] = arrays["a"][:50]
    data = _npz(tmp_path / "d.npz", **arrays)
    message = _fails(capsys, *FIT, "--data", data, "--output", out)
    assert f"{data}: array 'a': has 50 samples but 'y' has 60; expected" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_features_are_an_error_unless_cleaned(tmp_path, capsys, out, bad):
    arrays = _arrays()
    arrays["a"][3, 1] = bad
    data = _npz(tmp_path / "d.npz", **arrays)
    message = _fails(capsys, *FIT, "--data", data, "--output", out)
    assert f"{data}: array 'a': 1 NaN/inf values" in message and "first at row 3" in message
    assert "expected finite numbers" in message
    # With --clean-nonfinite the data loads: the run now stops at the next check, which
    # compares the config with the data's modalities (so nothing is trained here).
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"model": {"encoders": {"zz": "mlp"}}}))
    message = _fails(
        capsys, *FIT, "--data", data, "--output", out, "--config", str(config), "--clean-nonfinite"
    )
    assert "model.encoders" in message and "(not zz)" in message


@pytest.mark.parametrize(
    ("labels", "options", "expected"),
    [
        (np.array(["cat", "dog"] * 30), (), "array 'y': holds text or object (<U3) values"),
        (np.arange(60) % 3 - 1, (), "array 'y': holds the negative class id -1; expected"),
        (
            np.array(["1.5", "2"] * 30),
            ("--task", "regression"),
            "array 'y': holds text or object (<U3) values; expected",
        ),
    ],
    ids=["strings", "negative", "text-regression"],
)
def test_labels_that_do_not_fit_the_task(tmp_path, capsys, out, labels, options, expected):
    data = _npz(tmp_path / "d.npz", **{**_arrays(), "y": labels})
    message = _fails(capsys, *FIT, "--data", data, "--output", out, *options)
    assert message.startswith(f"{data}: {expected}")


def test_class_absent_from_training(tmp_path, capsys, out):
    arrays = _arrays()
    arrays["y"][:40] = 0  # class 1 only in val and test
    split = np.array([0] * 40 + [1] * 10 + [2] * 10)
    data = _npz(tmp_path / "d.npz", **arrays, split=split)
    message = _fails(capsys, *FIT, "--data", data, "--output", out)
    assert f"{data}: array 'split': class 1 occurs in the val split but not in train" in message


def test_text_regression_target_in_a_table(tmp_path, capsys, out):
    frame = pd.DataFrame({"f1": np.arange(60.0), "f2": np.ones(60), "label": ["low", "high"] * 30})
    frame.to_csv(tmp_path / "t.csv", index=False)
    mapping = tmp_path / "columns.yaml"
    mapping.write_text(yaml.safe_dump({"target": "label", "modalities": {"m1": ["f1"]}}))
    message = _fails(
        capsys,
        *FIT,
        "--data",
        str(tmp_path / "t.csv"),
        "--columns",
        str(mapping),
        "--task",
        "regression",
        "--output",
        out,
    )
    assert message.startswith(f"{tmp_path / 't.csv'}: column 'label': holds text")
    assert "expected numbers for task 'regression'" in message


def test_a_table_needs_its_column_mapping(tmp_path, capsys, out):
    pd.DataFrame({"f1": [1.0, 2.0], "label": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    message = _fails(capsys, *FIT, "--data", str(tmp_path / "t.csv"), "--output", out)
    assert "t.csv: a table needs its column mapping; expected --columns mapping.yaml" in message


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        ([0] * 40 + [1] * 10 + [3] * 10, "array 'split': holds the values 3; expected one split"),
        ([0] * 50 + [2] * 10, "array 'split': the val split is empty (50 train, 0 val, 10 test"),
    ],
    ids=["value-3", "empty-val"],
)
def test_bad_split(tmp_path, capsys, out, split, expected):
    data = _npz(tmp_path / "d.npz", **_arrays(), split=np.array(split))
    message = _fails(capsys, *FIT, "--data", data, "--output", out)
    assert message.startswith(f"{data}: {expected}") and "expected" in message


def test_modality_with_zero_features(tmp_path, capsys, out):
    data = _npz(tmp_path / "d.npz", **{**_arrays(), "a": np.zeros((60, 0))})
    message = _fails(capsys, *FIT, "--data", data, "--output", out)
    assert f"{data}: array 'a': has zero features (shape (60, 0)); expected" in message


def test_paper_dataset_folder_problems_are_listed(tmp_path, capsys, out):
    message = _fails(capsys, *FIT, "--data", f"paper:mosi:{tmp_path}", "--output", out)
    assert message.startswith(f"CMU-MOSI folder {tmp_path} is not in the expected format")
    assert "mosi_data.pkl: missing; expected" in message


def test_missing_optional_dependency_is_a_clean_error(tmp_path, capsys, out, monkeypatch):
    (tmp_path / "multimodal_imdb.hdf5").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    message = _fails(capsys, *FIT, "--data", f"paper:imdb:{tmp_path}", "--output", out)
    assert "needs h5py" in message and 'pip install "i2moe[paper]"' in message


def test_import_errors_of_optional_packages_only(capsys, monkeypatch):
    def missing(args):
        raise ModuleNotFoundError("No module named 'dit'", name="dit")

    monkeypatch.setattr(fusions, "run", missing)
    message = _fails(capsys, "fusions", command="fusions")
    assert message.startswith("No module named 'dit'; an optional dependency is missing")

    def broken(args):
        raise ImportError("cannot import name 'x' from 'i2moe.model'", name="i2moe.model")

    monkeypatch.setattr(fusions, "run", broken)
    with pytest.raises(ImportError):  # a bug of the package keeps its traceback
        main(["fusions"])


def test_unknown_dataset_lists_the_valid_names(capsys, out):
    message = _fails(capsys, *FIT, "--data", "nope", "--output", out)
    assert "unknown name 'nope'; expected one of" in message and "mfeat" in message


# --- bad configuration ---------------------------------------------------------------------


def test_unknown_key_in_a_config(tmp_path, capsys, out):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"train": {"epochs": 1, "epochz": 2}}))
    message = _fails(capsys, *FIT, "--config", str(config), "--output", out)
    assert message.startswith(f"{config}: train: unknown key(s) epochz; valid keys:")


def test_config_that_is_not_yaml_or_missing(tmp_path, capsys, out):
    config = tmp_path / "run.yaml"
    config.write_text("train: [epochs: 1\n")
    assert _fails(capsys, *FIT, "--config", str(config), "--output", out).startswith(
        f"{config}: not valid YAML"
    )
    missing = tmp_path / "none.yaml"
    message = _fails(capsys, *FIT, "--config", str(missing), "--output", out)
    assert message == f"{missing}: config file not found"


def test_unknown_fusion_lists_the_valid_ones(tmp_path, capsys, out):
    data = _npz(tmp_path / "d.npz", **_arrays())
    message = _fails(capsys, *FIT, "--data", data, "--fusion", "nope", "--output", out)
    assert message.startswith("--fusion: 'nope'; expected one of ef, interpretcc, lf, lrtf,")
    assert "transformer" in message


def test_unknown_encoder_in_a_config_lists_the_valid_ones(tmp_path, capsys, out):
    data = _npz(tmp_path / "d.npz", **_arrays())
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"model": {"encoders": {"m0": "nope"}}}))
    message = _fails(capsys, *FIT, "--data", data, "--config", str(config), "--output", out)
    assert message.startswith(f"{config}: model.encoders.m0: 'nope'; expected one of ")
    assert "gru" in message and "mlp" in message


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--epochs", "0"), "--epochs: 0; expected a whole number >= 1"),
        (("--batch-size", "-4"), "--batch-size: -4; expected a whole number >= 1"),
        (("--accelerator", "nope"), "--accelerator (accelerator 'nope'"),
        (("--perturb-k", "5"), "--perturb-k: 5; expected 1 to 2 (the modalities)"),
        (("--gradient-clip", "-1"), "--gradient-clip: -1.0; expected a positive number"),
    ],
)
def test_bad_training_settings(tmp_path, capsys, out, flags, expected):
    data = _npz(tmp_path / "d.npz", **_arrays())
    message = _fails(capsys, *FIT, "--data", data, "--output", out, *flags)
    assert message.startswith(expected)
    assert not Path(out).exists()


def test_debug_shows_the_traceback(tmp_path):
    data = _npz(tmp_path / "d.npz", a=np.ones((4, 2)))
    with pytest.raises(Exception, match="has no array 'y'"):
        main(["--debug", *FIT, "--data", data, "--output", str(tmp_path / "out")])


# --- checkpoints and run folders -----------------------------------------------------------


def test_truncated_checkpoint(run_copy, capsys):
    best = run_copy / "checkpoints" / "best.ckpt"
    best.write_bytes(best.read_bytes()[:1000])
    message = _fails(capsys, "test", "--run", str(run_copy), command="test")
    assert message.startswith(f"{best}: cannot load this checkpoint (")
    assert "expected a complete file written by 'i2moe fit'" in message


def test_foreign_checkpoint(run_copy, capsys):
    import torch

    best = run_copy / "checkpoints" / "best.ckpt"
    torch.save({"a": 1}, best)
    message = _fails(capsys, "test", "--run", str(run_copy), command="test")
    assert message.startswith(f"{best}: not an i2moe checkpoint; expected a file written by")


def test_test_and_predict_need_a_run_folder(tmp_path, capsys):
    message = _fails(capsys, "test", "--run", str(tmp_path / "nothing"), command="test")
    assert message.startswith(f"{tmp_path / 'nothing'}: no such folder; expected a run folder")
    message = _fails(
        capsys,
        "predict",
        "--run",
        str(tmp_path),
        "--data",
        "x.npz",
        "--output",
        str(tmp_path / "p.csv"),
        command="predict",
    )
    assert message.startswith(f"{tmp_path}: not a run folder (no config.yaml)")


def test_predict_with_data_of_other_modalities(run_copy, tmp_path, capsys):
    other = _npz(
        tmp_path / "other.npz", a=np.zeros((40, 3)), c=np.zeros((40, 5)), y=np.arange(40) % 2
    )
    message = _fails(
        capsys,
        "predict",
        "--run",
        str(run_copy),
        "--data",
        other,
        "--output",
        str(tmp_path / "p.csv"),
        command="predict",
    )
    assert message.startswith(f"{other}: has the modalities [('a', [3]), ('c', [5])]; expected")
    assert not (tmp_path / "p.csv").exists()


def test_an_existing_run_is_refused_and_left_untouched(run_copy, capsys):
    before = _snapshot(run_copy)
    message = _fails(capsys, *FIT, "--data", "mfeat", "--output", str(run_copy))
    assert message == (
        f"{run_copy}: the output folder is not empty (it may hold a run); pass --resume to "
        "continue it or --overwrite to replace it"
    )
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (("--data", "missing.npz"), "missing.npz: file not found"),
        (("--fusion", "nope"), "--fusion: 'nope'"),
        (("--epochs", "0"), "--epochs: 0"),
    ],
    ids=["data", "fusion", "epochs"],
)
def test_overwrite_deletes_nothing_when_the_new_run_cannot_start(
    run_copy, capsys, monkeypatch, mistake, expected
):
    monkeypatch.chdir(run_copy.parent)
    before = _snapshot(run_copy)
    args = [*FIT, "--data", "d.npz", "--output", str(run_copy), "--overwrite", *mistake]
    assert _fails(capsys, *args).startswith(expected)
    assert _snapshot(run_copy) == before


def test_resume_with_another_configuration_is_refused(run_copy, capsys):
    before = _snapshot(run_copy)
    data = yaml.safe_load((run_copy / "config.yaml").read_text())["data"]["name"]
    args = ["fit", "--data", data, "--dim", "16", "--output", str(run_copy), "--resume"]
    message = _fails(capsys, *args)
    assert message.startswith(f"{run_copy / 'config.yaml'}: --resume with another configuration")
    assert "model.dim: 8 in the run, 16 now" in message
    assert _snapshot(run_copy) == before


def test_resume_and_overwrite_together(tmp_path, capsys, out):
    message = _fails(capsys, *FIT, "--data", "mfeat", "--output", out, "--resume", "--overwrite")
    assert message.startswith("--resume and --overwrite exclude each other; expected")


def test_output_that_is_a_file_or_not_a_run(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    message = _fails(capsys, *FIT, "--data", "mfeat", "--output", str(a_file), "--overwrite")
    assert message.startswith(f"{a_file}: is a file; expected a folder")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    message = _fails(capsys, *FIT, "--data", "mfeat", "--output", str(folder), "--overwrite")
    assert "holds files that are not an i2moe run (notes.txt)" in message
    assert (folder / "notes.txt").read_text() == a_file.read_text() == "keep me"


# --- commands that work --------------------------------------------------------------------


def test_listing_commands_and_registered_sub_commands(capsys):
    assert main(["fusions"]) == 0
    assert "transformer" in capsys.readouterr().out.split()
    assert main(["datasets"]) == 0
    assert "mfeat" in capsys.readouterr().out
    # Other modules' sub-commands (explain, ...) register through EXTRA_COMMANDS.
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "explain" in capsys.readouterr().out


def test_test_command_prints_the_metrics(run_folder, capsys):
    assert main(["test", "--run", str(run_folder), "--split", "val"]) == 0
    assert '"accuracy"' in capsys.readouterr().out


def test_reproduce_accepts_the_spellings_users_type(tmp_path, capsys):
    assert (
        main(["reproduce", "--dataset", "mmimdb", "--data-root", str(tmp_path), "--dry-run"]) == 0
    )
    assert "imdb_transformer.yaml" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["reproduce", "--dataset", "cifar", "--data-root", str(tmp_path)])
    assert "expected one of mosi (cmu-mosi" in capsys.readouterr().err


def test_quiet_silences_lightning(tmp_path, capfd):
    from helpers import write_npz

    data = write_npz(tmp_path / "d.npz")
    flags = ["--epochs", "1", "--dim", "8", "--batch-size", "16"]
    assert (
        main(["--quiet", "fit", "--data", str(data), "--output", str(tmp_path / "r"), *flags]) == 0
    )
    err = capfd.readouterr().err
    assert "Restoring states" not in err and "GPU available" not in err, err
