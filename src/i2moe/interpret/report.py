"""One self-contained HTML page of an explanation.

The page needs nothing else: figures are embedded as base64 ``data:`` URIs, the style sheet is
inline, there is no script and no reference to any other address. Layout: header, the global
view (weight distributions), the attribution methods (when ``attribution_methods.json`` was
written), the tables (per-expert performance, agreement, modality sensitivity), robustness to
missing modalities (when the run has ``robustness.json``), weights by group, then the chosen
samples.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from i2moe.interpret.analysis import Explanation

log = logging.getLogger(__name__)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
  padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
.meta { color: #555; }
.note { color: #555; font-size: 0.92em; max-width: 60em; }
.missing { color: #a33; font-weight: bold; }
.verdict { font-weight: bold; }
.figure { margin: 0.8em 0; }
.figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.scroll { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
table.data th, table.data td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
table.data th { background: #f3f3f3; }
table.data tr:nth-child(even) td { background: #fafafa; }
nav ul { columns: 2; }
.sample { border-top: 1px solid #ddd; margin-top: 1.5em; }
"""

AGREEMENT_NOTES = {
    "classification": "experts agree when all of them predict the same class",
    "multilabel": "experts agree when all of them predict the same set of labels",
    "regression": "experts agree when their outputs lie within the tolerance ({tol:g}) of each "
    "other (largest minus smallest); a prediction is correct within the tolerance of the target",
}

SENSITIVITY_NOTES = {
    "classification": "change: mean total-variation distance between the class probabilities "
    "with and without the modality; flip share: share of samples whose predicted class changes",
    "multilabel": "change: mean absolute change of the label probabilities; flip share: share "
    "of samples whose predicted label set changes",
    "regression": "change: mean absolute change of the prediction",
}


def image_data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _table(frame: pd.DataFrame, *, index: bool = True) -> str:
    table = frame.to_html(
        index=index,
        index_names=False,
        float_format=_number,
        na_rep="–",
        border=0,
        classes="data",
        escape=True,
    )
    return f'<div class="scroll">{table}</div>'


def _figure(figures: Mapping[str, Path], name: str, caption: str) -> str:
    if name not in figures:
        return ""
    alt = html.escape(caption, quote=True)
    return (
        f'<div class="figure"><img alt="{alt}" src="{image_data_uri(figures[name])}">'
        f'<div class="note">{html.escape(caption)}</div></div>'
    )


def _header(explanation: Explanation, title: str, *, attribution: bool, robustness: bool) -> str:
    context = explanation.context
    fields = [(k, context[k]) for k in ("run", "data", "split") if k in context]
    fields += [
        ("task", explanation.task),
        ("samples", explanation.num_samples),
        ("modalities", ", ".join(explanation.modality_names)),
        ("experts", ", ".join(explanation.expert_names)),
        ("correct predictions", f"{100 * float(explanation.correct.float().mean()):.1f}%"),
    ]
    meta = " · ".join(f"<b>{html.escape(k)}</b>: {html.escape(str(v))}" for k, v in fields)
    sections = [
        ("global", "Global view: expert weights"),
        *([("attribution", "Which interaction? Attribution methods")] if attribution else []),
        ("performance", "Each expert against the weighted model"),
        ("agreement", "Expert agreement"),
        ("sensitivity", "Modality sensitivity"),
        *([("robustness", "Robustness to missing modalities")] if robustness else []),
        ("groups", "Weights by group"),
        ("samples", "Chosen samples"),
    ]
    toc = "".join(f'<li><a href="#{key}">{html.escape(text)}</a></li>' for key, text in sections)
    return f'<h1>{html.escape(title)}</h1><p class="meta">{meta}</p><nav><ul>{toc}</ul></nav>'


def _global(explanation: Explanation, figures: Mapping[str, Path]) -> str:
    parts = [
        '<h2 id="global">Global view: expert weights</h2>',
        '<p class="note">How much the reweighting model relies on each interaction expert over '
        "all samples (paper Figure 4): a high weight means the sample is explained mostly by that "
        "kind of interaction (uniqueness of one modality, synergy, redundancy).</p>",
        _figure(figures, "weights", "Distribution of each expert's weight (diamond: mean)."),
        _table(explanation.weight_summary, index=False),
    ]
    for breakdown in explanation.groups:
        parts.append(
            _figure(
                figures,
                f"weights_by_{breakdown}",
                f"Each expert's weight per {breakdown} group: one panel per expert, one box per "
                "group (box: middle half of the samples, line: median, diamond: mean).",
            )
        )
    return "\n".join(parts)


