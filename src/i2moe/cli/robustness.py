"""``i2moe robustness``: a run evaluated with modalities missing at test time, no retraining."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from i2moe.spec import SPLITS

HELP = "evaluate a run with each subset of its modalities present (no retraining)"
DESCRIPTION = (
    "Evaluate a run's best checkpoint once per subset of its modalities, the others marked "
    "missing for every sample (every non-empty subset up to 4 modalities; beyond, the full set, "
    "each modality left out and each alone). Each row: the task metrics and the share of each "
    "interaction by the run's default attribution method. Writes a Markdown table to stdout "
    "and the rows as JSON (docs/robustness.md)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="run folder (one seed)")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="JSON file to write (default <run>/robustness.json; <run>/robustness_<split>.json "
        "for another split)",
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.runs.robustness import robustness_run, robustness_table

    rows = robustness_run(args.run, split=args.split, output=args.json)
    sys.stdout.write(robustness_table(rows) + "\n")
    return 0
