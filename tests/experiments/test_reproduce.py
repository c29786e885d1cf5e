"""``i2moe reproduce``, the shipped paper configs and paper-dataset loading."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from i2moe.builders import build_model
from i2moe.cli import main
from i2moe.config import ConfigError, load_config
from i2moe.data.base import DataError, ModalitySpec
from i2moe.data.load import load_data
from i2moe.experiments.reproduce import (
    BACKBONES,
    DATASETS,
    PAPER_TABLE1,
    PaperRun,
    ReproduceError,
    apply_overrides,
    build_run_config,
    config_path,
    paper_grid,
    parse_overrides,
    shipped_configs,
)
from i2moe.model import VanillaFusion, I2MoE

# The fake-data writers live beside the reader tests, in a folder without __init__.py.
sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "paper"))
from fakes import write_adni, write_enrico, write_imdb, write_mimic, write_mosi  # noqa: E402

# ------------------------------------------------------------------------------------ configs

# docs/method.md section 9 (paper Appendix G), transcribed per dataset in the order ADNI, MIMIC,
# IMDB, MOSI, ENRICO: temperature, reweighting hidden, reweighting layers, interaction weight,
# epochs, batch, experts, fusion layers, prediction layers, heads, hidden, patches (None: not in
# the table).
ORDER = ("adni", "mimic", "imdb", "mosi", "enrico")
TABLE_A = {
    "temperature": (1, 2, 2, 2, 2),
    "reweighting_hidden": (256, 128, 256, 256, 256),
    "reweighting_layers": (2, 2, 3, 3, 3),
    "interaction_weight": (0.5, 0.01, 0.5, 0.005, 0.5),
    "epochs": (50, 30, 40, 30, 50),
    "batch_size": (32, 32, 32, 32, 32),
    "experts": (None,) * 5,  # dense backbone: no sparse layer
    "fusion_layers": (2, 2, 2, 1, 2),
    "head_layers": (2, 2, 2, 1, 2),
    "heads": (4, 1, 4, 1, 4),
    "dim": (256, 128, 256, 256, 256),
    "num_patches": (16, 8, 4, 4, 8),
}
TABLE_B = {  # SwitchGate
    "temperature": (2, 2, 2, 2, 1),
    "reweighting_hidden": (256, 256, 256, 128, 128),
    "reweighting_layers": (2, 2, 2, 1, 3),
    "interaction_weight": (0.01, 0.5, 0.5, 0.001, 0.01),
    "epochs": (30, 30, 40, 50, 30),
    "batch_size": (8, 64, 64, 32, 8),
    "experts": (16, 16, 16, 4, 4),
    "fusion_layers": (2, 2, 2, 1, 1),
    "head_layers": (2, 2, 2, 1, 1),
    "heads": (4, 4, 4, 4, 2),
    "dim": (128, 256, 128, 128, 128),
    "num_patches": (8, 16, 4, 16, 4),
}
TABLE_10 = {  # MoE++
    "temperature": (2, 1, 1, 2, 1),
    "reweighting_hidden": (256, 256, 256, 128, 256),
    "reweighting_layers": (3, 2, 2, 2, 2),
    "interaction_weight": (0.5, 0.5, 0.5, 0.001, 0.5),
    "epochs": (50, 30, 40, 50, 50),
    "batch_size": (64, 32, 32, 32, 32),
    "experts": (8, 4, 4, 8, 8),
    "fusion_layers": (2, 2, 2, 1, 2),
    "head_layers": (2, 2, 2, 2, 2),
    "heads": (4, 4, 4, 4, 4),
    "dim": (256, 128, 256, 64, 64),
    "num_patches": (8, 4, 8, 4, 4),
}
TABLE_9 = {  # InterpretCC; layers and patches not in Table 9 come from Table A
    "temperature": (2, 2, 2, 1.5, 4),
    "reweighting_hidden": (128, 128, 256, 256, 256),
    "reweighting_layers": (2, 2, 3, 2, 2),
    "interaction_weight": (0.5, 0.1, 0.01, 0.001, 0.5),
    "epochs": (30, 50, 40, 50, 60),
    "batch_size": (32, 128, 32, 32, 64),
    "dim": (128, 256, 256, 128, 256),
    "tau": (1.0, 0.7, 1.0, 1.0, 0.5),
    "threshold": (0.5, 0.5, 0.6, 0.6, 0.4),
    "head_layers": TABLE_A["head_layers"],
    "num_patches": TABLE_A["num_patches"],
}
TABLES = {
    "transformer": TABLE_A,
    "switchgate": TABLE_B,
    "moepp": TABLE_10,
    "interpretcc": TABLE_9,
    "ef": TABLE_A,
    "lf": TABLE_A,
    "lrtf": TABLE_A,
}
ENCODERS = {
    "adni": {"image": "conv3d", "genomic": "mlp", "clinical": "mlp", "biospecimen": "mlp"},
    "mimic": {"lab": "lstm", "note": "lstm", "code": "lstm"},
    "imdb": {"image": "maxout", "text": "maxout"},
    "mosi": {"vision": "gru", "audio": "gru", "text": "gru"},
    "enrico": {"screenshot": "vgg11", "wireframe": "vgg11"},
}
ALL_CONFIGS = [(d, f) for d in DATASETS for f in BACKBONES]


def _expected(dataset: str, fusion: str) -> dict:
    column = ORDER.index(dataset)
    return {key: values[column] for key, values in TABLES[fusion].items()}


def test_one_config_per_dataset_and_backbone():
    names = {path.name for path in shipped_configs()}
    assert names == {f"{d}_{f}.yaml" for d, f in ALL_CONFIGS}


@pytest.mark.parametrize(("dataset", "fusion"), ALL_CONFIGS)
def test_config_numbers_match_method_tables(dataset, fusion):
    config = load_config(config_path(dataset, fusion))
    expected = _expected(dataset, fusion)
    model, train = config.model, config.train
    assert config.data.name == f"paper:{dataset}"
    assert model.fusion == fusion and not model.vanilla and model.ablation == "none"
    assert model.temperature == expected["temperature"]
    assert model.reweighting_hidden == expected["reweighting_hidden"]
    assert model.reweighting_layers == expected["reweighting_layers"]
    assert model.interaction_weight == expected["interaction_weight"]
    assert model.dim == expected["dim"]
    assert model.num_patches == expected["num_patches"]
    assert model.head_layers == expected["head_layers"]
    assert (train.epochs, train.batch_size) == (expected["epochs"], expected["batch_size"])
    assert train.lr == 1e-4 and train.seeds == [0, 1, 2]
    assert model.encoders == ENCODERS[dataset]
    options = model.fusion_options
    if fusion in ("transformer", "switchgate", "moepp"):
        assert options["num_layers"] == expected["fusion_layers"]
        assert options["num_heads"] == expected["heads"]
    if fusion in ("switchgate", "moepp"):
        assert options["num_experts"] == expected["experts"]
    if fusion == "interpretcc":
        assert options["tau"] == expected["tau"] and options["threshold"] == expected["threshold"]
        assert options["hard"] is True and options["hidden"] == expected["dim"]
    if dataset == "mimic":
        assert train.class_weights == [0.25, 0.75]
        # one LSTM step per patch
        assert config.data.options["sequence_chunks"] == expected["num_patches"]
    else:
        assert train.class_weights is None
    if dataset == "adni":
        assert config.data.options["image_form"] == "volume"
    if dataset == "enrico":
        assert model.encoder_options["screenshot"]["freeze_features"] is True


def test_config_spot_checks_against_method_text():
    """A few numbers read straight off docs/method.md section 9, one per table."""
    assert load_config(config_path("adni", "transformer")).model.interaction_weight == 0.5
    assert load_config(config_path("mosi", "transformer")).model.interaction_weight == 0.005
    assert load_config(config_path("mimic", "switchgate")).train.batch_size == 64
    assert load_config(config_path("adni", "switchgate")).model.fusion_options["num_experts"] == 16
    assert load_config(config_path("enrico", "interpretcc")).train.epochs == 60
    assert load_config(config_path("mimic", "interpretcc")).model.fusion_options["tau"] == 0.7
    assert load_config(config_path("mosi", "moepp")).model.fusion_options["num_layers"] == 1
    assert load_config(config_path("enrico", "moepp")).model.dim == 64


def test_config_headers_give_command_runtime_and_paper_figure():
    for path in shipped_configs():
        header = path.read_text().split("\ndata:")[0]
        dataset = path.stem.split("_")[0]
        assert f"i2moe fit --config src/i2moe/configs/paper/{path.name}" in header
        assert f"i2moe reproduce --dataset {dataset}" in header
        assert "Expected runtime: an ESTIMATE" in header
        assert "Paper, Table 1" in header
    header = config_path("adni", "transformer").read_text()
    assert "I2MoE-MulT accuracy 65.08 ± 1.52, AUROC 81.09 ± 0.02" in header
    assert "Why Table A (not B)" in header


def _small_specs(dataset: str, sequence_chunks: int | None) -> list[ModalitySpec]:
    """The dataset's modalities as its reader gives them, at a small size."""
    shapes = {
        "adni": {"image": (1, 9, 11, 9), "genomic": (12,), "clinical": (3,), "biospecimen": (3,)},
        "mimic": {"lab": (10,), "note": (16,), "code": (12,)},
        "imdb": {"image": (64,), "text": (30,)},
        "mosi": {"vision": (5, 20), "audio": (5, 5), "text": (5, 30)},
        "enrico": {"screenshot": (3, 32, 16), "wireframe": (3, 32, 16)},
    }[dataset]
    if sequence_chunks:  # what load_data's sequence_chunks does to the vectors
        shapes = {
            k: (sequence_chunks, math.ceil(v[0] / sequence_chunks)) for k, v in shapes.items()
        }
    return [ModalitySpec.from_shape(name, shape) for name, shape in shapes.items()]


