"""Interpreting I2MoE models (docs/method.md section 5; ``docs/interpretation.md``).

:func:`explain` runs a model over a split and writes the explanation: per-sample expert outputs,
weights and contributions (paper Figure 3), the distribution of the weights (Figure 4), each
expert against the weighted model (Figure 5), expert agreement (Table 3) and modality
sensitivity, as CSV/JSON files, PNG figures and one self-contained ``report.html``.

The steps are importable on their own: :mod:`~i2moe.interpret.outputs` (running the model),
:mod:`~i2moe.interpret.analysis` (the numbers), :mod:`~i2moe.interpret.files` (writing them),
:mod:`~i2moe.interpret.figures` (PNG), :mod:`~i2moe.interpret.report` (HTML), and
:mod:`~i2moe.interpret.attribution` (which interaction a prediction rests on). This module
imports them only when used, so the command line starts fast. A run folder's interpretation
(``i2moe explain``) is :mod:`i2moe.runs.explain`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset

    from i2moe.interpret.analysis import Explanation
    from i2moe.model import I2MoE

_LAZY = {
    "SplitOutputs": "i2moe.interpret.outputs",
    "collect": "i2moe.interpret.outputs",
    "Explanation": "i2moe.interpret.analysis",
    "analyse": "i2moe.interpret.analysis",
    "write_tables": "i2moe.interpret.files",
    "write_summary": "i2moe.interpret.files",
    "write_explanation": "i2moe.interpret.files",
    "write_figures": "i2moe.interpret.figures",
    "render_report": "i2moe.interpret.report",
    "write_report": "i2moe.interpret.report",
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
    draws: int = 3,
    seed: int = 0,
    batch_size: int = 256,
    figures: bool = True,
    report: bool = True,
    robustness: str | Path | None = None,
    **options: Any,
) -> Explanation:
    """Explain an I2MoE model on a data split, and write the files when ``output_dir`` is given.

    Args:
        model: any :class:`~i2moe.model.I2MoE` (run in eval mode; its mode is restored).
        data: a Dataset of i2moe items (``{"inputs", "target", "observed"}``) or an unshuffled
            DataLoader over one.
        output_dir: where to write CSV/JSON, PNG figures and ``report.html``; None computes the
            numbers only.
        draws: random replacements averaged per modality in the sensitivity (``random``
            masking only).
        seed: seed of those replacements.
        batch_size: batch size when ``data`` is a Dataset.
        figures: draw the PNG figures.
        report: write ``report.html`` (embeds the figures; implies ``figures``).
        robustness: the run's ``robustness.json`` (``i2moe robustness``); when the file
            exists, the figures and the report get a robustness section.
        **options: what :func:`~i2moe.interpret.analysis.analyse` takes: ``class_names``,
            ``tolerance``, ``samples`` (positions to show in detail), ``sample_ids`` (ids to
            show in detail), ``num_examples``, ``groups`` (further breakdowns of the weights)
            and ``context`` (free fields shown in the summary and the report header).

    Returns:
        The :class:`~i2moe.interpret.analysis.Explanation`, with ``files`` and ``figures``
        naming what was written.

    Raises:
        ValueError: for a model without experts, an unknown sample, or a bad tolerance.
    """
    from i2moe.interpret.analysis import analyse
    from i2moe.interpret.files import write_explanation
    from i2moe.interpret.outputs import collect

    outputs = collect(model, data, draws=draws, seed=seed, batch_size=batch_size)
    explanation = analyse(outputs, **options)
    if output_dir is None:
        return explanation
    return write_explanation(
        explanation, output_dir, figures=figures, report=report, robustness=robustness
    )
