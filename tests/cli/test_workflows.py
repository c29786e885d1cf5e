"""The README's workflows through the real command line, on small generated data."""

import json

import numpy as np
import pandas as pd
import pytest

from i2moe.cli import main
from i2moe.data.synth import write_synth

FAST = ["--epochs", "2", "--dim", "8", "--batch-size", "32"]


@pytest.fixture(scope="module")
def synergy_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "syn.npz"
    write_synth(path, "synergy", num_modalities=2, num_samples=200, dim=6, seed=1)
    return path


@pytest.mark.slow
def test_fit_test_predict_on_an_npz(synergy_npz, tmp_path):
    run = tmp_path / "run"
    assert main(["--quiet", "fit", "--data", str(synergy_npz), "--output", str(run), *FAST]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "auroc", "f1_macro", "f1_micro"}
    weights = pd.read_csv(run / "interpretation" / "weights.csv")
    assert list(weights.columns) == ["sample", "uni_mod0", "uni_mod1", "syn", "red"]
    np.testing.assert_allclose(weights.iloc[:, 1:].sum(axis=1), 1.0, rtol=1e-5)
    assert len(weights) == len(pd.read_csv(run / "predictions.csv"))
    assert (run / "interpretation" / "report.html").exists()
    attribution = json.loads((run / "interpretation" / "attribution.json").read_text())
    shares = {k: v for k, v in attribution.items() if k not in ("intervals", "distinguishable")}
    assert list(shares) == ["uni_mod0", "uni_mod1", "syn", "red"]
    assert set(attribution["intervals"]) == set(shares)
    assert isinstance(attribution["distinguishable"], bool)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert "Attribution methods" in (run / "interpretation" / "report.html").read_text()

    assert main(["--quiet", "test", "--run", str(run)]) == 0
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "--quiet",
                "predict",
                "--run",
                str(run),
                "--data",
                str(synergy_npz),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    predictions = pd.read_csv(out)
    assert len(predictions) == 200
    assert {"split", "prediction", "weight_syn", "observed_mod0"} <= set(predictions.columns)


@pytest.mark.slow
def test_evidence_weight_flag_trains_the_reweighter_on_evidence(synergy_npz, tmp_path):
    from i2moe.interpret.attribution import default_method
    from i2moe.runs import load_run

    run = tmp_path / "run"
    flags = ["--evidence-weight", "0.5", *FAST]
    assert main(["--quiet", "fit", "--data", str(synergy_npz), "--output", str(run), *flags]) == 0
    module, config, _ = load_run(run)
    assert config.model.evidence_weight == 0.5
    assert module.model.evidence_weight == 0.5
    details = json.loads((run / "interpretation" / "attribution_methods.json").read_text())
    measured = details["methods"]["weights"]["faithfulness"]
    assert measured["training"] == "evidence"
    assert details["method"] == default_method(module.model)  # the best measured for evidence


@pytest.mark.slow
def test_fit_on_a_csv_table_with_a_column_mapping(tmp_path):
    rng = np.random.default_rng(0)
    n = 150
    frame = pd.DataFrame(
        {
            "age": rng.normal(50, 10, n),
            "lab_a": rng.normal(size=n),
            "lab_b": rng.normal(size=n),
            "site": rng.choice(["north", "south"], n),
            "signal_1": rng.normal(size=n),
            "signal_2": rng.normal(size=n),
        }
    )
    frame["outcome"] = (frame["lab_a"] + frame["signal_1"] > 0).astype(int)
    frame.to_csv(tmp_path / "patients.csv", index=False)
    (tmp_path / "columns.yaml").write_text(
        "target: outcome\nmodalities:\n  clinical: [age, site, 'lab_*']\n  signal: ['signal_*']\n"
    )
    run = tmp_path / "run"
    code = main(
        [
            "--quiet",
            "fit",
            "--data",
            str(tmp_path / "patients.csv"),
            "--columns",
            str(tmp_path / "columns.yaml"),
            "--output",
            str(run),
            *FAST,
        ]
    )
    assert code == 0
    info = json.loads((run / "run.json").read_text())
    assert [m["name"] for m in info["modalities"]] == ["clinical", "signal"]
    assert info["modalities"][0]["shape"] == [5]  # age, site one-hot (2), lab_a, lab_b