OUTPUTS = {"adni": 3, "mimic": 2, "imdb": 23, "mosi": 2, "enrico": 20}


@pytest.mark.parametrize(("dataset", "fusion"), ALL_CONFIGS)
def test_config_builds_a_model_for_its_dataset(dataset, fusion):
    torch.manual_seed(0)
    config = load_config(config_path(dataset, fusion))
    specs = _small_specs(dataset, config.data.options.get("sequence_chunks"))
    task = "multilabel" if dataset == "imdb" else "classification"
    model = build_model(specs, task, OUTPUTS[dataset], config.model)
    assert isinstance(model, I2MoE)
    assert model.expert_names == [f"uni_{s.name}" for s in specs] + ["syn", "red"]
    model.eval()
    batch = {s.name: torch.randn(2, *s.shape) for s in specs}
    with torch.no_grad():
        output = model(batch)
    assert output.prediction.shape == (2, OUTPUTS[dataset])
    assert torch.allclose(output.weights.sum(-1), torch.ones(2))


def test_vanilla_override_builds_the_backbone_alone():
    config = build_run_config("mosi", PaperRun("LRTF", "lrtf", vanilla=True), "somewhere")
    specs = _small_specs("mosi", None)
    assert isinstance(build_model(specs, "classification", 2, config.model), VanillaFusion)


