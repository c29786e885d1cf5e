"""``i2moe predict``: a run's prediction and expert weights for every sample of a dataset."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "predictions and expert weights for every sample"
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True, type=Path, help="CSV file to write")


def run(args: argparse.Namespace) -> int:
    from i2moe.runs.inference import predict_run

    frame = predict_run(args.run, data=args.data, output=args.output)
    log.info("%d predictions written to %s", len(frame), args.output)
    return 0
