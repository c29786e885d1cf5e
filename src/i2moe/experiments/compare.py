"""``i2moe compare``: every backbone vanilla vs I2MoE, and the ablations, on one dataset.

Each row of the grid is a run configuration (the base config with a few fields changed),
trained for every seed; the table gives the test metrics as mean ± std over seeds::

    i2moe compare --data mixed.npz --output runs/compare --seeds 0 1 2

writes ``table.md`` / ``table.csv`` and one run folder per row and seed. Run again, the same
command reuses finished runs and resumes unfinished ones (:mod:`i2moe.runs.grid`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from i2moe.config import ABLATIONS
from i2moe.experiments.paper import backbone_order
from i2moe.fusion import FUSIONS
from i2moe.runs.tables import markdown_table, mean_std_cell

log = logging.getLogger(__name__)

# Every registered backbone, in the paper's row order; every ablation of I2MoE.
BACKBONES: tuple[str, ...] = tuple(backbone_order(tuple(FUSIONS)))
ABLATION_ROWS: tuple[str, ...] = tuple(a for a in ABLATIONS if a != "none")


@dataclasses.dataclass(frozen=True)
class GridRow:
    """One row of the comparison: a name and the model fields it changes."""

    name: str
    model: dict[str, Any]


def comparison_rows(
    fusions: Sequence[str] = BACKBONES, ablations: Sequence[str] = ABLATION_ROWS
) -> list[GridRow]:
    """Vanilla and I2MoE for each backbone, then each ablation of I2MoE-transformer."""
    rows = []
    for fusion in fusions:
        rows.append(GridRow(f"{fusion} (vanilla)", {"fusion": fusion, "vanilla": True}))
        rows.append(GridRow(f"I2MoE-{fusion}", {"fusion": fusion}))
    for ablation in ablations:
        rows.append(GridRow(f"I2MoE-transformer {ablation}", {"ablation": ablation}))
    return rows


def run_grid(
    base,
    rows: Sequence[GridRow],
    output: str | Path,
    *,
    overwrite: bool = False,
):
    """Train every row for every seed of ``base.train.seeds``; returns the summary table.

    Run again, the same command reuses finished runs and resumes unfinished ones
    (:func:`i2moe.runs.grid.fit_grid`).

    Args:
        base: the RunConfig every row starts from.
        rows: the grid.
        output: folder for ``table.md``, ``table.csv`` and ``<row>/seed_<s>/`` run folders.
        overwrite: replace run folders that hold another configuration.
    """
    import pandas as pd

    from i2moe.data.load import load_data
    from i2moe.runs.grid import GridRun, fit_grid
    from i2moe.training.distributed import is_primary_process

    output = Path(output)
    # Data first: a bad DATA argument must fail before --overwrite replaces an old comparison.
    bundles = {
        seed: load_data(base.data.name, task=base.data.task, seed=seed, **base.data.options)
        for seed in base.train.seeds
    }
    runs = [
        GridRun(
            _slug(row.name),
            dataclasses.replace(base, model=dataclasses.replace(base.model, **row.model)),
        )
        for row in rows
    ]
    results = fit_grid(runs, output, lambda run, seed: bundles[seed], overwrite=overwrite)
    records = []
    for row, run in zip(rows, runs, strict=True):
        summary = results[run.folder].summary
        test = summary[summary["split"] == "test"]
        records.append({"row": row.name, **{r.metric: (r.mean, r.std) for r in test.itertuples()}})
    table = pd.DataFrame(records)
    if is_primary_process():
        _write_table(table, output, base)
    return table


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")


def _write_table(table, output: Path, base) -> None:
    metrics = [c for c in table.columns if c not in ("row", "loss")]
    flat = table[["row"]].copy()
    for metric in metrics:
        flat[f"{metric}_mean"] = [v[0] for v in table[metric]]
        flat[f"{metric}_std"] = [v[1] for v in table[metric]]
    flat.to_csv(output / "table.csv", index=False)
    rows = []
    for record in table.itertuples(index=False):
        values = record._asdict()
        rows.append([values["row"], *(mean_std_cell(*values[m], digits=4) for m in metrics)])
    caption = (
        f"Test metrics, mean ± std over seeds {base.train.seeds}, data `{base.data.name}`, "
        f"{base.train.epochs} epochs, dim {base.model.dim}.\n\n"
    )
    (output / "table.md").write_text(caption + markdown_table(["model", *metrics], rows))