# ------------------------------------------------------------------------------ grid, tables


def test_table1_grid_is_every_vanilla_backbone_then_i2moe_mult():
    runs = paper_grid(1)
    assert [r.method for r in runs] == [
        "EF", "LF", "LRTF", "InterpretCC", "SwitchGate", "MoE++", "MulT", "I2MoE-MulT"
    ]  # fmt: skip
    assert all(r.vanilla for r in runs[:-1]) and not runs[-1].vanilla
    assert runs[-2].folder == "transformer-vanilla" and runs[-1].folder == "transformer-i2moe"
    assert [r.method for r in paper_grid(1, ["transformer", "ef"])] == ["EF", "MulT", "I2MoE-MulT"]


def test_table2_pairs_each_backbone_with_its_i2moe():
    runs = paper_grid(2, ["switchgate"])
    assert [(r.method, r.vanilla, r.folder) for r in runs] == [
        ("SwitchGate", True, "switchgate-vanilla"),
        ("I2MoE-SwitchGate", False, "switchgate-i2moe"),
    ]
    assert len(paper_grid(2)) == 14


def test_table4_and_table5_rows():
    ablations = paper_grid(4)
    assert [r.ablation for r in ablations] == [
        "none", "no-interaction", "latent-contrastive", "simple-weight", "less-forward",
        "syn-red-only",
    ]  # fmt: skip
    assert ablations[0].folder == "transformer-i2moe"  # shared with Tables 1 and 2
    assert ablations[1].folder == "transformer-i2moe-no-interaction"
    masking = paper_grid(5)
    assert [(r.masking, r.folder) for r in masking] == [
        ("random", "transformer-i2moe"),
        ("mean", "transformer-i2moe-masking-mean"),
        ("zero", "transformer-i2moe-masking-zero"),
    ]
    assert masking[0].paper_method == "I2MoE-MulT" and masking[1].paper_method is None


