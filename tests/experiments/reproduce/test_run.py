"""``i2moe reproduce`` (i2moe.experiments.reproduce.run) end to end on fake copies of the
paper's datasets, and loading those datasets by name."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from fakes import write_adni, write_enrico, write_imdb, write_mimic, write_mosi

from i2moe.cli import main
from i2moe.config import load_config
from i2moe.data.base import DataError
from i2moe.data.load import load_data
from i2moe.experiments.reproduce.configs import DATASETS, config_path
from i2moe.experiments.reproduce.grid import BACKBONES

ALL_CONFIGS = [(d, f) for d in DATASETS for f in BACKBONES]


# ----------------------------------------------------------------------------- paper loading


def test_load_data_reads_paper_datasets_by_name(tmp_path):
    root = write_mimic(tmp_path)
    inline = load_data(f"paper:mimic:{root}")
    by_option = load_data("paper:mimic", root=str(root), seed=5)
    assert inline.name == by_option.name == "mimic"
    assert len(inline.train) == len(by_option.train)
    assert inline.class_weights == [0.25, 0.75]


def test_load_data_paper_errors(tmp_path):
    with pytest.raises(DataError, match="unknown paper dataset 'cifar'"):
        load_data("paper:cifar", root=str(tmp_path))
    with pytest.raises(DataError, match="no dataset folder"):
        load_data("paper:mimic")
    root = write_mimic(tmp_path)
    with pytest.raises(DataError, match="not 'multilabel'"):
        load_data("paper:mimic", root=str(root), task="multilabel")
    with pytest.raises(DataError, match="sequence_chunks: 'lab' \\(length 0"):
        load_data("paper:mimic", root=str(root), sequence_chunks={"lab": 0})
    with pytest.raises(DataError, match="'image' \\(unknown\\)"):
        load_data("paper:mimic", root=str(root), sequence_chunks={"image": 2})


def test_mosi_task_follows_data_task(tmp_path):
    root = write_mosi(tmp_path, sizes=(6, 5, 5), seq_len=4)
    assert load_data("paper:mosi", root=str(root), task="regression").task == "regression"
    assert load_data("paper:mosi", root=str(root), task="classification").num_outputs == 2


def test_sequence_chunks_cut_vectors_into_padded_chunks(tmp_path):
    root = write_mimic(tmp_path, widths=(10, 16, 12))
    plain = load_data("paper:mimic", root=str(root))
    chunked = load_data("paper:mimic", root=str(root), sequence_chunks=4)
    assert [(m.shape, m.kind) for m in chunked.modalities] == [
        ((4, 3), "sequence"),
        ((4, 4), "sequence"),
        ((4, 3), "sequence"),
    ]
    item, flat = chunked.train[2], plain.train[2]
    lab = item["inputs"]["lab"]
    assert torch.equal(lab.reshape(-1)[:10], flat["inputs"]["lab"])
    assert torch.equal(lab.reshape(-1)[10:], torch.zeros(2))  # zero padding
    assert item["target"] == flat["target"]
    assert chunked.train.sample_ids == plain.train.sample_ids  # the split's attributes
    only_lab = load_data("paper:mimic", root=str(root), sequence_chunks={"lab": 2})
    assert [m.kind for m in only_lab.modalities] == ["sequence", "vector", "vector"]


# ------------------------------------------------------------------ the command line, end to end


def _reproduce(*args: str) -> int:
    return main(["--quiet", "reproduce", "--epochs", "1", "--dim", "8", "--seeds", "0", *args])


def _check_table(output: Path, table: int, methods: list[str], metrics: list[str]) -> None:
    frame = pd.read_csv(output / f"table{table}.csv")
    assert list(dict.fromkeys(frame["method"])) == methods
    assert sorted(set(frame["metric"])) == sorted(metrics)
    assert frame["mean_pct"].between(0, 100).all()
    markdown = (output / f"table{table}.md").read_text()
    assert "Smoke run" in markdown
    assert all(f"| {method} |" in markdown for method in methods)
    for folder in frame["run"].unique():
        metrics_file = output / folder / "seed_0" / "metrics.json"
        test = json.loads(metrics_file.read_text())["test"]
        assert set(test) >= {"accuracy", "auroc", "f1_macro", "f1_micro"}
        assert (output / folder / "summary.csv").exists()


@pytest.mark.slow
def test_reproduce_adni_table1(tmp_path):
    root = write_adni(tmp_path, n_subjects=40)
    output = tmp_path / "out"
    assert _reproduce("--dataset", "adni", "--data-root", str(root), "--fusion", "transformer",
                      "--output", str(output), "--set", "train.num_workers=0",
                      "--set", "model.encoder_options.genomic.hidden=8",
                      "--set", "model.fusion_options.num_heads=2") == 0  # fmt: skip
    _check_table(output, 1, ["MulT", "I2MoE-MulT"], ["accuracy", "AUROC"])
    frame = pd.read_csv(output / "table1.csv")
    paper = frame[frame["method"] == "I2MoE-MulT"].set_index("metric")["paper_mean_pct"]
    assert paper.to_dict() == {"accuracy": 65.08, "AUROC": 81.09}
    run = json.loads((output / "transformer-i2moe" / "seed_0" / "run.json").read_text())
    assert run["modalities"][0] == {"name": "image", "shape": [1, 9, 11, 9], "kind": "volume"}


@pytest.mark.slow
def test_reproduce_mimic_table2_switchgate(tmp_path):
    root = write_mimic(tmp_path)
    output = tmp_path / "out"
    assert _reproduce("--dataset", "mimic", "--data-root", str(root), "--table", "2",
                      "--fusion", "switchgate", "--output", str(output)) == 0  # fmt: skip
    _check_table(output, 2, ["SwitchGate", "I2MoE-SwitchGate"], ["accuracy", "AUROC"])
    frame = pd.read_csv(output / "table2.csv").set_index(["method", "metric"])
    assert frame.loc[("SwitchGate", "accuracy"), "paper_mean_pct"] == 70.98
    assert pd.isna(frame.loc[("I2MoE-SwitchGate", "accuracy"), "paper_mean_pct"])
    assert "not transcribed in docs/method.md" in (output / "table2.md").read_text()
    run = json.loads((output / "switchgate-i2moe" / "seed_0" / "run.json").read_text())
    assert run["modalities"][0]["shape"] == [16, 1]  # 10 features in 16 chunks (Table B)


@pytest.mark.slow
def test_reproduce_imdb_table1(tmp_path):
    root = write_imdb(tmp_path, text_dim=30, image_dim=64)
    output = tmp_path / "out"
    assert _reproduce("--dataset", "imdb", "--data-root", str(root), "--fusion", "ef",
                      "transformer", "--output", str(output),
                      "--set", "model.encoder_options.image.hidden=[16, 16]",
                      "--set", "model.encoder_options.text.hidden=[16, 16]") == 0  # fmt: skip
    _check_table(output, 1, ["EF", "MulT", "I2MoE-MulT"], ["micro-F1", "macro-F1"])


@pytest.mark.slow
def test_reproduce_mosi_table2_interpretcc(tmp_path):
    root = write_mosi(tmp_path, sizes=(12, 6, 6), seq_len=4)
    output = tmp_path / "out"
    assert _reproduce("--dataset", "mosi", "--data-root", str(root), "--table", "2",
                      "--fusion", "interpretcc", "--output", str(output),
                      "--set", "model.encoder_options.text.hidden=8") == 0  # fmt: skip
    _check_table(output, 2, ["InterpretCC", "I2MoE-InterpretCC"], ["accuracy"])


@pytest.mark.slow
def test_reproduce_enrico_table2_moepp(tmp_path):
    root = write_enrico(tmp_path)
    output = tmp_path / "out"
    assert _reproduce("--dataset", "enrico", "--data-root", str(root), "--table", "2",
                      "--fusion", "moepp", "--output", str(output), "--batch-size", "8",
                      "--set", "data.options.image_size=[32, 16]",
                      "--set", "train.num_workers=0") == 0  # fmt: skip
    _check_table(output, 2, ["MoE++", "I2MoE-MoE++"], ["accuracy"])
    config = load_config(output / "moepp-i2moe" / "seed_0" / "config.yaml")
    assert config.data.options["image_size"] == [32, 16]
    assert config.train.batch_size == 8


@pytest.mark.slow
def test_reproduce_ablations_and_masking_share_and_reuse_runs(tmp_path, capsys):
    root = write_mimic(tmp_path)
    output = tmp_path / "out"
    common = ["--dataset", "mimic", "--data-root", str(root), "--output", str(output)]
    assert _reproduce(*common, "--table", "4") == 0
    assert "| Synergy-Redundancy |" in capsys.readouterr().out
    _check_table(
        output,
        4,
        ["I2MoE-MulT (full)", "No-Interaction", "Latent-Contrastive", "Simple-Weight",
         "Less-Forward", "Synergy-Redundancy"],
        ["accuracy", "AUROC"],
    )  # fmt: skip
    syn_red = load_config(output / "transformer-i2moe-syn-red-only" / "seed_0" / "config.yaml")
    assert syn_red.model.ablation == "syn-red-only"
    weights = pd.read_csv(output / "transformer-i2moe-syn-red-only" / "seed_0" / "predictions.csv")
    assert {"weight_syn", "weight_red"} <= set(weights) and "weight_uni_lab" not in weights

    full = output / "transformer-i2moe" / "seed_0" / "metrics.json"
    stamp = full.stat().st_mtime_ns
    assert _reproduce(*common, "--table", "5") == 0  # random masking = the full run, reused
    assert full.stat().st_mtime_ns == stamp
    _check_table(
        output, 5, ["random masking", "mean masking", "zero masking"], ["accuracy", "AUROC"]
    )
    zero = load_config(output / "transformer-i2moe-masking-zero" / "seed_0" / "config.yaml")
    assert zero.model.masking == "zero"

    # Another configuration in the same folders is refused (exit 2), not silently mixed.
    assert main(["--quiet", "reproduce", *common, "--table", "5", "--epochs", "2", "--dim", "8",
                 "--seeds", "0"]) == 2  # fmt: skip
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_fit_runs_a_shipped_config_on_paper_data(tmp_path):
    root = write_mosi(tmp_path, sizes=(12, 6, 6), seq_len=4)
    output = tmp_path / "run"
    argv = ["--quiet", "fit", "--config", str(config_path("mosi", "lf")),
            "--data", f"paper:mosi:{root}", "--output", str(output), "--vanilla",
            "--epochs", "1", "--dim", "8", "--seed", "0"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    saved = load_config(output / "config.yaml")
    assert saved.model.fusion == "lf" and saved.model.vanilla
    assert saved.model.encoders["text"] == "gru"


def test_dry_run_and_list_configs(capsys, tmp_path):
    assert main(["reproduce", "--dataset", "mosi", "--data-root", str(tmp_path),
                 "--table", "4", "--dry-run"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and "mosi_transformer.yaml" in lines[0]
    assert main(["reproduce", "--list-configs"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(ALL_CONFIGS)
    assert main(["reproduce", "--dataset", "mosi"]) == 2