@pytest.mark.slow
def test_several_seeds_write_a_summary(synergy_npz, tmp_path):
    run = tmp_path / "seeds"
    args = [
        "--quiet",
        "fit",
        "--data",
        str(synergy_npz),
        "--output",
        str(run),
        "--seeds",
        "0",
        "1",
        "--epochs",
        "1",
        "--dim",
        "8",
        "--vanilla",
        "--fusion",
        "lf",
    ]
    assert main(args) == 0
    summary = pd.read_csv(run / "summary.csv")
    assert set(summary["split"]) == {"val", "test"}
    assert (run / "seed_1" / "metrics.json").exists()
    assert not (run / "seed_0" / "interpretation").exists()  # vanilla: nothing to explain


def test_datasets_and_fusions_are_listed(capsys):
    assert main(["datasets"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("mfeat", "birds", "reviews"))
    assert main(["fusions"]) == 0
    assert "transformer" in capsys.readouterr().out


@pytest.mark.slow
def test_predict_on_another_file_scales_it_like_the_training_data(synergy_npz, tmp_path):
    run = tmp_path / "run"
    assert main(["--quiet", "fit", "--data", str(synergy_npz), "--output", str(run), *FAST]) == 0
    assert "mod0" in json.loads((run / "run.json").read_text())["standardization"]
    # The same samples with another split, so the reader's own training statistics differ;
    # predictions must not change, because the run's statistics are applied.
    arrays = dict(np.load(synergy_npz))
    other_split = np.roll(arrays["split"], 37)
    np.savez(tmp_path / "other.npz", **{**arrays, "split": other_split})

    def by_row(data, split_codes):
        out = tmp_path / f"{data.stem}.csv"
        args = ["--quiet", "predict", "--run", str(run), "--data", str(data), "--output", str(out)]
        assert main(args) == 0
        frame = pd.read_csv(out)
        rows = [
            np.flatnonzero(split_codes == code)[position]
            for code, position in zip(
                frame["split"].map({"train": 0, "val": 1, "test": 2}), frame["sample"], strict=True
            )
        ]
        return frame.assign(row=rows).set_index("row").sort_index()

    own = by_row(synergy_npz, arrays["split"])
    moved = by_row(tmp_path / "other.npz", other_split)
    np.testing.assert_allclose(own["prob_1"], moved["prob_1"], atol=1e-4)


@pytest.mark.slow
def test_using_a_model_on_a_bundled_dataset(tmp_path, capsys):
    """fit on mfeat, then predict every row, test with a modality left out, export, and load
    the run as an estimator."""
    from i2moe.estimator import I2MoEClassifier

    run = tmp_path / "mfeat"
    flags = ["--epochs", "1", "--dim", "8", "--batch-size", "64"]
    assert main(["--quiet", "fit", "--data", "mfeat", "--output", str(run), *flags]) == 0
    assert (run / "MODEL_CARD.md").read_text().count("Licence: CC BY 4.0") == 1
    out = tmp_path / "all.csv"
    assert (
        main(["--quiet", "predict", "--run", str(run), "--data", "mfeat", "--output", str(out)])
        == 0
    )
    predicted = pd.read_csv(out)
    assert len(predicted) == 2000 and {"id", "attr_red", "weight_red"} <= set(predicted.columns)
    capsys.readouterr()
    assert main(["--quiet", "test", "--run", str(run), "--drop", "fou", "pix"]) == 0
    dropped = json.loads(capsys.readouterr().out)
    assert 0.0 <= dropped["accuracy"] <= 1.0
    exported = tmp_path / "mfeat.pt"
    assert (
        main(
            [
                "--quiet",
                "export",
                "--run",
                str(run),
                "--format",
                "torchscript",
                "--output",
                str(exported),
            ]
        )
        == 0
    )
    assert exported.is_file()
    estimator = I2MoEClassifier.load(run)
    assert estimator.modality_names_ == ["fou", "fac", "kar", "pix", "zer", "mor"]