def _agreement(explanation: Explanation) -> str:
    percent = explanation.agreement.copy()
    counts = explanation.agreement_counts
    shown = percent.map(lambda v: f"{v:.1f}%")
    for row in percent.index:
        for column in percent.columns:
            shown.loc[row, column] = f"{percent.loc[row, column]:.1f}% ({counts.loc[row, column]})"
    shown["total"] = [
        f"{percent.loc[r].sum():.1f}% ({int(counts.loc[r].sum())})" for r in percent.index
    ]
    shown.loc["total"] = [
        f"{percent[c].sum():.1f}% ({int(counts[c].sum())})" for c in percent.columns
    ] + [f"100.0% ({int(counts.to_numpy().sum())})"]
    shown.index = ["experts agree", "experts disagree", "total"]
    shown.columns = ["final prediction correct", "final prediction wrong", "total"]
    note = AGREEMENT_NOTES[explanation.task].format(tol=explanation.tolerance)
    return (
        '<h2 id="agreement">Expert agreement</h2>'
        f'<p class="note">Share of samples (count in brackets), paper Table 3; {html.escape(note)}.'
        "</p>" + _table(shown)
    )


def _sensitivity(explanation: Explanation, figures: Mapping[str, Path]) -> str:
    note = SENSITIVITY_NOTES[explanation.task]
    return "\n".join(
        [
            '<h2 id="sensitivity">Modality sensitivity</h2>',
            '<p class="note">What the model does when a modality is replaced (as if it were '
            "missing), set beside what its weights say (the mean weight of that modality's "
            "uniqueness expert). A modality the weights favour but whose removal changes "
            f"nothing deserves a closer look. {html.escape(note)}; samples where the modality "
            "is already missing are left out.</p>",
            _figure(figures, "sensitivity", "Prediction change without each modality."),
            _table(explanation.sensitivity_summary, index=False),
        ]
    )


def _sample(explanation: Explanation, sample: int, figures: Mapping[str, Path]) -> str:
    from i2moe.interpret.figures import sample_title

    table = explanation.local_table([sample])
    missing = explanation.missing_modalities(sample)
    table["note"] = ["modality missing" if flag else "" for flag in table["modality_missing"]]
    shown = table.drop(
        columns=["sample", "id", "target", "correct", "missing", "modality_missing"]
    ).set_index("expert")
    missing_line = (
        f'<p class="missing">Missing modalities: {html.escape(", ".join(missing))}</p>'
        if missing
        else ""
    )
    return "\n".join(
        [
            f'<div class="sample" id="sample-{sample}">',
            f"<h3>{html.escape(sample_title(explanation, sample))}</h3>",
            missing_line,
            _figure(
                figures,
                f"sample_{sample}",
                "Left: each expert's output; middle: its weight; right: its weighted "
                "contribution, and the final output (their sum).",
            ),
            _table(shown),
            "</div>",
        ]
    )


def _performance(explanation: Explanation, figures: Mapping[str, Path]) -> str:
    return "\n".join(
        [
            '<h2 id="performance">Each expert against the weighted model</h2>',
            '<p class="note">The task\'s metrics of the weighted model (row "model") and of each '
            "expert's own output alone (paper Figure 5).</p>",
            _figure(figures, "performance", "Metrics per expert; the first bar is the model."),
            _table(explanation.performance),
        ]
    )


def _groups(explanation: Explanation, figures: Mapping[str, Path]) -> str:
    table = explanation.weight_groups
    rows = []
    for (breakdown, group), part in table.groupby(["breakdown", "group"], sort=False):
        if breakdown == "all":
            continue
        means = dict(zip(part["expert"], part["mean"], strict=True))
        rows.append(
            {"breakdown": breakdown, "group": group, "samples": int(part["samples"].iloc[0])}
            | {expert: means[expert] for expert in explanation.expert_names}
        )
    heat_maps = [
        _figure(
            figures,
            f"mean_weights_by_{breakdown}",
            f"Mean weight of each expert (column) per {breakdown} group (row).",
        )
        for breakdown in explanation.groups
    ]
    return "\n".join(
        [
            '<h2 id="groups">Weights by group</h2>',
            '<p class="note">Mean weight of each expert per group (all statistics: '
            "weight_groups.csv).</p>",
            *heat_maps,
            _table(pd.DataFrame(rows), index=False),
        ]
    )


