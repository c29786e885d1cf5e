"""A reproduced table: mean ± std per row and paper metric beside the paper's number, written as
``table<k>.csv`` and ``table<k>.md``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from i2moe.config import RunConfig
from i2moe.experiments.paper import paper
from i2moe.experiments.reproduce.grid import PaperRun
from i2moe.runs.tables import markdown_table, mean_std, mean_std_cell


def table_records(
    dataset: str, table: int, results: Mapping[PaperRun, Mapping[int, Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """Per row and paper metric: mean and std (population, as the authors) over seeds, in %."""
    records = []
    for run, per_seed in results.items():
        for metric, label in paper().metrics[dataset]:
            mean, std = mean_std(100.0 * m["test"][metric] for m in per_seed.values())
            figure = paper().table1.get(run.paper_method or "", {}).get(dataset, {}).get(metric)
            records.append(
                {
                    "table": table,
                    "dataset": dataset,
                    "method": run.method,
                    "run": run.folder,
                    "fusion": run.fusion,
                    "vanilla": run.vanilla,
                    "ablation": run.ablation,
                    "masking": run.masking,
                    "metric": label,
                    "mean_pct": mean,
                    "std_pct": std,
                    "seeds": " ".join(str(s) for s in per_seed),
                    "paper_mean_pct": figure[0] if figure else None,
                    "paper_std_pct": figure[1] if figure else None,
                }
            )
    return records


def write_table(
    records: Sequence[dict[str, Any]],
    output: Path,
    dataset: str,
    table: int,
    base: RunConfig,
    *,
    epochs_overridden: bool = False,
) -> Path:
    """``table<k>.csv`` (one line per row and metric) and ``table<k>.md`` (paper style)."""
    import pandas as pd

    pd.DataFrame(records).to_csv(output / f"table{table}.csv", index=False)
    labels = [label for _, label in paper().metrics[dataset]]
    header = ["method"] + [name for label in labels for name in (label, f"{label} (paper)")]
    described = paper().tables[table]
    lines = [
        f"# {described.title}: {dataset}",
        "",
        f"Test split, %, mean ± std over seeds {', '.join(map(str, base.train.seeds))} "
        "(population std, as the authors).",
        described.note,
    ]
    if epochs_overridden:
        lines.append(
            f"Smoke run: every config's epochs overridden to {base.train.epochs}; not "
            "comparable with the paper."
        )
    rows = []
    for method in dict.fromkeys(r["method"] for r in records):
        cells = [method]
        for label in labels:
            row = next(r for r in records if r["method"] == method and r["metric"] == label)
            cells.append(mean_std_cell(row["mean_pct"], row["std_pct"], 2))
            figure = row["paper_mean_pct"]
            cells.append(
                "n/a" if figure is None else mean_std_cell(figure, row["paper_std_pct"], 2)
            )
        rows.append(cells)
    path = output / f"table{table}.md"
    path.write_text("\n".join(lines) + "\n\n" + markdown_table(header, rows))
    return path
