"""PNG figures of an explanation (paper Figures 3-5, modality sensitivity, robustness).

Figures are drawn on ``matplotlib.figure.Figure`` objects (the Agg renderer, no pyplot), so
drawing neither needs a display nor changes the user's matplotlib backend. matplotlib is
imported only when a figure is drawn.

No figure is wider than :data:`MAX_WIDTH`, the width of ``report.html``'s column, so the report
shows every figure at its own size. More classes, experts or modalities make a figure taller:
categories become rows of a fixed height (:data:`ROW_HEIGHT`) and panels wrap into a grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from i2moe.interpret.analysis import Explanation

MODEL_COLOR = "#444444"
ABSENT_COLOR = "#eeeeee"  # shares of a modality that was absent (robustness)
REFERENCE_COLOR = "#c0392b"
DPI = 100
MAX_WIDTH = 11.6  # inches: report.html's column (1168 px) at DPI
ROW_HEIGHT = 0.26  # inches per category row: one box, bar or heat-map row
FACET_COLUMNS = 5  # panels per row of a figure with one panel per expert, at most
MAX_GROUPED_BARS = 24  # bars per panel of a sample figure; more become heat maps
ANNOTATED_CELLS = 200  # heat maps of mean weights with at most this many cells show values
LOWER_IS_BETTER = ("mse", "mae")
# The metric robustness rows are compared on, per task.
MAIN_METRICS = {"classification": "accuracy", "multilabel": "f1_micro", "regression": "mse"}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(min(width, MAX_WIDTH), height), layout="constrained")


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
    return min(MAX_WIDTH, max(least, 1.5 + per_item * count))


def _grid_shape(count: int, most_columns: int = FACET_COLUMNS) -> tuple[int, int]:
    """Rows and columns of a grid of ``count`` panels, rows as full as possible."""
    rows = max(1, math.ceil(count / most_columns))
    return rows, max(1, math.ceil(count / rows))


def _weight_limit(weights: np.ndarray) -> float:
    """A little above the largest weight (at most 1): small weights stay readable."""
    top = float(weights.max()) if weights.size else 1.0
    return min(1.02, max(0.05, 1.15 * top))


def _horizontal() -> dict[str, Any]:
    """``boxplot``'s keyword for horizontal boxes: ``orientation`` from matplotlib 3.10."""
    import matplotlib

    version = tuple(int(part) for part in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if version >= (3, 10) else {"vert": False}


def _groups(labels: Sequence[Any], order: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    """The groups in display order and, per group, the mask of its samples."""
    from i2moe.interpret.tables import ordered_unique

    labels_array = np.asarray([str(label) for label in labels], dtype=object)
    groups = ordered_unique(labels_array, order)
    return groups, [labels_array == group for group in groups]


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
    axes.set_ylim(0.0, _weight_limit(weights))
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
    """Each expert's weight per group (e.g. true class, correct or not): one panel per expert,
    wrapped into a grid, with one horizontal box per group (diamond: the group's mean).

    Args:
        weights: [N, E].
        expert_names: E names.
        labels: one group label per sample.
        path: the PNG to write.
        title: the figure's title.
        order: groups to show first, in this order (the rest follow, sorted).
    """
    weights = np.asarray(weights, dtype=float)
    groups, members = _groups(labels, order)
    num_experts = len(expert_names)
    rows, columns = _grid_shape(num_experts)
    panel_height = max(2.0, 0.8 + ROW_HEIGHT * len(groups))
    figure = _figure(1.6 + 2.2 * columns, 0.5 + rows * panel_height)
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    positions = np.arange(len(groups))
    limit = _weight_limit(weights)
    colors = _colors(num_experts)
    for e, (axes, name) in enumerate(zip(grid, expert_names, strict=False)):
        values = [weights[rows_of_group, e] for rows_of_group in members]
        boxes = axes.boxplot(
            values,
            positions=positions,
            widths=0.6,
            patch_artist=True,
            showfliers=False,
            manage_ticks=False,
            medianprops={"color": "black"},
            **_horizontal(),
        )
        for box in boxes["boxes"]:
            box.set_facecolor(colors[e])
            box.set_alpha(0.7)
        means = [float(v.mean()) for v in values]
        axes.scatter(means, positions, marker="D", color="black", s=12, zorder=3)
        axes.set_xlim(0.0, limit)
        axes.set_title(name, fontsize="medium")
        axes.grid(axis="x", alpha=0.3)
        if e >= num_experts - columns:  # the lowest panel of its column
            axes.set_xlabel("weight")
    names = [f"{g} (n={int(m.sum())})" for g, m in zip(groups, members, strict=True)]
    grid[0].set_yticks(positions, names)
    grid[0].set_ylim(len(groups) - 0.5, -0.5)  # the first group on top
    for axes in grid[num_experts:]:
        axes.set_visible(False)
    figure.suptitle(title)
    return _save(figure, path)


def plot_mean_weights_by_group(
    weights: np.ndarray,
    expert_names: Sequence[str],
    labels: Sequence[str],
    path: str | Path,
    *,
    title: str,
    order: Sequence[str] = (),
) -> Path:
    """The mean weight of each expert per group as a heat map, one row per group and one
    column per expert; with at most :data:`ANNOTATED_CELLS` cells each cell shows its value.

    Args:
        weights: [N, E].
        expert_names: E names.
        labels: one group label per sample.
        path: the PNG to write.
        title: the figure's title.
        order: groups to show first, in this order (the rest follow, sorted).
    """
    weights = np.asarray(weights, dtype=float)
    groups, members = _groups(labels, order)
    means = np.stack([weights[m].mean(0) for m in members])  # [G, E]
    num_groups, num_experts = means.shape
    cell_width = min(0.9, (MAX_WIDTH - 3.2) / num_experts)
    figure = _figure(3.2 + cell_width * num_experts, max(3.0, 1.6 + 1.2 * ROW_HEIGHT * num_groups))
    axes = figure.subplots()
    top = max(float(means.max()), 1e-6)
    image = axes.imshow(means, aspect="auto", cmap="Blues", vmin=0.0, vmax=top)
    axes.set_xticks(np.arange(num_experts), list(expert_names), rotation=30, ha="right")
    names = [f"{g} (n={int(m.sum())})" for g, m in zip(groups, members, strict=True)]
    axes.set_yticks(np.arange(num_groups), names)
    if means.size <= ANNOTATED_CELLS:
        size = "small" if cell_width >= 0.6 else "x-small"
        for (g, e), value in np.ndenumerate(means):
            color = "white" if value > 0.6 * top else "black"
            axes.text(e, g, f"{value:.2f}", ha="center", va="center", fontsize=size, color=color)
    figure.colorbar(image, ax=axes, shrink=0.8, label="mean weight")
    axes.set_title(title)
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
    panel_width = min(MAX_WIDTH / 2, _width(len(names), per_item=0.5, least=4.0))
    columns = max(1, min(2, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    figure = _figure(columns * panel_width, 2.8 * rows)
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
    narrowest = max(3.2, 1.0 + 0.4 * len(names))  # a bar of about 0.3 inches per modality
    columns = max(1, min(len(panels), int(MAX_WIDTH // narrowest)))
    panel_width = min(_width(len(names), per_item=0.5, least=3.2), MAX_WIDTH / columns)
    rows = math.ceil(len(panels) / columns)
    figure = _figure(columns * panel_width, 0.4 + 3.0 * rows)
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes in grid[len(panels) :]:
        axes.set_visible(False)
    for axes, (column, title) in zip(grid, panels, strict=False):
        values = summary[column].to_numpy(dtype=float)
        bars = axes.bar(np.arange(len(names)), np.nan_to_num(values), color=colors)
        axes.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize="x-small")
        axes.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
        axes.set_title(title, fontsize="medium")
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle("Modality sensitivity: what the model does without each modality")
    return _save(figure, path)


def _grouped_bars(axes: Axes, values: np.ndarray, names: Sequence[str], output_names) -> None:
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


def _sample_bars(
    expert_outputs: np.ndarray,
    weights: np.ndarray,
    names: Sequence[str],
    output_names: Sequence[str],
    missing: Sequence[bool],
) -> Figure:
    """Three panels of vertical bars: outputs, weights, contributions and the final output."""
    contributions = weights[:, None] * expert_outputs  # [E, C]
    with_final = np.concatenate([contributions, contributions.sum(0, keepdims=True)])
    num_experts = len(names)
    panel_width = min(MAX_WIDTH / 3, _width(num_experts + 1, per_item=0.45, least=3.4))
    figure = _figure(3 * panel_width, 3.8)
    outputs_axes, weights_axes, contributions_axes = figure.subplots(1, 3)
    _grouped_bars(outputs_axes, expert_outputs, names, output_names)
    _grouped_bars(contributions_axes, with_final, [*names, "final"], output_names)
    outputs_axes.set_title("Expert outputs")
    contributions_axes.set_title("Contributions (weight x output)")
    bars = weights_axes.bar(np.arange(num_experts), weights, color=_colors(num_experts))
    for bar, absent in zip(bars, missing, strict=True):
        if absent:
            bar.set_hatch("//")
    weights_axes.bar_label(bars, labels=[f"{w:.2f}" for w in weights], fontsize="x-small")
    weights_axes.set_xticks(np.arange(num_experts), list(names), rotation=30, ha="right")
    weights_axes.set_ylim(0, 1.05)
    weights_axes.set_title("Weights")
    weights_axes.grid(axis="y", alpha=0.3)
    return figure


def _heat_map(figure: Figure, axes: Axes, values: np.ndarray, label: str) -> None:
    """[rows, C] as a diverging heat map centred on 0, with its colour bar."""
    bound = float(np.abs(values).max()) or 1.0
    image = axes.imshow(values, aspect="auto", cmap="coolwarm", vmin=-bound, vmax=bound)
    figure.colorbar(image, ax=axes, shrink=0.9, label=label, pad=0.01)


def _output_ticks(axes: Axes, output_names: Sequence[str]) -> None:
    many = len(output_names) > 10
    axes.set_xticks(
        np.arange(len(output_names)),
        list(output_names),
        rotation=90 if many else 30,
        ha="center" if many else "right",
        fontsize="small",
    )


def _sample_heat_maps(
    expert_outputs: np.ndarray,
    weights: np.ndarray,
    names: Sequence[str],
    output_names: Sequence[str],
    missing: Sequence[bool],
) -> Figure:
    """One row per expert across three panels (outputs as a heat map, weights as bars,
    contributions as a heat map), the final output as a strip under the contributions, with
    its own colour scale so that the experts' contributions stay visible beside it."""
    contributions = weights[:, None] * expert_outputs  # [E, C]
    num_experts = len(names)
    figure = _figure(MAX_WIDTH, 2.0 + ROW_HEIGHT * (num_experts + 1.5))
    grid = figure.subplots(
        2, 3, height_ratios=[num_experts, 1.5], width_ratios=[1.0, 0.55, 1.0], squeeze=False
    )
    outputs_axes, weights_axes, contributions_axes = grid[0]
    final_axes = grid[1, 2]
    grid[1, 0].set_visible(False)
    grid[1, 1].set_visible(False)
    rows = np.arange(num_experts)
    _heat_map(figure, outputs_axes, expert_outputs, "output")
    _heat_map(figure, contributions_axes, contributions, "contribution")
    _heat_map(figure, final_axes, contributions.sum(0, keepdims=True), "final")
    for axes in (outputs_axes, contributions_axes):
        axes.set_yticks(rows, list(names))
    _output_ticks(outputs_axes, output_names)
    contributions_axes.sharex(final_axes)
    contributions_axes.tick_params(labelbottom=False)
    _output_ticks(final_axes, output_names)
    final_axes.set_yticks([0], ["final (sum)"])
    bars = weights_axes.barh(rows, weights, height=0.7, color=_colors(num_experts))
    for bar, absent in zip(bars, missing, strict=True):
        if absent:
            bar.set_hatch("//")
    weights_axes.bar_label(bars, labels=[f"{w:.2f}" for w in weights], fontsize="x-small")
    weights_axes.sharey(outputs_axes)
    weights_axes.tick_params(labelleft=False)
    weights_axes.set_xlim(0, 1.15)
    weights_axes.grid(axis="x", alpha=0.3)
    outputs_axes.set_title("Expert outputs")
    weights_axes.set_title("Weights")
    contributions_axes.set_title("Contributions (weight x output)")
    return figure


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

    The contributions end with the final output, their sum. Up to :data:`MAX_GROUPED_BARS` bars
    per panel (outputs x (experts + 1)) the panels are grouped bars; beyond, each expert is a
    row across the three panels, outputs and contributions are heat maps and the final output a
    strip under the contributions. Uniqueness experts whose modality is missing are marked.

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
    missing = [name in missing_experts for name in expert_names]
    bars = len(output_names) * (len(expert_names) + 1) <= MAX_GROUPED_BARS
    separator = "\n" if bars else " "
    names = [
        f"{n}{separator}(missing)" if m else n for n, m in zip(expert_names, missing, strict=True)
    ]
    draw = _sample_bars if bars else _sample_heat_maps
    figure = draw(expert_outputs, weights, names, list(output_names), missing)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def _finite(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def interaction_order(rows: Sequence[Mapping[str, Any]], expert_names: Sequence[str]) -> list[str]:
    """The interactions of robustness rows' attributions in the experts' order
    (``uni_<modality>`` ..., ``syn``, ``red``), then any others."""
    found: list[str] = []
    for row in rows:
        for name in row.get("attribution") or {}:
            if name != "method" and name not in found:
                found.append(name)
    return [n for n in expert_names if n in found] + [n for n in found if n not in expert_names]


def plot_robustness(
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    expert_names: Sequence[str],
    path: str | Path,
) -> Path:
    """Robustness to missing modalities (the rows of ``robustness.json``): left, ``metric`` per
    subset of present modalities as horizontal bars, the full set as a dashed line; right, when
    the rows carry an attribution, one stacked bar per subset of the interaction shares, those
    of absent modalities grey and hatched.

    Args:
        rows: ``present``, ``absent``, ``metrics`` and ``attribution`` (``method`` and
            interaction -> share, or None) per subset, the full set first.
        metric: the metric to show.
        expert_names: the experts' order, for the shares' order and colours.
        path: the PNG to write.
    """
    from matplotlib.patches import Patch

    labels = [", ".join(row["present"]) for row in rows]
    values = np.array([_finite((row.get("metrics") or {}).get(metric)) for row in rows])
    interactions = interaction_order(rows, expert_names)
    count = len(rows)
    height = max(2.8, 1.8 + 1.2 * ROW_HEIGHT * count)
    figure = _figure(MAX_WIDTH if interactions else 6.5, height)
    if interactions:
        metric_axes, share_axes = figure.subplots(1, 2, sharey=True, width_ratios=[1.0, 1.3])
    else:
        metric_axes = figure.subplots()
    positions = np.arange(count)
    bars = metric_axes.barh(positions, np.nan_to_num(values), height=0.6, color=MODEL_COLOR)
    texts = ["n/a" if math.isnan(v) else f"{v:.3g}" for v in values]
    metric_axes.bar_label(bars, labels=texts, fontsize="x-small", padding=2)
    full = next((i for i, row in enumerate(rows) if not row.get("absent")), 0)
    handles: list[Any] = []
    if not math.isnan(values[full]):
        handles.append(
            metric_axes.axvline(
                values[full],
                color=REFERENCE_COLOR,
                linestyle="--",
                linewidth=1.2,
                label=f"all modalities ({texts[full]})",
            )
        )
    finite = values[~np.isnan(values)]
    top = float(finite.max()) if finite.size else 0.0
    metric_axes.set_xlim(0.0, 1.18 * top if top > 0 else 1.0)
    metric_axes.set_yticks(positions, labels)
    metric_axes.set_ylim(count - 0.5, -0.5)  # the full set on top
    better = " (lower is better)" if metric in LOWER_IS_BETTER else ""
    metric_axes.set_xlabel(metric + better)
    metric_axes.set_ylabel("modalities present")
    metric_axes.set_title(f"{metric} with each subset of modalities")
    metric_axes.grid(axis="x", alpha=0.3)
    if interactions:
        _share_bars(share_axes, rows, interactions, expert_names)
        colors = _interaction_colors(interactions, expert_names)
        handles += [Patch(color=colors[n], label=n) for n in interactions]
        absent = Patch(
            facecolor=ABSENT_COLOR,
            edgecolor="#777777",
            hatch="///",
            label="absent modality (follows the replacement noise)",
        )
        handles.append(absent)
    if handles:
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(len(handles), 6),
            fontsize="small",
        )
    figure.suptitle("Robustness to missing modalities (test time, no retraining)")
    return _save(figure, path)


def _interaction_colors(interactions: Sequence[str], expert_names: Sequence[str]) -> dict[str, Any]:
    names = [*expert_names, *(n for n in interactions if n not in expert_names)]
    return dict(zip(names, _colors(len(names)), strict=True))


def _share_bars(
    axes: Axes,
    rows: Sequence[Mapping[str, Any]],
    interactions: Sequence[str],
    expert_names: Sequence[str],
) -> None:
    """One stacked horizontal bar of interaction shares per row."""
    colors = _interaction_colors(interactions, expert_names)
    method = ""
    for position, row in enumerate(rows):
        attribution = row.get("attribution") or {}
        method = method or str(attribution.get("method", ""))
        absent = {f"uni_{name}" for name in row.get("absent", [])}
        left = 0.0
        for name in interactions:
            share = _finite(attribution.get(name))
            if math.isnan(share) or share <= 0:
                continue
            if name in absent:
                style = {"color": ABSENT_COLOR, "hatch": "///", "edgecolor": colors[name]}
            else:
                style = {"color": colors[name], "edgecolor": "white"}
            axes.barh(position, share, left=left, height=0.6, linewidth=0.5, **style)
            left += share
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("share of the predictions" + (f" (method {method})" if method else ""))
    axes.set_title("What the predictions rest on")
    axes.grid(axis="x", alpha=0.3)


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


def main_metric(task: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The metric robustness rows are compared on: :data:`MAIN_METRICS` of the task when the
    rows carry it, else their first metric."""
    metrics = list((rows[0].get("metrics") or {}) if rows else {})
    preferred = MAIN_METRICS.get(task)
    return preferred if preferred in metrics or not metrics else metrics[0]


def write_figures(
    explanation: Explanation,
    output_dir: str | Path,
    *,
    robustness: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Draw every figure of an explanation into ``output_dir``.

    Files: ``weights.png`` (Figure 4), ``weights_by_<breakdown>.png`` and
    ``mean_weights_by_<breakdown>.png`` (by true class, by correct/incorrect prediction, and by
    any further group), ``expert_performance.png`` (Figure 5), ``sensitivity.png``,
    ``robustness.png`` (with ``robustness``, the rows of ``robustness.json``; an older one is
    removed without), and :func:`write_sample_figures` (Figure 3).

    Returns:
        name -> path (names ``weights``, ``weights_by_<breakdown>``,
        ``mean_weights_by_<breakdown>``, ``performance``, ``sensitivity``, ``robustness``,
        ``sample_<position>``).
    """
    output_dir = Path(output_dir)
    weights = explanation.weights.numpy()
    names = explanation.expert_names
    figures = {"weights": plot_weight_distribution(weights, names, output_dir / "weights.png")}
    titles = {"class": "true class", "prediction": "outcome"}
    table = explanation.weight_groups
    for breakdown, labels in explanation.groups.items():
        order = list(table.loc[table["breakdown"] == breakdown, "group"].unique())
        by = titles.get(breakdown, breakdown)
        figures[f"weights_by_{breakdown}"] = plot_weights_by_group(
            weights,
            names,
            labels,
            output_dir / f"weights_by_{breakdown}.png",
            title=f"Expert weights by {by}",
            order=order,
        )
        figures[f"mean_weights_by_{breakdown}"] = plot_mean_weights_by_group(
            weights,
            names,
            labels,
            output_dir / f"mean_weights_by_{breakdown}.png",
            title=f"Mean expert weight by {by}",
            order=order,
        )
    figures["performance"] = plot_expert_performance(
        explanation.performance, output_dir / "expert_performance.png"
    )
    figures["sensitivity"] = plot_sensitivity(
        explanation.sensitivity_summary, explanation.task, output_dir / "sensitivity.png"
    )
    robustness_path = output_dir / "robustness.png"
    if robustness:
        metric = main_metric(explanation.task, robustness)
        figures["robustness"] = plot_robustness(robustness, metric, names, robustness_path)
    elif robustness_path.exists():
        robustness_path.unlink()
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