def _samples(explanation: Explanation, figures: Mapping[str, Path]) -> str:
    output_label = "logits" if explanation.task != "regression" else "values"
    shown = [_sample(explanation, s, figures) for s in explanation.chosen]
    return "\n".join(
        [
            '<h2 id="samples">Chosen samples</h2>',
            f'<p class="note">Per sample (paper Figure 3): each expert\'s output ({output_label}), '
            "its weight and its weighted contribution; the contributions sum to the final "
            'output (row "final").</p>',
            *(shown or ["<p>No sample chosen.</p>"]),
        ]
    )


def _interval_text(share: float, interval: Sequence[float] | None) -> str:
    if not interval:
        return f"{share:.3f}"
    return f"{share:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def distinguishable_sentence(method: Mapping[str, Any]) -> str:
    """Whether a method's top interaction stands out from its second, as a sentence (empty
    for files written without intervals)."""
    if "distinguishable" not in method or "second" not in method:
        return ""
    top, second = method["top"], method["second"]
    if method["distinguishable"]:
        return (
            f"The top interaction ({top}) is distinguishable from the second ({second}) on "
            "these samples: its interval lies above the second's."
        )
    return (
        f"The top interaction ({top}) is not distinguishable from the second ({second}) on "
        "these samples: their intervals overlap."
    )


def _attribution(details: Mapping[str, Any] | None) -> str:
    """Which interaction each attribution method names, with intervals, beside its measured
    faithfulness."""
    if not details:
        return ""
    rows, shares = [], {}
    for name, method in details["methods"].items():
        faithfulness = method.get("faithfulness") or {}
        measured = (
            ", ".join(f"{k} {_number(v)}" for k, v in faithfulness.items())
            if faithfulness
            else "not measured"
        )
        marks = []
        if name == details["method"]:
            marks.append("default")
        if name == details["paper_method"]:
            marks.append("the paper's method")
        label = f"{name} ({', '.join(marks)})" if marks else name
        distinguishable = method.get("distinguishable")
        confidence = method.get("median_confidence")
        rows.append(
            {
                "method": label,
                "what it is": method["description"],
                "top interaction": method["top"],
                "second": method.get("second", "–"),
                "top above second": "–"
                if distinguishable is None
                else ("yes" if distinguishable else "no"),
                "median confidence": "–" if confidence is None else f"{confidence:.2f}",
                "measured faithfulness": measured,
            }
        )
        intervals = method.get("intervals") or {}
        shares[label] = {
            k: _interval_text(v, intervals.get(k)) for k, v in method["shares"].items()
        }
    chosen = details["methods"].get(details["method"], {})
    sentence = distinguishable_sentence(chosen)
    bootstrap = details.get("bootstrap") or {}
    level = f"{100 * bootstrap.get('level', 0.95):g} %"
    note = (
        f"<p>The paper proposes reading the reweighting weights (<code>"
        f"{html.escape(details['paper_method'])}</code>). On generated data with known "
        "interactions (<code>i2moe faithfulness</code>, docs/faithfulness.md) they often name a "
        "uniqueness expert where the truth is synergy or redundancy; the default here is "
        f"<code>{html.escape(details['method'])}</code>. "
        "<code>attribution.json</code> holds the default method's shares.</p>"
    )
    verdict = f'<p class="verdict">{html.escape(sentence)}</p>' if sentence else ""
    legend = (
        f'<p class="note">Each share with its {level} bootstrap interval over the samples '
        f'({bootstrap.get("draws", "?")} resamples) in brackets. "Top above second": the top '
        "interaction's interval lies above the second's. Confidence: a sample's top score minus "
        "its second (1: one interaction only, 0: a tie); per sample in "
        "<code>attribution.csv</code> (<code>confidence</code>, and <code>entropy</code>, the "
        "normalised entropy of its scores).</p>"
    )
    return (
        '<h2 id="attribution">Which interaction? Attribution methods side by side</h2>'
        + note
        + verdict
        + _table(pd.DataFrame(rows), index=False)
        + _table(pd.DataFrame(shares))
        + legend
    )