def test_grid_refuses_unknown_table_and_backbone():
    with pytest.raises(ReproduceError, match="--table 3"):
        paper_grid(3)
    with pytest.raises(ReproduceError, match="unknown backbone"):
        paper_grid(1, ["mlp"])


def test_paper_table1_numbers():
    assert PAPER_TABLE1["I2MoE-MulT"]["adni"] == {"accuracy": (65.08, 1.52), "auroc": (81.09, 0.02)}
    assert PAPER_TABLE1["LRTF"]["mosi"] == {"accuracy": (76.63, 0.18)}
    assert PAPER_TABLE1["MulT"]["imdb"] == {"f1_micro": (59.68, 0.19), "f1_macro": (51.41, 0.04)}
    assert PAPER_TABLE1["MoE++"]["enrico"]["accuracy"] == (47.83, 1.86)
    assert PAPER_TABLE1["InterpretCC"]["mimic"]["auroc"] == (61.93, 2.53)


def test_overrides_set_nested_fields_and_refuse_bad_forms():
    parsed = parse_overrides(["data.options.image_size=[32, 16]", "train.epochs=2"])
    values = apply_overrides({"data": {"options": {}}, "train": {}}, parsed, "x")
    assert values == {"data": {"options": {"image_size": [32, 16]}}, "train": {"epochs": 2}}
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides({"train": {"epochs": 3}}, parse_overrides(["train.epochs.x=1"]), "x")


def test_run_config_applies_overrides_flags_and_row(tmp_path):
    run = PaperRun("No-Interaction", "transformer", ablation="no-interaction")
    config = build_run_config(
        "mimic",
        run,
        tmp_path,
        overrides=parse_overrides(["model.fusion_options.num_heads=2", "train.epochs=7"]),
        epochs=1,
        dim=8,
        seeds=[3],
    )
    assert config.data.options["root"] == str(tmp_path.resolve())
    assert config.model.fusion_options["num_heads"] == 2
    assert config.train.epochs == 1  # the flag wins over --set
    assert (config.model.dim, config.train.seeds, config.model.ablation) == (8, [3], run.ablation)
    with pytest.raises(ConfigError, match="unknown key"):
        build_run_config("mimic", run, tmp_path, overrides=parse_overrides(["model.width=3"]))


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
