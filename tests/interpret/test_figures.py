"""The PNG figures: written for a trained 2- and 3-modality model, for the edge cases, and
laid out so that report.html shows them readably for up to 20 classes and 10 experts."""

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from i2moe.interpret import figures
from i2moe.interpret.figures import (
    DPI,
    main_metric,
    plot_expert_performance,
    plot_mean_weights_by_group,
    plot_robustness,
    plot_sample,
    plot_sensitivity,
    plot_weight_distribution,
    plot_weights_by_group,
    sample_title,
    write_sample_figures,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_COLUMN_PX = 1168  # report.html's column: a wider figure is shown scaled down to it
LEAST_ROW_PX = 10  # shown across its category: a box, a bar, a heat-map cell
LEAST_PANEL_PX = 80  # shown: each panel's width and height
ASPECT = (0.5, 4.5)  # width / height of a whole figure


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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions draw, kept instead of written."""
    kept = []

    def keep(figure, path):
        kept.append(figure)
        return Path(path)

    monkeypatch.setattr(figures, "_save", keep)
    return kept


def _category_axis(axes) -> str:
    """The axis that carries names (classes, experts, modalities) rather than numbers."""
    from matplotlib.ticker import ScalarFormatter

    named = [
        not isinstance(a.get_major_formatter(), ScalarFormatter) for a in (axes.xaxis, axes.yaxis)
    ]
    return "y" if named == [False, True] else "x"


def layout_problems(figure) -> list[str]:
    """What is too small or out of proportion in ``figure`` as report.html shows it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = figure.get_size_inches() * DPI
    scale = min(1.0, REPORT_COLUMN_PX / width)
    problems = []
    if not ASPECT[0] <= width / height <= ASPECT[1]:
        problems.append(f"aspect {width / height:.2f} ({width:.0f} x {height:.0f} px)")
    for axes in figure.axes:
        if not axes.get_visible() or axes.get_label() == "<colorbar>":
            continue
        box = axes.get_window_extent(renderer)
        strip = bool(axes.images) and all(i.get_array().shape[0] == 1 for i in axes.images)
        if min(box.width, box.width if strip else box.height) * scale < LEAST_PANEL_PX:
            problems.append(f"panel {box.width * scale:.0f} x {box.height * scale:.0f} px")
        across = "height" if _category_axis(axes) == "y" else "width"
        for patch in axes.patches:
            size = getattr(patch.get_window_extent(renderer), across) * scale
            if size < LEAST_ROW_PX:
                problems.append(f"{type(patch).__name__} {size:.1f} px {across}")
                break
        for image in axes.images:
            rows, columns = image.get_array().shape[:2]
            extent = image.get_window_extent(renderer)
            cell = min(extent.height / rows, extent.width / columns) * scale
            if cell < LEAST_ROW_PX:
                problems.append(f"heat-map cell {cell:.1f} px")
    return problems


def _expert_names(num_experts: int) -> list[str]:
    return [f"uni_mod{m}" for m in range(num_experts - 2)] + ["syn", "red"]


@pytest.mark.parametrize("num_experts", [4, 8, 10])
@pytest.mark.parametrize("num_classes", [2, 10, 20])
def test_figures_by_class_stay_readable(drawn, tmp_path, num_classes, num_experts):
    rng = np.random.default_rng(num_classes * num_experts)
    names = _expert_names(num_experts)
    weights = rng.dirichlet(np.ones(num_experts), size=10 * num_classes)
    labels = np.arange(10 * num_classes) % num_classes
    classes = [f"class{c}" for c in range(num_classes)]
    plot_weights_by_group(weights, names, labels, tmp_path / "g.png", title="by true class")
    plot_mean_weights_by_group(weights, names, labels, tmp_path / "m.png", title="mean")
    outputs = rng.standard_normal((num_experts, num_classes))
    plot_sample(names, classes, outputs, weights[0], tmp_path / "s.png", title="sample 0")
    for figure, name in zip(drawn, ["by group", "mean by group", "sample"], strict=True):
        assert layout_problems(figure) == [], name


@pytest.mark.parametrize("num_experts", [4, 8, 10])
def test_figures_by_expert_and_modality_stay_readable(drawn, tmp_path, num_experts):
    rng = np.random.default_rng(num_experts)
    names = _expert_names(num_experts)
    modalities = [name[4:] for name in names[:-2]]
    plot_weight_distribution(rng.dirichlet(np.ones(num_experts), 50), names, tmp_path / "w.png")
    performance = pd.DataFrame(
        rng.uniform(size=(num_experts + 1, 4)),
        columns=["accuracy", "auroc", "f1_macro", "f1_micro"],
        index=["model", *names],
    )
    plot_expert_performance(performance, tmp_path / "p.png")
    summary = pd.DataFrame(
        {
            "modality": modalities,
            "samples": 50,
            "mean_change": rng.uniform(size=len(modalities)),
            "flip_share": rng.uniform(size=len(modalities)),
            "uni_weight_mean": rng.uniform(size=len(modalities)),
        }
    )
    plot_sensitivity(summary, "classification", tmp_path / "v.png")
    rows = robustness_rows(modalities, rng)
    plot_robustness(rows, "accuracy", names, tmp_path / "r.png")
    kinds = ["weights", "performance", "sensitivity", "robustness"]
    for figure, name in zip(drawn, kinds, strict=True):
        assert layout_problems(figure) == [], name


def robustness_rows(modalities, rng, *, attribution=True):
    """Rows like those of ``robustness.json``: every subset up to 4 modalities, else the full
    set, each one left out and each one alone."""
    count = len(modalities)
    sizes = range(count, 0, -1) if count <= 4 else (count, count - 1, 1)
    rows = []
    for present in (s for size in sizes for s in combinations(modalities, size)):
        shares = rng.dirichlet(np.ones(count + 2))
        names = [f"uni_{m}" for m in modalities] + ["syn", "red"]
        rows.append(
            {
                "present": list(present),
                "absent": [m for m in modalities if m not in present],
                "metrics": {"accuracy": float(rng.uniform(0.5, 0.9)), "auroc": None},
                "attribution": {"method": "rule", **dict(zip(names, shares.tolist(), strict=True))}
                if attribution
                else None,
            }
        )
    return rows


def test_robustness_figure_greys_out_the_shares_of_absent_modalities(drawn, tmp_path):
    rows = robustness_rows(["a", "b"], np.random.default_rng(0))
    plot_robustness(rows, "accuracy", ["uni_a", "uni_b", "syn", "red"], tmp_path / "r.png")
    metric_axes, share_axes = drawn[0].axes
    assert [t.get_text() for t in metric_axes.get_yticklabels()] == ["a, b", "a", "b"]
    reference = [line for line in metric_axes.lines if line.get_linestyle() == "--"]
    assert reference and reference[0].get_xdata()[0] == pytest.approx(
        rows[0]["metrics"]["accuracy"]
    )
    hatched = [p for p in share_axes.patches if p.get_hatch()]
    assert len(hatched) == 2  # uni_b where only a is present, uni_a where only b is
    assert all(
        p.get_facecolor()[:3] == pytest.approx((0.933, 0.933, 0.933), abs=0.01) for p in hatched
    )
    labels = [t.get_text() for t in drawn[0].legends[0].get_texts()]
    assert any("absent modality" in label for label in labels)


def test_robustness_figure_of_a_vanilla_run_has_the_metric_alone(drawn, tmp_path):
    rows = robustness_rows(["a", "b", "c"], np.random.default_rng(0), attribution=False)
    plot_robustness(rows, "accuracy", ["syn", "red"], tmp_path / "r.png")
    assert len(drawn[0].axes) == 1


def test_main_metric_per_task():
    rows = [{"metrics": {"mse": 1.0, "mae": 0.5, "pearson": 0.2}}]
    assert main_metric("regression", rows) == "mse"
    assert main_metric("classification", [{"metrics": {"accuracy": 1, "auroc": 1}}]) == "accuracy"
    assert main_metric("classification", [{"metrics": {"auroc": 1}}]) == "auroc"
