"""The PNG figures: written for a trained 2- and 3-modality model, and for the edge cases."""

import numpy as np
import pandas as pd
import pytest

from i2moe.interpret.figures import (
    plot_expert_performance,
    plot_sample,
    plot_sensitivity,
    plot_weight_distribution,
    plot_weights_by_group,
    sample_title,
    write_sample_figures,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 2000  # something was drawn
    assert b"matplotlib.org" not in data and b"Software" not in data


def test_every_figure_of_a_trained_model(explained):
    explanation, output = explained
    names = set(explanation.figures)
    assert {"weights", "weights_by_class", "weights_by_prediction"} <= names
    assert {"performance", "sensitivity"} <= names
    assert {f"sample_{s}" for s in explanation.chosen} <= names
    assert len(explanation.chosen) == 2  # one correct and one wrong prediction
    for path in explanation.figures.values():
        assert path.parent in (output, output / "samples")
        assert_png(path)


def test_rewriting_removes_stale_sample_figures(explained, tmp_path):
    explanation, _ = explained
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "sample_999.png").write_bytes(b"old")
    chosen = explanation.chosen
    try:
        explanation.chosen = chosen[:1]
        figures = write_sample_figures(explanation, tmp_path)
    finally:
        explanation.chosen = chosen
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [f"sample_{chosen[0]}.png"]
    assert figures[f"sample_{chosen[0]}"].exists()


def test_sample_title_names_target_prediction_and_missing_modalities(explained):
    explanation, _ = explained
    missing = [s for s in range(explanation.num_samples) if explanation.missing_modalities(s)]
    assert missing
    title = sample_title(explanation, missing[0])
    assert title.startswith(f"sample {missing[0]} (id s")
    assert "target" in title and "predicted" in title and "missing: mod" in title


def test_weight_distribution_with_constant_weights_falls_back_to_boxes(tmp_path):
    weights = np.tile([0.2, 0.3, 0.5], (5, 1))
    assert_png(plot_weight_distribution(weights, ["uni_a", "syn", "red"], tmp_path / "w.png"))
    one = plot_weight_distribution(weights[:1], ["uni_a", "syn", "red"], tmp_path / "one.png")
    assert_png(one)


def test_weights_by_group_and_eight_modalities(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"uni_m{i}" for i in range(8)] + ["syn", "red"]
    weights = rng.dirichlet(np.ones(10), size=30)
    labels = rng.choice(["correct", "incorrect"], size=30)
    path = plot_weights_by_group(
        weights, names, labels, tmp_path / "g.png", title="t", order=["incorrect"]
    )
    assert_png(path)
    assert_png(plot_weight_distribution(weights, names, tmp_path / "w.png"))


def test_performance_and_sensitivity_figures(tmp_path):
    performance = pd.DataFrame(
        {"mse": [0.5, 0.7, 0.9], "pearson": [0.8, float("nan"), 0.1]},
        index=pd.Index(["model", "syn", "red"], name="name"),
    )
    assert_png(plot_expert_performance(performance, tmp_path / "p.png"))
    summary = pd.DataFrame(
        {
            "modality": ["a", "b"],
            "samples": [10, 9],
            "mean_change": [0.3, 0.1],
            "flip_share": [float("nan")] * 2,
            "uni_weight_mean": [0.2, 0.1],
        }
    )
    assert_png(plot_sensitivity(summary, "regression", tmp_path / "s.png"))
    flips = summary.assign(flip_share=[0.1, 0.0])
    assert_png(plot_sensitivity(flips, "multilabel", tmp_path / "m.png"))


@pytest.mark.parametrize("num_outputs", [1, 3, 23])  # regression, grouped bars, heat map
def test_sample_figure_for_any_number_of_outputs(tmp_path, num_outputs):
    rng = np.random.default_rng(num_outputs)
    names = ["uni_a", "uni_b", "syn", "red"]
    path = plot_sample(
        names,
        [f"label{c}" for c in range(num_outputs)],
        rng.standard_normal((4, num_outputs)),
        rng.dirichlet(np.ones(4)),
        tmp_path / "sample.png",
        title="sample 0",
        missing_experts=["uni_b"],
    )
    assert_png(path)
