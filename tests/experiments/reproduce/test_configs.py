"""The shipped paper configs and a run's configuration from them
(i2moe.experiments.reproduce.configs): every number against the paper's tables, a model built
from each, ``--set`` overrides."""

from __future__ import annotations

import math

import pytest
import torch

from i2moe.builders import build_model
from i2moe.config import ConfigError, load_config
from i2moe.data.base import ModalitySpec
from i2moe.experiments.reproduce.configs import (
    DATASETS,
    apply_overrides,
    build_run_config,
    config_path,
    parse_overrides,
    shipped_configs,
)
from i2moe.experiments.reproduce.grid import BACKBONES, PaperRun
from i2moe.model import I2MoE, VanillaFusion

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
    model, train, loss = config.model, config.train, config.loss
    assert config.data.name == f"paper:{dataset}"
    assert model.fusion == fusion and not model.vanilla and model.ablation == "none"
    assert model.temperature == expected["temperature"]
    assert model.reweighting_hidden == expected["reweighting_hidden"]
    assert model.reweighting_layers == expected["reweighting_layers"]
    assert loss.interaction_weight == expected["interaction_weight"]
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
    assert load_config(config_path("adni", "transformer")).loss.interaction_weight == 0.5
    assert load_config(config_path("mosi", "transformer")).loss.interaction_weight == 0.005
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


def test_overrides_of_moved_keys_set_the_loss_section(tmp_path):
    run = PaperRun("MulT", "transformer")
    overrides = parse_overrides(["model.interaction_weight=0.2", "model.aux_weight=0.05"])
    config = build_run_config("mosi", run, tmp_path, overrides=overrides)
    assert (config.loss.interaction_weight, config.loss.gate_weight) == (0.2, 0.05)
