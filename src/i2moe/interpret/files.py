"""Writing an explanation into a folder: CSV/JSON tables, PNG figures, ``report.html`` and
``summary.json`` (``docs/interpretation.md``, "Files")."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from i2moe.interpret.analysis import Explanation

log = logging.getLogger(__name__)


def write_tables(explanation: Explanation, output_dir: str | Path) -> dict[str, Path]:
    """Write the machine-readable files (CSV, JSON) into ``output_dir``.

    Returns:
        name -> path of each file written (``summary.json`` is written last, by
        :func:`write_summary`, once figures and report are known).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "weights": output_dir / "weights.csv",
        "expert_outputs": output_dir / "expert_outputs.csv",
        "chosen_samples": output_dir / "chosen_samples.csv",
        "weight_summary": output_dir / "weight_summary.csv",
        "weight_groups": output_dir / "weight_groups.csv",
        "performance": output_dir / "expert_performance.csv",
        "agreement": output_dir / "agreement.csv",
        "sensitivity": output_dir / "sensitivity.csv",
        "sensitivity_summary": output_dir / "sensitivity_summary.csv",
    }
    explanation.weights_frame().to_csv(files["weights"], index=False)
    explanation.local_table().to_csv(files["expert_outputs"], index=False)
    explanation.local_table(explanation.chosen).to_csv(files["chosen_samples"], index=False)
    explanation.weight_summary.to_csv(files["weight_summary"], index=False)
    explanation.weight_groups.to_csv(files["weight_groups"], index=False)
    explanation.performance.to_csv(files["performance"])
    agreement = explanation.agreement.join(explanation.agreement_counts.add_suffix("_count"))
    agreement.index.name = "experts"
    agreement.to_csv(files["agreement"])
    explanation.sensitivity.to_csv(files["sensitivity"], index=False)
    explanation.sensitivity_summary.to_csv(files["sensitivity_summary"], index=False)
    return files


def write_summary(explanation: Explanation, output_dir: str | Path) -> Path:
    """Write ``summary.json``: :meth:`Explanation.summary` plus ``files``, every file written
    (paths relative to ``output_dir``)."""
    output_dir = Path(output_dir)
    path = output_dir / "summary.json"
    explanation.files["summary"] = path
    written = [*explanation.files.values(), *explanation.figures.values()]
    files = sorted(p.relative_to(output_dir).as_posix() for p in written)
    path.write_text(json.dumps({**explanation.summary(), "files": files}, indent=2) + "\n")
    return path


def write_explanation(
    explanation: Explanation,
    output_dir: str | Path,
    *,
    figures: bool = True,
    report: bool = True,
    robustness: str | Path | None = None,
) -> Explanation:
    """Write every file of ``explanation`` into ``output_dir``; ``summary.json`` comes last.

    Args:
        explanation: what :func:`~i2moe.interpret.analysis.analyse` returns.
        output_dir: the folder (created).
        figures: draw the PNG figures (imports matplotlib).
        report: write ``report.html`` (embeds the figures; implies ``figures``).
        robustness: the run's ``robustness.json`` (``i2moe robustness``); when the file
            exists, the figures and the report get a robustness section.

    Returns:
        ``explanation``, its ``files`` and ``figures`` naming what was written.
    """
    output_dir = Path(output_dir)
    explanation.files = write_tables(explanation, output_dir)
    rows = None
    if figures or report:
        from i2moe.interpret.figures import write_figures
        from i2moe.interpret.report import read_robustness

        rows = read_robustness(robustness)
        explanation.figures = write_figures(explanation, output_dir, robustness=rows)
    if report:
        from i2moe.interpret.report import write_report

        explanation.files["report"] = write_report(
            explanation, explanation.figures, output_dir / "report.html", robustness=rows
        )
    write_summary(explanation, output_dir)
    log.info("interpretation of %d samples written to %s", explanation.num_samples, output_dir)
    return explanation
