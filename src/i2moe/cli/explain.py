"""``i2moe explain``: interpret a saved run (figures, tables, ``report.html``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from i2moe.spec import SPLITS

HELP = "interpret a run: expert weights, outputs, agreement, modality sensitivity"
DESCRIPTION = (
    "Interpret an I2MoE run on a data split: per-sample expert outputs, weights "
    "and contributions, weight distributions, each expert against the model, expert "
    "agreement and modality sensitivity, as CSV/JSON, PNG figures and report.html."
)
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="run folder (one seed)")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument(
        "--samples", type=int, nargs="+", metavar="POS", help="positions in the split to show"
    )
    parser.add_argument("--ids", nargs="+", metavar="ID", help="sample ids to show")
    parser.add_argument(
        "--examples",
        type=int,
        default=3,
        metavar="K",
        help="without --samples/--ids: show K correct and K wrong predictions (default 3)",
    )
    parser.add_argument("--data", help="another data file with the run's modalities")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        help="regression: largest error counted correct and largest spread of agreeing "
        "experts (default 0.5)",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=3,
        help="random replacements averaged per modality in the sensitivity (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of those replacements")
    parser.add_argument(
        "--output",
        type=Path,
        help="folder to write (default <run>/interpretation; see docs/interpretation.md)",
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.model import I2MoE
    from i2moe.runs.explain import interpret_run, vanilla_message
    from i2moe.runs.files import RunError
    from i2moe.runs.loading import load_run

    module, config, info = load_run(args.run)
    if not isinstance(module.model, I2MoE):
        raise RunError(vanilla_message(args.run))
    explanation = interpret_run(
        args.run,
        module,
        config,
        info,
        split=args.split,
        samples=args.samples,
        sample_ids=args.ids,
        data=args.data,
        tolerance=args.tolerance,
        output=args.output,
        bundle=None,
        draws=args.draws,
        seed=args.seed,
        num_examples=args.examples,
    )
    report = explanation.files.get("report", explanation.files["summary"])
    log.info("explained %d samples: %s", explanation.num_samples, report)
    return 0
