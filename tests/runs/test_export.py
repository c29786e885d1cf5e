"""Tests of ``i2moe.runs.export``: the export wrapper against the model it wraps, and exported
files of tiny runs loaded without i2moe (a subprocess that imports only torch, or only
onnxruntime and numpy) and compared with the PyTorch model, a sample lacking a modality
included."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import SHAPES_3, batch_for, tiny_model
from i2moe.builders import build_model
from i2moe.cli import main
from i2moe.config import ModelConfig
from i2moe.encoders import PatchTokenizer
from i2moe.reweighting import GlobalWeights
from i2moe.runs import export
from i2moe.runs.export import (
    BatchFreeGlobalWeights,
    BatchFreePatchTokenizer,
    ExportableModel,
    UnstackedExperts,
    export_run,
    missing_fills,
)
from i2moe.runs.files import RunError
from i2moe.runs.loading import load_run, run_data
from i2moe.spec import ModalitySpec

BACKBONES = ("transformer", "ef", "lf", "lrtf", "interpretcc", "switchgate", "moepp")


def _observed(batch: int, lacking: dict[int, int]) -> torch.Tensor:
    """[B, 3] all True but sample -> modality of ``lacking``."""
    observed = torch.ones(batch, 3, dtype=torch.bool)
    for sample, modality in lacking.items():
        observed[sample, modality] = False
    return observed


def _traced(exportable: ExportableModel, example: tuple[torch.Tensor, ...]):
    with torch.no_grad(), export._quiet_exporters():
        return torch.jit.trace(exportable, example, strict=False, check_trace=False)


@pytest.mark.parametrize("masking", ["zero", "mean"])
def test_the_wrapper_computes_what_the_model_computes_missing_modalities_included(masking):
    torch.manual_seed(0)
    model = tiny_model(masking=masking).eval()
    if masking == "mean":  # one training step sets the running means
        model.train()
        model(batch_for(SHAPES_3, size=4, seed=1))
        model.eval()
    batch = batch_for(SHAPES_3, size=5)
    observed = _observed(5, {1: 0, 3: 2})
    with torch.no_grad():
        embeddings = model.encoders(batch, observed)
        fills = missing_fills(model, [e.shape[1:] for e in embeddings])
        exportable = ExportableModel(model, fills)
        ours = exportable(*batch.values(), observed)
        theirs = model(batch, observed)
    torch.testing.assert_close(ours["prediction"], theirs.prediction, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours["weights"], theirs.weights, rtol=0, atol=1e-6)


def test_a_random_masking_export_stands_in_one_fixed_draw_for_a_missing_modality():
    torch.manual_seed(0)
    model = tiny_model().eval()
    batch = batch_for(SHAPES_3, size=4)
    observed = _observed(4, {2: 1})
    with torch.no_grad():
        embeddings = model.encoders(batch, observed)
        fills = missing_fills(model, [e.shape[1:] for e in embeddings])
        ours = ExportableModel(model, fills)(*batch.values(), observed)
        replaced = [
            torch.where(observed[:, m, None, None], e, fills[m]) for m, e in enumerate(embeddings)
        ]
        theirs = model.forward_embeddings(replaced)
    again = missing_fills(model, [e.shape[1:] for e in embeddings])
    assert all(torch.equal(a, b) for a, b in zip(fills, again, strict=True))  # one seeded draw
    torch.testing.assert_close(ours["prediction"], theirs.prediction, rtol=0, atol=1e-6)


def test_unstacked_experts_give_the_stacks_outputs():
    torch.manual_seed(0)
    model = tiny_model().eval()
    embeddings = model.encoders(batch_for(SHAPES_3, size=3))
    with torch.no_grad():
        stacked = model.experts(embeddings).output  # [E, B, C]
        unstacked = UnstackedExperts(model.experts)(embeddings)
    torch.testing.assert_close(unstacked, stacked, rtol=0, atol=1e-6)
    for parameter in UnstackedExperts(model.experts).parameters():  # not views of the stack
        assert parameter.untyped_storage().nbytes() == parameter.numel() * parameter.element_size()


def test_the_traced_wrapper_takes_other_batch_sizes_with_patches_and_global_weights():
    torch.manual_seed(0)
    config = ModelConfig(dim=8, num_patches=2, ablation="simple-weight")
    config.fusion_options = {"num_heads": 2, "dropout": 0.0}
    specs = [ModalitySpec("a", (6,), "vector"), ModalitySpec("b", (5,), "vector")]
    model = build_model(specs, "classification", 3, config).eval()
    assert any(isinstance(m, PatchTokenizer) for m in model.modules())
    assert isinstance(model.reweighting, GlobalWeights)
    exportable = ExportableModel(model, missing_fills(model, [(2, 8), (2, 8)]))
    assert isinstance(exportable.reweighting, BatchFreeGlobalWeights)
    assert any(isinstance(m, BatchFreePatchTokenizer) for m in exportable.modules())
    generator = torch.Generator().manual_seed(0)

    def inputs(size):
        values = [torch.randn(size, features, generator=generator) for features in (6, 5)]
        return (*values, torch.ones(size, 2, dtype=torch.bool))

    traced = _traced(exportable, inputs(4))
    for size in (1, 3, 7):
        values = inputs(size)
        with torch.no_grad():
            expected = model(dict(zip("ab", values[:2], strict=True)))
        torch.testing.assert_close(traced(*values)["prediction"], expected.prediction)


def test_batch_free_modules_compute_what_they_wrap():
    tokenizer = PatchTokenizer(7, 3, 4)
    x = torch.randn(5, 7)
    torch.testing.assert_close(BatchFreePatchTokenizer(tokenizer)(x), tokenizer(x))
    weights = GlobalWeights(4, temperature=0.5)
    torch.nn.init.normal_(weights.logits)
    pooled = torch.randn(3, 8)
    torch.testing.assert_close(BatchFreeGlobalWeights(weights)(pooled), weights(pooled))


def test_largest_difference_is_infinite_for_nan_or_other_shapes():
    a = torch.zeros(2, 3)
    assert export._largest(a, a) == 0.0
    assert export._largest(a, torch.full((2, 3), float("nan"))) == float("inf")
    assert export._largest(a, torch.zeros(3, 2)) == float("inf")


# -- end to end: tiny runs, files loaded without i2moe ------------------------------------------


def _write_data(path: Path) -> Path:
    """60 samples: a vector ``a`` [3], a sequence ``b`` [4, 2]; samples 55 and 57 (test
    positions 4 and 6) lack ``a`` and ``b``."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    a = rng.normal(size=(60, 3)) + y[:, None]
    b = rng.normal(size=(60, 4, 2))
    a[[5, 55]] = np.nan
    b[[7, 57]] = np.nan
    split = np.repeat([0, 1, 2], [42, 9, 9])
    np.savez(path, a=a, b=b, y=y, split=split)
    return path


