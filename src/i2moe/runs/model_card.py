"""``MODEL_CARD.md``: a plain-Markdown summary of a run folder, made from the files in it.

The card is rebuilt from what the folder holds (``run.json``, ``config.yaml``,
``metrics.json`` or a several-seed ``summary.csv``, ``interpretation/attribution_methods.json``,
``robustness.json``), so ``fit``, ``explain`` and ``robustness`` each refresh it by calling
:func:`write_model_card` after writing their own files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from i2moe.runs.files import write_atomic
from i2moe.runs.tables import cell, markdown_table

CARD_NAME = "MODEL_CARD.md"

# The limits measured in docs/faithfulness.md that hold for every run.
KNOWN_LIMITS: tuple[str, ...] = (
    "The paper's explanation (the reweighting weights, `weight_<expert>` columns) names the "
    "interaction that is really there on 25 % of the generated benchmark's data sets and seeds; "
    "the default `rule` attribution and an evidence-trained reweighter do on 95.8 % "
    "(docs/faithfulness.md). Read the weights as the model's mixing, not as an explanation.",
    "The attribution is measured on generated data with known interactions; on real data "
    "there is no ground truth, and shares that differ by a few points are not a finding.",
    "Synergy of three or more modalities of a parity-like form is learned only with "
    "`--interaction-warmup` (docs/faithfulness.md).",
    "Test metrics come from the run's own test split; data from another source, with other "
    "scaling or other missing-modality patterns, may score differently.",
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _number(value: Any) -> str:
    return cell(value, 4)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return markdown_table(header, rows, digits=4).splitlines()


def _seed_folders(run: Path) -> list[Path]:
    return sorted(p.parent for p in run.glob("seed_*/run.json"))


def _data_section(info: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    lines = ["## Data", ""]
    data = config.get("data") or {}
    lines.append(f"- dataset: `{info.get('dataset', data.get('name', '?'))}`")
    lines.append(f"- task: {info.get('task', '?')}, {info.get('num_outputs', '?')} outputs")
    sizes = info.get("split_sizes")
    if sizes:
        lines.append("- samples: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    classes = info.get("class_names")
    if classes:
        shown = ", ".join(str(c) for c in classes[:20]) + (" ..." if len(classes) > 20 else "")
        lines.append(f"- classes: {shown}")
    lines += [
        "",
        *_table(
            ["modality", "kind", "per-sample shape"],
            [[m["name"], m["kind"], tuple(m["shape"])] for m in info.get("modalities", [])],
        ),
    ]
    source = _dataset_source(str(info.get("dataset", data.get("name", ""))))
    if source:
        lines += ["", f"Licence: {source[0]}. Cite: {source[1]}"]
    return lines + [""]


def _dataset_source(name: str) -> tuple[str, str] | None:
    """The licence and citation of a bundled dataset, None for other data."""
    from i2moe.data.registry import list_datasets

    for entry in list_datasets():
        if entry.name == name:
            return entry.licence, entry.citation
    return None


def _settings_section(config: Mapping[str, Any]) -> list[str]:
    model, train, loss = (config.get(k) or {} for k in ("model", "train", "loss"))
    kind = "vanilla fusion (the backbone alone)" if model.get("vanilla") else "I2MoE"
    rows = [
        ["model", kind],
        ["fusion backbone", model.get("fusion")],
        ["width D", model.get("dim")],
        ["ablation", model.get("ablation")],
        ["masking", model.get("masking")],
        ["interaction weight", loss.get("interaction_weight")],
        ["evidence weight", model.get("evidence_weight")],
        [
            "epochs / batch / lr",
            f"{train.get('epochs')} / {train.get('batch_size')} / {train.get('lr')}",
        ],
        ["interaction warm-up (epochs)", train.get("interaction_warmup")],
        ["seeds", train.get("seeds")],
    ]
    return ["## Model and training", "", *_table(["setting", "value"], rows), ""]


def _metrics_section(run: Path) -> list[str]:
    lines = ["## Test metrics", ""]
    summary = run / "summary.csv"
    if summary.is_file():
        with summary.open(newline="") as file:
            rows = [r for r in csv.DictReader(file) if r["split"] == "test"]
        lines += _table(
            ["metric", "mean ± std", "seeds"],
            [
                [r["metric"], f"{float(r['mean']):.4f} ± {float(r['std']):.4f}", r["seeds"]]
                for r in rows
            ],
        )
        return lines + [""]
    metrics = _read_json(run / "metrics.json")
    if not isinstance(metrics, dict) or "test" not in metrics:
        return lines + ["Not yet written: the run has not finished.", ""]
    lines += _table(["metric", "value"], [[k, v] for k, v in metrics["test"].items()])
    return lines + [""]


def _attribution_section(run: Path) -> list[str]:
    from i2moe.interpret.report import distinguishable_sentence

    lines = ["## What the predictions rest on (test split)", ""]
    folders = [run] if (run / "run.json").is_file() else _seed_folders(run)
    sections: list[str] = []
    shares_by_seed: dict[str, list[float]] = {}
    methods_seen: set[Any] = set()
    for folder in folders:
        details = _read_json(folder / "interpretation" / "attribution_methods.json")
        if not isinstance(details, dict):
            continue
        method = details.get("method")
        methods_seen.add(method)
        chosen = (details.get("methods") or {}).get(method, {})
        if folder != run:
            sections += [f"### {folder.name}", ""]
        sections.append(f"Method `{method}`: {details.get('description', '')}.")
        faithfulness = chosen.get("faithfulness") or {}
        if faithfulness:
            shown = ", ".join(
                f"{k} {_number(v)}"
                for k, v in faithfulness.items()
                if k in ("top_correct", "mixture_agreement")
            )
            sections.append(
                f"Measured faithfulness on the benchmark: {shown} (docs/faithfulness.md)."
            )
        shares = chosen.get("shares") or {}
        intervals = chosen.get("intervals") or {}
        level = (details.get("bootstrap") or {}).get("level", 0.95)
        rows = []
        for name, share in shares.items():
            interval = intervals.get(name)
            shown_interval = f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "–"
            rows.append([name, share, shown_interval])
            shares_by_seed.setdefault(name, []).append(share)
        sections += ["", *_table(["interaction", "share", f"{100 * level:g} % interval"], rows)]
        sentence = distinguishable_sentence(chosen)
        sections += ["", sentence, ""] if sentence else [""]
    if not methods_seen:
        return lines + [
            "No interpretation in this run (a vanilla run, or written without one).",
            "",
        ]
    seeds = len(next(iter(shares_by_seed.values()), []))
    if seeds > 1 and len(methods_seen) == 1:
        spread = ", ".join(
            f"{name} {min(values):.3f}-{max(values):.3f}" for name, values in shares_by_seed.items()
        )
        lines += [f"Spread of each share over the {seeds} seeds (min-max): {spread}.", ""]
    return lines + sections


def _robustness_section(run: Path) -> list[str]:
    rows = _read_json(run / "robustness.json")
    if not isinstance(rows, list) or not rows:
        return []
    metric_names = list((rows[0].get("metrics") or {}).keys())
    table = [
        [", ".join(r.get("present", [])), *[(r.get("metrics") or {}).get(m) for m in metric_names]]
        for r in rows
    ]
    return [
        "## Robustness to missing modalities (test time, no retraining)",
        "",
        *_table(["modalities present", *metric_names], table),
        "",
    ]


def model_card(run: str | Path) -> str:
    """The Markdown card of the run folder ``run`` (one seed, or the top of several seeds)."""
    run = Path(run)
    seeds = _seed_folders(run)
    first = run if (run / "run.json").is_file() or not seeds else seeds[0]
    info = _read_json(first / "run.json") or {}
    config = _read_yaml(run / "config.yaml") or _read_yaml(first / "config.yaml") or {}
    lines = [
        f"# Model card: {run.name}",
        "",
        "Written by i2moe from the files of this run folder; `i2moe explain` and "
        "`i2moe robustness` refresh it.",
        "",
        *_data_section(info, config),
        *_settings_section(config),
        *_metrics_section(run),
        *_attribution_section(run),
        *_robustness_section(run),
        "## Known limits",
        "",
        *[f"- {limit}" for limit in KNOWN_LIMITS],
        "",
        "## Citation",
        "",
        "Xin et al., I2MoE: Interpretable Multimodal Interaction-aware Mixture-of-Experts, "
        "ICML 2025 (arXiv 2505.19190).",
        "",
    ]
    return "\n".join(lines)


def write_model_card(run: str | Path) -> Path:
    """Write (or refresh) ``MODEL_CARD.md`` in the run folder; returns its path."""
    path = Path(run) / CARD_NAME
    write_atomic(path, model_card(run))
    return path
