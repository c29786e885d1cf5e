"""Interpreting I2MoE models (docs/method.md section 5; ``docs/interpretation.md``).

:func:`explain` runs a model over a split and writes the explanation: per-sample expert outputs,
weights and contributions (paper Figure 3), the distribution of the weights (Figure 4), each
expert against the weighted model (Figure 5), expert agreement (Table 3) and modality
sensitivity, as CSV/JSON files, PNG figures and one self-contained ``report.html``.

The parts are importable on their own: :mod:`i2moe.interpret.analysis` (numbers),
:mod:`i2moe.interpret.figures` (PNG), :mod:`i2moe.interpret.report` (HTML),
:mod:`i2moe.runs.explain` (``i2moe explain`` and :func:`write_interpretation` for a run
folder). This module imports them only when used, so the command line starts fast.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset

    from i2moe.interpret.analysis import Explanation
    from i2moe.model import I2MoE

log = logging.getLogger(__name__)

_LAZY = {
    "Collected": "i2moe.interpret.analysis",
    "Explanation": "i2moe.interpret.analysis",
    "analyse": "i2moe.interpret.analysis",
    "collect": "i2moe.interpret.analysis",
    "write_tables": "i2moe.interpret.analysis",
    "write_summary": "i2moe.interpret.analysis",
    "write_figures": "i2moe.interpret.figures",
    "render_report": "i2moe.interpret.report",
    "write_report": "i2moe.interpret.report",
    "write_interpretation": "i2moe.runs.explain",
}

__all__ = ["explain", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def explain(
    model: I2MoE,
    data: DataLoader | Dataset,
    output_dir: str | Path | None = None,
    *,
    samples: Sequence[int] | None = None,
    sample_ids: Sequence[Any] | None = None,
    tolerance: float = 0.5,
    class_names: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[Any]] | None = None,
    num_examples: int = 3,
    draws: int = 3,
    seed: int = 0,
    batch_size: int = 256,
    figures: bool = True,
    report: bool = True,
    context: Mapping[str, Any] | None = None,
) -> Explanation:
    """Explain an I2MoE model on a data split, and write the files when ``output_dir`` is given.

    Args:
        model: any :class:`~i2moe.model.I2MoE` (run in eval mode; its mode is restored).
        data: a Dataset of i2moe items (``{"inputs", "target", "observed"}``) or an unshuffled
            DataLoader over one.
        output_dir: where to write CSV/JSON, PNG figures and ``report.html``; None computes the
            numbers only.
        samples: positions in the split to show in detail.
        sample_ids: ids (the dataset's ``sample_ids``) to show in detail.
        tolerance: regression: largest error of a correct prediction and largest spread of
            agreeing experts.
        class_names: names of the classes (labels); default their numbers.
        groups: further breakdowns of the weights, name -> one label per sample (e.g. the true
            interaction of generated data).
        num_examples: with no samples asked for, show this many correct and this many wrong.
        draws: random replacements averaged per modality in the sensitivity (``random``
            masking only).
        seed: seed of those replacements.
        batch_size: batch size when ``data`` is a Dataset.
        figures: draw the PNG figures.
        report: write ``report.html`` (embeds the figures; implies ``figures``).
        context: free fields (run, data, split) shown in the summary and the report header.

    Returns:
        The :class:`~i2moe.interpret.analysis.Explanation`, with ``files`` and ``figures``
        naming what was written.

    Raises:
        ValueError: for a model without experts, an unknown sample, or a bad tolerance.
    """
    from i2moe.interpret.analysis import analyse, collect, write_summary, write_tables

    collected = collect(model, data, draws=draws, seed=seed, batch_size=batch_size)
    explanation = analyse(
        collected,
        task=model.task,
        expert_names=model.expert_names,
        modality_names=model.modality_names,
        class_names=class_names,
        tolerance=tolerance,
        samples=samples,
        sample_ids=sample_ids,
        num_examples=num_examples,
        groups=groups,
        context=context,
    )
    if output_dir is None:
        return explanation
    output_dir = Path(output_dir)
    explanation.files = write_tables(explanation, output_dir)
    if figures or report:
        from i2moe.interpret.figures import write_figures

        explanation.figures = write_figures(explanation, output_dir)
    if report:
        from i2moe.interpret.report import write_report

        explanation.files["report"] = write_report(
            explanation, explanation.figures, output_dir / "report.html"
        )
    write_summary(explanation, output_dir)
    log.info("interpretation of %d samples written to %s", explanation.num_samples, output_dir)
    return explanation