def _fit(data: Path, run: Path, *options: str) -> Path:
    argv = ["--quiet", "fit", "--data", str(data), "--output", str(run), "--epochs", "1"]
    assert main([*argv, "--dim", "8", "--batch-size", "16", *options]) == 0
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """An I2MoE run (transformer experts, random masking) and a vanilla run of the same data."""
    folder = tmp_path_factory.mktemp("export_runs")
    data = _write_data(folder / "d.npz")
    return {
        "i2moe": _fit(data, folder / "i2moe"),
        "vanilla": _fit(data, folder / "vanilla", "--vanilla"),
    }


def _test_inputs(run: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The run's first 7 test samples (two lack a modality, its values NaN) as the file's
    inputs, and the modality order."""
    _, config, info = load_run(run)
    test = run_data(config, info, None).test
    items = [test[i] for i in range(7)]
    names = [m["name"] for m in info["modalities"]]
    inputs = {n: np.stack([np.asarray(item["inputs"][n]) for item in items]) for n in names}
    inputs["observed"] = np.stack([np.asarray(item["observed"]) for item in items]).astype(bool)
    assert not inputs["observed"].all(), "the test samples should lack a modality"
    for m, name in enumerate(names):
        inputs[name] = inputs[name].astype(np.float32)
        inputs[name][~inputs["observed"][:, m]] = np.nan  # ignored where not observed
    return inputs, names


def _reference(run: Path, inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """The PyTorch model's outputs; samples lacking a modality see the export's fixed draw."""
    module, _, _ = load_run(run)
    model = module.model
    values = {n: torch.from_numpy(inputs[n]) for n in names}
    observed = torch.from_numpy(inputs["observed"])
    with torch.no_grad():
        output = model(values, observed)
        if not hasattr(output, "weights"):
            return {"prediction": output.prediction.numpy()}
        embeddings = model.encoders(values, observed)
        fills = missing_fills(model, [e.shape[1:] for e in embeddings])
        replaced = [
            torch.where(observed[:, m, None, None], e, fills[m]) for m, e in enumerate(embeddings)
        ]
        fixed = model.forward_embeddings(replaced)
    complete = observed.all(dim=1, keepdim=True)
    return {
        "prediction": torch.where(complete, output.prediction, fixed.prediction).numpy(),
        "weights": torch.where(complete, output.weights, fixed.weights).numpy(),
    }


TORCHSCRIPT_LOADER = """
    import json, sys
    import numpy as np
    import torch

    extra = {"i2moe.json": ""}
    model = torch.jit.load(sys.argv[1], _extra_files=extra)
    meta = json.loads(extra["i2moe.json"])
    data = np.load(sys.argv[2])
    results = {}
    for rows, suffix in ((slice(None), ""), (slice(0, 1), "_one")):
        args = [torch.from_numpy(data[name][rows]) for name in meta["inputs"]]
        with torch.no_grad():
            out = model(*args)
        results |= {name + suffix: out[name].numpy() for name in meta["outputs"]}
    np.savez(sys.argv[3], **results)
    assert not any(name.startswith("i2moe") for name in sys.modules), "i2moe was imported"
"""

ONNX_LOADER = """
    import json, sys
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["i2moe"])
    data = np.load(sys.argv[2])
    results = {}
    for rows, suffix in ((slice(None), ""), (slice(0, 1), "_one")):
        feed = {i.name: data[i.name][rows] for i in session.get_inputs()}
        out = session.run(meta["outputs"], feed)
        results |= {name + suffix: value for name, value in zip(meta["outputs"], out)}
    np.savez(sys.argv[3], **results)
    assert not any(name.startswith(("i2moe", "torch")) for name in sys.modules), sys.modules
