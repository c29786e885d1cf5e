"""``i2moe test``: the metrics of a run's best checkpoint on a split."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from i2moe.spec import SPLITS

HELP = "evaluate a run's best checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--data", help="evaluate on another dataset with the same modalities")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument(
        "--drop",
        nargs="+",
        default=(),
        metavar="MODALITY",
        help="mark these modalities missing for every sample (no retraining; see "
        "docs/robustness.md)",
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.runs.evaluation import evaluate_run

    metrics = evaluate_run(args.run, data=args.data, split=args.split, drop=args.drop)
    sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
    return 0
