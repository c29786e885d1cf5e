"""``i2moe predict``: a run's prediction, attribution and expert weights for every row of a file
(``docs/predictions.md``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "predict every row of a file (labels optional), with attribution and expert weights"
DESCRIPTION = (
    "Predict every row of DATA once, in file order, with a trained run: the prediction, "
    "class probabilities, the run's attribution of each row to interactions (attr_), the "
    "expert weights (weight_) and the observed modalities. Labels and a split in the file are "
    "optional; labels are carried into target columns ('i2moe test' scores). The columns are "
    "described in docs/predictions.md."
)
log = logging.getLogger("i2moe")


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of rows >= 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="the run folder (one seed)")
    parser.add_argument(
        "--data",
        required=True,
        help="a .npz file, a CSV/Parquet table (the run's column mapping), or a dataset name",
    )
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        help="the file to write: .csv or .parquet (an existing one is replaced when the new "
        "one is complete)",
    )
    parser.add_argument(
        "--columns",
        type=Path,
        metavar="MAPPING.yaml",
        help="column mapping for a table (default: the run's)",
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="ROWS",
        help="rows predicted, attributed and written at a time (default: 4096)",
    )
    parser.add_argument(
        "--no-attribution",
        action="store_true",
        help="leave out the attr_ columns (the rule attribution reads the run's training data)",
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.runs.prediction import predict_run

    options = {} if args.batch_size is None else {"batch_size": args.batch_size}
    count = predict_run(
        args.run,
        data=args.data,
        output=args.output,
        attribution=not args.no_attribution,
        mapping=args.columns,
        **options,
    )
    log.info("%d predictions written to %s", count, args.output)
    return 0