def _robustness(
    explanation: Explanation,
    rows: Sequence[Mapping[str, Any]] | None,
    figures: Mapping[str, Path],
) -> str:
    """The run's ``robustness.json``: a metric per subset of modalities, and the shares."""
    if not rows:
        return ""
    from i2moe.interpret.figures import interaction_order, main_metric

    metric = main_metric(explanation.task, rows)
    interactions = interaction_order(rows, explanation.expert_names)
    metric_names = list(rows[0].get("metrics") or {})
    table = []
    for row in rows:
        absent = {f"uni_{m}" for m in row.get("absent", [])}
        attribution = row.get("attribution") or {}
        metrics = row.get("metrics") or {}
        line = {
            "present": ", ".join(row.get("present", [])),
            "absent": ", ".join(row.get("absent", [])) or "none",
        }
        line |= {m: _fixed(metrics.get(m), 4) for m in metric_names}
        for name in interactions:
            line[name] = _fixed(attribution.get(name), 3) + (" (absent)" if name in absent else "")
        table.append(line)
    method = next((r["attribution"].get("method") for r in rows if r.get("attribution")), None)
    shares_note = (
        f" Right: the interaction shares of the predictions by the run's default attribution "
        f"method (<code>{html.escape(str(method))}</code>) under each subset. A share on an "
        'absent modality (grey, hatched; "(absent)" in the table) means predictions that '
        "follow the noise standing in for that modality, not its data (docs/robustness.md)."
        if method
        else ""
    )
    return "\n".join(
        [
            '<h2 id="robustness">Robustness to missing modalities</h2>',
            '<p class="note">The run\'s <code>robustness.json</code> (<code>i2moe robustness'
            "</code>): the model evaluated with each subset of its modalities present, the "
            "others marked missing for every sample; nothing retrained. Left: "
            f"{html.escape(metric)} per subset, the dashed line the full set.{shares_note}</p>",
            _figure(figures, "robustness", f"{metric} and interaction shares per subset."),
            _table(pd.DataFrame(table), index=False),
        ]
    )


def _fixed(value: Any, digits: int) -> str:
    """A number with ``digits`` decimals; "–" for a missing or undefined one."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def render_report(
    explanation: Explanation,
    figures: Mapping[str, Path],
    *,
    title: str = "I2MoE interpretation",
    attribution: Mapping[str, Any] | None = None,
    robustness: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The report as one HTML string.

    Args:
        explanation: the numbers.
        figures: name -> PNG path, as :func:`i2moe.interpret.figures.write_figures` returns
            (missing figures are left out).
        title: the page's title.
        attribution: the contents of ``attribution_methods.json``, when written.
        robustness: the rows of the run's ``robustness.json``, when written.
    """
    sections = [
        _header(explanation, title, attribution=bool(attribution), robustness=bool(robustness)),
        _global(explanation, figures),
        _attribution(attribution),
        _performance(explanation, figures),
        _agreement(explanation),
        _sensitivity(explanation, figures),
        _robustness(explanation, robustness, figures),
        _groups(explanation, figures),
        _samples(explanation, figures),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def read_robustness(path: str | Path | None) -> list[dict[str, Any]] | None:
    """The rows of a ``robustness.json`` (``i2moe robustness``); None when ``path`` is None,
    absent, unreadable or not a list of rows."""
    if path is None or not Path(path).is_file():
        return None
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s is unreadable; the report leaves robustness out", path)
        return None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and "present" in r and "metrics" in r for r in rows
    ):
        log.warning("%s is not a list of robustness rows; the report leaves it out", path)
        return None
    return rows or None


def write_report(
    explanation: Explanation,
    figures: Mapping[str, Path],
    path: str | Path,
    *,
    title: str = "I2MoE interpretation",
    robustness: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write :func:`render_report`'s page to ``path`` (``report.html``), with the attribution
    section when ``attribution_methods.json`` lies beside it and the robustness section when
    ``robustness`` (the rows of the run's ``robustness.json``, :func:`read_robustness`) is
    given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    details_file = path.parent / "attribution_methods.json"
    details = json.loads(details_file.read_text()) if details_file.exists() else None
    page = render_report(
        explanation, figures, title=title, attribution=details, robustness=robustness
    )
    path.write_text(page, encoding="utf-8")
    return path
