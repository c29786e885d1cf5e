"""PNG figures of an explanation (paper Figures 3-5, plus modality sensitivity).

Figures are drawn on ``matplotlib.figure.Figure`` objects (the Agg renderer, no pyplot), so
drawing neither needs a display nor changes the user's matplotlib backend. matplotlib is
imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from i2moe.interpret.analysis import Explanation

MODEL_COLOR = "#444444"
DPI = 100
MAX_GROUPED_BARS = 8  # outputs per sample drawn as grouped bars; more become a heat map


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" text chunk: the PNG carries no URL or version string.
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path


def _colors(count: int) -> list[Any]:
    from matplotlib import colormaps

    palette = colormaps["tab10"] if count <= 10 else colormaps["tab20"]
    return [palette(i % palette.N) for i in range(count)]


def _width(count: int, per_item: float = 0.7, least: float = 5.0) -> float:
    return max(least, 1.5 + per_item * count)


def _weight_limits(axes, weights: np.ndarray) -> None:
    """From 0 to a little above the largest weight (at most 1): small weights stay readable."""
    top = float(weights.max()) if weights.size else 1.0
    axes.set_ylim(0.0, min(1.02, max(0.05, 1.15 * top)))


def plot_weight_distribution(
    weights: np.ndarray, expert_names: Sequence[str], path: str | Path
) -> Path:
    """Paper Figure 4: the distribution of each expert's weight over the samples.

    A violin per expert (a box where every weight of an expert is the same, or with a single
    sample), with the mean marked.

    Args:
        weights: [N, E].
        expert_names: E names.
        path: the PNG to write.
    """
    weights = np.asarray(weights, dtype=float)
    positions = np.arange(1, len(expert_names) + 1)
    figure = _figure(_width(len(expert_names)), 3.6)
    axes = figure.subplots()
    spread = len(weights) > 1 and bool((weights.std(axis=0) > 1e-9).all())
    colors = _colors(len(expert_names))
    if spread:
        parts = axes.violinplot(weights, positions, showmedians=True, showextrema=True)
        for body, color in zip(parts["bodies"], colors, strict=True):
            body.set_facecolor(color)
            body.set_alpha(0.6)
    else:
        axes.boxplot(weights, positions=positions, widths=0.5)
    axes.scatter(positions, weights.mean(axis=0), marker="D", color="black", s=18, label="mean")
    axes.set_xticks(positions, list(expert_names), rotation=30, ha="right")
    axes.set_ylabel("weight")
    _weight_limits(axes, weights)
    axes.set_title(f"Expert weights over {len(weights)} samples")
    axes.legend(loc="upper right", fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_weights_by_group(
    weights: np.ndarray,
    expert_names: Sequence[str],
    labels: Sequence[str],
    path: str | Path,
    *,
    title: str,
    order: Sequence[str] = (),
) -> Path:
    """Box plots of each expert's weight, one box per group (e.g. true class, correct or not).

    Args:
        weights: [N, E].
        expert_names: E names.
        labels: one group label per sample.
        path: the PNG to write.
        title: the figure's title.
        order: groups to show first, in this order (the rest follow, sorted).
    """
    from i2moe.interpret.tables import ordered_unique

    weights = np.asarray(weights, dtype=float)
    labels_array = np.asarray([str(label) for label in labels], dtype=object)
    groups = ordered_unique(labels_array, order)
    num_experts, num_groups = len(expert_names), len(groups)
    width = 0.8 / num_groups
    colors = _colors(num_groups)
    figure = _figure(_width(num_experts * num_groups, per_item=0.35), 3.8)
    axes = figure.subplots()
    handles = []
    for g, group in enumerate(groups):
        rows = labels_array == group
        positions = np.arange(num_experts) + (g - (num_groups - 1) / 2) * width
        boxes = axes.boxplot(
            weights[rows],
            positions=positions,
            widths=width * 0.85,
            patch_artist=True,
            showfliers=False,
            manage_ticks=False,
            medianprops={"color": "black"},
        )
        for box in boxes["boxes"]:
            box.set_facecolor(colors[g])
            box.set_alpha(0.7)
        handles.append((boxes["boxes"][0], f"{group} (n={int(rows.sum())})"))
    axes.set_xticks(np.arange(num_experts), list(expert_names), rotation=30, ha="right")
    axes.set_xlim(-0.6, num_experts - 0.4)
    axes.set_ylabel("weight")
    _weight_limits(axes, weights)
    axes.set_title(title)
    axes.legend(
        [h for h, _ in handles],
        [t for _, t in handles],
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_expert_performance(performance: pd.DataFrame, path: str | Path) -> Path:
    """Paper Figure 5: each metric of the weighted model (first bar) and of each expert alone.

    Args:
        performance: one row per model (``model`` first), one column per metric.
        path: the PNG to write.
    """
    metrics = [m for m in performance.columns if performance[m].notna().any()]
    names = [str(n) for n in performance.index]
    colors = [MODEL_COLOR, *_colors(len(names) - 1)]
    columns = max(1, min(2, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    figure = _figure(columns * _width(len(names), per_item=0.5, least=4.0), 2.8 * rows)
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axes, metric in zip(grid, metrics, strict=False):
        values = performance[metric].to_numpy(dtype=float)
        bars = axes.bar(np.arange(len(names)), np.nan_to_num(values), color=colors)
        axes.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize="x-small")
        axes.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
        axes.set_title(metric)
        axes.grid(axis="y", alpha=0.3)
    for axes in grid[len(metrics) :]:
        axes.set_visible(False)
    figure.suptitle("Weighted model and each expert alone")
    return _save(figure, path)


def plot_sensitivity(summary: pd.DataFrame, task: str, path: str | Path) -> Path:
    """Modality sensitivity beside the weights: per modality, how much the prediction changes
    when it is replaced, how often the prediction flips, and its uniqueness expert's mean weight.

    Args:
        summary: one row per modality (``modality``, ``mean_change``, ``flip_share``,
            ``uni_weight_mean``).
        task: the task (names the change measure).
        path: the PNG to write.
    """
    measure = {
        "classification": "mean total-variation distance",
        "multilabel": "mean change of label probabilities",
        "regression": "mean absolute change",
    }[task]
    panels = [("mean_change", f"Prediction change\n({measure})")]
    if task != "regression":
        panels.append(("flip_share", "Share of predictions that flip"))
    if summary["uni_weight_mean"].notna().any():
        panels.append(("uni_weight_mean", "Mean weight of uni_<modality>"))
    names = summary["modality"].astype(str).tolist()
    colors = _colors(len(names))
    figure = _figure(len(panels) * _width(len(names), per_item=0.5, least=3.2), 3.2)
    grid = np.atleast_1d(figure.subplots(1, len(panels), squeeze=False)).ravel()
    for axes, (column, title) in zip(grid, panels, strict=True):
        values = summary[column].to_numpy(dtype=float)
        bars = axes.bar(np.arange(len(names)), np.nan_to_num(values), color=colors)
        axes.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize="x-small")
        axes.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
        axes.set_title(title, fontsize="medium")
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle("Modality sensitivity: what the model does without each modality")
    return _save(figure, path)


def _grouped_bars(figure, axes, values: np.ndarray, names, output_names) -> None:
    """Bars [rows, C] grouped by row, one colour per output."""
    num_rows, num_outputs = values.shape
    width = 0.8 / num_outputs
    colors = _colors(num_outputs)
    for c in range(num_outputs):
        positions = np.arange(num_rows) + (c - (num_outputs - 1) / 2) * width
        label = output_names[c] if num_outputs > 1 else None
        axes.bar(positions, values[:, c], width=width, color=colors[c], label=label)
    axes.axhline(0.0, color="black", linewidth=0.6)
    axes.set_xticks(np.arange(num_rows), list(names), rotation=30, ha="right")
    axes.grid(axis="y", alpha=0.3)
    if num_outputs > 1:
        axes.legend(fontsize="x-small", loc="best")


def _heat_map(figure, axes, values: np.ndarray, names, output_names) -> None:
    """[rows, C] as a diverging heat map (many outputs)."""
    bound = float(np.abs(values).max()) or 1.0
    image = axes.imshow(values.T, aspect="auto", cmap="coolwarm", vmin=-bound, vmax=bound)
    axes.set_xticks(np.arange(len(names)), list(names), rotation=30, ha="right")
    axes.set_yticks(np.arange(len(output_names)), list(output_names), fontsize="x-small")
    figure.colorbar(image, ax=axes, shrink=0.8)


def plot_sample(
    expert_names: Sequence[str],
    output_names: Sequence[str],
    expert_outputs: np.ndarray,
    weights: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    missing_experts: Sequence[str] = (),
) -> Path:
    """Paper Figure 3 for one sample: the experts' outputs, their weights, their contributions.

    The contributions panel ends with the final output, their sum. With more than 8 outputs the
    output panels are heat maps. Uniqueness experts whose modality is missing are marked.

    Args:
        expert_names: E names.
        output_names: C names.
        expert_outputs: [E, C] (logits for classification).
        weights: [E].
        path: the PNG to write.
        title: the figure's title.
        missing_experts: experts to mark "(missing)".
    """
    expert_outputs = np.asarray(expert_outputs, dtype=float)
    weights = np.asarray(weights, dtype=float)
    contributions = weights[:, None] * expert_outputs  # [E, C]
    final = contributions.sum(0, keepdims=True)
    names = [f"{n}\n(missing)" if n in missing_experts else n for n in expert_names]
    num_experts = len(expert_names)
    height = 3.8 if len(output_names) <= MAX_GROUPED_BARS else 2.0 + 0.16 * len(output_names)
    figure = _figure(3 * _width(num_experts + 1, per_item=0.45, least=3.4), height)
    outputs_axes, weights_axes, contributions_axes = figure.subplots(1, 3)
    draw = _heat_map if len(output_names) > MAX_GROUPED_BARS else _grouped_bars
    draw(figure, outputs_axes, expert_outputs, names, output_names)
    with_final = np.concatenate([contributions, final])
    draw(figure, contributions_axes, with_final, [*names, "final"], output_names)
    outputs_axes.set_title("Expert outputs")
    contributions_axes.set_title("Contributions (weight x output)")
    bars = weights_axes.bar(np.arange(num_experts), weights, color=_colors(num_experts))
    for bar, name in zip(bars, expert_names, strict=True):
        if name in missing_experts:
            bar.set_hatch("//")
    weights_axes.bar_label(bars, labels=[f"{w:.2f}" for w in weights], fontsize="x-small")
    weights_axes.set_xticks(np.arange(num_experts), names, rotation=30, ha="right")
    weights_axes.set_ylim(0, 1.05)
    weights_axes.set_title("Weights")
    weights_axes.grid(axis="y", alpha=0.3)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def sample_title(explanation: Explanation, sample: int) -> str:
    """``sample 3 (id 17): target A, predicted B (correct); interaction: syn; missing: image``
    (further groups, such as the true interaction of generated data, are named too)."""
    verdict = "correct" if explanation.correct[sample] else "wrong"
    predicted = explanation.label_text(explanation.prediction[sample])
    target = explanation.target_text(sample)
    if isinstance(predicted, float):
        predicted, target = f"{predicted:.3g}", f"{target:.3g}"
    title = (
        f"sample {sample} (id {explanation.sample_ids[sample]}): target {target}, "
        f"predicted {predicted} ({verdict})"
    )
    for breakdown, labels in explanation.groups.items():
        if breakdown not in ("class", "prediction"):
            title += f"; {breakdown}: {labels[sample]}"
    missing = explanation.missing_modalities(sample)
    return title + (f"; missing: {', '.join(missing)}" if missing else "")


def write_figures(explanation: Explanation, output_dir: str | Path) -> dict[str, Path]:
    """Draw every figure of an explanation into ``output_dir``.

    Files: ``weights.png`` (Figure 4), ``weights_by_<breakdown>.png`` (by true class, by
    correct/incorrect prediction, and by any further group), ``expert_performance.png``
    (Figure 5), ``sensitivity.png``, and :func:`write_sample_figures` (Figure 3).

    Returns:
        name -> path (names ``weights``, ``weights_by_<breakdown>``, ``performance``,
        ``sensitivity``, ``sample_<position>``).
    """
    output_dir = Path(output_dir)
    weights = explanation.weights.numpy()
    names = explanation.expert_names
    figures = {"weights": plot_weight_distribution(weights, names, output_dir / "weights.png")}
    titles = {"class": "Expert weights by true class", "prediction": "Expert weights by outcome"}
    table = explanation.weight_groups
    for breakdown, labels in explanation.groups.items():
        figures[f"weights_by_{breakdown}"] = plot_weights_by_group(
            weights,
            names,
            labels,
            output_dir / f"weights_by_{breakdown}.png",
            title=titles.get(breakdown, f"Expert weights by {breakdown}"),
            order=list(table.loc[table["breakdown"] == breakdown, "group"].unique()),
        )
    figures["performance"] = plot_expert_performance(
        explanation.performance, output_dir / "expert_performance.png"
    )
    figures["sensitivity"] = plot_sensitivity(
        explanation.sensitivity_summary, explanation.task, output_dir / "sensitivity.png"
    )
    return figures | write_sample_figures(explanation, output_dir)


def write_sample_figures(explanation: Explanation, output_dir: str | Path) -> dict[str, Path]:
    """Paper Figure 3 for each chosen sample: ``samples/sample_<position>.png`` in
    ``output_dir``; earlier sample figures in that folder are removed first.

    Returns:
        ``sample_<position>`` -> path.
    """
    samples_dir = Path(output_dir) / "samples"
    if samples_dir.is_dir():
        for old in samples_dir.glob("sample_*.png"):
            old.unlink()
    figures = {}
    for sample in explanation.chosen:
        missing = explanation.missing_modalities(sample)
        figures[f"sample_{sample}"] = plot_sample(
            explanation.expert_names,
            explanation.output_names,
            explanation.expert_outputs[sample].numpy(),
            explanation.weights[sample].numpy(),
            samples_dir / f"sample_{sample}.png",
            title=sample_title(explanation, sample),
            missing_experts=[f"uni_{m}" for m in missing],
        )
    return figures