"""


def _run_without_i2moe(script: str, model_file: Path, inputs: dict[str, np.ndarray], tmp_path):
    inputs_file, results_file = tmp_path / "inputs.npz", tmp_path / "results.npz"
    np.savez(inputs_file, **inputs)
    loader = tmp_path / "load.py"
    loader.write_text(textwrap.dedent(script))
    done = subprocess.run(
        [sys.executable, str(loader), str(model_file), str(inputs_file), str(results_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return dict(np.load(results_file))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["i2moe", "vanilla"])
@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_an_exported_file_loads_without_i2moe_and_predicts_what_the_model_does(
    runs, kind, format, tmp_path
):
    if format == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    run = runs[kind]
    output = tmp_path / ("model.pt" if format == "torchscript" else "model.onnx")
    report = export_run(run, output, format=format)
    outputs = ["prediction", "weights"] if kind == "i2moe" else ["prediction"]
    assert report.outputs == outputs
    assert report.inputs == ["a", "b", "observed"]
    assert report.max_difference < export.TOLERANCE
    assert report.samples == 9 and report.missing_samples == 2
    assert (report.keyed_noise_difference is not None) == (kind == "i2moe")

    inputs, names = _test_inputs(run)
    script = TORCHSCRIPT_LOADER if format == "torchscript" else ONNX_LOADER
    results = _run_without_i2moe(script, output, inputs, tmp_path)
    expected = _reference(run, inputs, names)
    assert sorted(expected) == outputs
    for name in outputs:
        assert np.isfinite(results[name]).all()
        np.testing.assert_allclose(results[name], expected[name], rtol=0, atol=1e-5)
        np.testing.assert_allclose(results[name + "_one"], expected[name][:1], rtol=0, atol=1e-5)
    if kind == "i2moe":
        np.testing.assert_allclose(results["weights"].sum(axis=1), 1.0, rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_the_metadata_names_inputs_outputs_and_experts(runs, tmp_path):
    output = tmp_path / "model.pt"
    export_run(runs["i2moe"], output)
    extra = {"i2moe.json": ""}
    torch.jit.load(str(output), _extra_files=extra)
    meta = json.loads(extra["i2moe.json"])
    assert meta["inputs"] == ["a", "b", "observed"]
    assert meta["outputs"] == ["prediction", "weights"]
    assert meta["experts"] == ["uni_a", "uni_b", "syn", "red"]
    assert meta["modalities"] == [
        {"name": "a", "shape": [3], "dtype": "float32"},
        {"name": "b", "shape": [4, 2], "dtype": "float32"},
    ]
    assert meta["masking"] == "random" and meta["task"] == "classification"
    assert set(meta["standardization"]) == {"a"}  # vector modalities are standardised


@pytest.mark.slow
def test_a_file_that_differs_from_the_model_is_not_written(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", 0.0)
    output = tmp_path / "model.pt"
    with pytest.raises(RunError, match=r"'transformer' backbone does not export faithfully"):
        export_run(runs["i2moe"], output)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_file_that_fails_on_another_batch_size_is_a_clear_error(tmp_path, monkeypatch):
    """A trace that fixes the batch size (here: the model's own PatchTokenizer, unwrapped)
    fails on the check's batches: one message naming the backbone, no file."""
    folder = tmp_path / "patches"
    data = _write_data(tmp_path / "d.npz")
    run = _fit(data, folder, "--fusion", "lf", "--num-patches", "2")
    monkeypatch.setattr(export, "BATCH_FREE", {})
    output = tmp_path / "out" / "model.pt"
    with pytest.raises(RunError, match=r"'lf' backbone does not export faithfully.*fails on a"):
        export_run(run, output)
    assert not output.parent.exists()


@pytest.mark.slow
@pytest.mark.parametrize("fusion", BACKBONES)
def test_every_backbone_exports_or_says_why_not(fusion, tmp_path):
    data = _write_data(tmp_path / "d.npz")
    run = _fit(data, tmp_path / "run", "--fusion", fusion)
    formats = ["torchscript"]
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401

        formats.append("onnx")
    except ImportError:
        pass
    for format in formats:
        output = tmp_path / f"model.{format}"
        if (fusion, format) in export.KNOWN_LIMITS:
            with pytest.raises(RunError, match=rf"'{fusion}' backbone does not export to {format}"):
                export_run(run, output, format=format)
            assert not output.exists()
            continue
        report = export_run(run, output, format=format)
        assert report.max_difference < export.TOLERANCE, (fusion, format)
        assert output.exists()
