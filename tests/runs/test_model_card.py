"""``MODEL_CARD.md``: written by fit, refreshed by robustness, made from the folder's files."""

import json

import pytest

from helpers import write_npz
from i2moe.cli import main
from i2moe.runs.model_card import CARD_NAME, model_card

FAST = ["--epochs", "1", "--dim", "8", "--batch-size", "16"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card")
    data = write_npz(folder / "d.npz")
    run = folder / "run"
    assert main(["--quiet", "fit", "--data", str(data), "--output", str(run), *FAST]) == 0
    return run


def test_fit_writes_the_card_with_data_settings_metrics_and_attribution(run):
    card = (run / CARD_NAME).read_text()
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    for heading in ("## Data", "## Model and training", "## Test metrics", "## Known limits"):
        assert heading in card
    assert "| a | vector | (3,) |" in card and "| b | vector | (2,) |" in card
    assert f"| accuracy | {metrics['accuracy']:.4f} |" in card
    method = json.loads((run / "interpretation" / "attribution_methods.json").read_text())
    assert f"Method `{method['method']}`" in card
    assert "| interaction | share | 95 % interval |" in card
    assert "## Robustness" not in card  # not computed yet


@pytest.mark.slow
def test_robustness_refreshes_the_card(run):
    assert main(["--quiet", "robustness", "--run", str(run)]) == 0
    card = (run / CARD_NAME).read_text()
    assert "## Robustness to missing modalities" in card
    assert "| a, b |" in card and "| a |" in card and "| b |" in card


@pytest.mark.slow
def test_several_seeds_get_mean_and_std_on_the_top_card(tmp_path):
    data = write_npz(tmp_path / "d.npz")
    out = tmp_path / "seeds"
    flags = [*FAST, "--seeds", "0", "1"]
    assert main(["--quiet", "fit", "--data", str(data), "--output", str(out), *flags]) == 0
    card = (out / CARD_NAME).read_text()
    assert "| metric | mean ± std | seeds |" in card and "### seed_0" in card
    assert "Spread of each share over the 2 seeds (min-max):" in card
    assert (out / "seed_1" / CARD_NAME).is_file()


def test_a_bundled_dataset_s_licence_and_citation_are_on_the_card(tmp_path):
    info = {"dataset": "mfeat", "task": "classification", "num_outputs": 10, "modalities": []}
    (tmp_path / "run.json").write_text(json.dumps(info))
    card = model_card(tmp_path)
    assert "Licence: CC BY 4.0" in card and "Not yet written" in card
