"""``i2moe compare``: every backbone vanilla vs I2MoE, and the ablations, over seeds."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from i2moe.cli.options import add_fit_arguments, resolve_config
from i2moe.experiments.compare import ABLATION_ROWS, BACKBONES

HELP = "every backbone vanilla vs I2MoE, and the ablations, over seeds"
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--config", help="YAML run configuration every row starts from")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="retrain seed folders holding another configuration (finished ones are reused)",
    )
    parser.add_argument("--fusions", nargs="*", default=list(BACKBONES))
    parser.add_argument("--ablations", nargs="*", default=list(ABLATION_ROWS))
    add_fit_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from i2moe.experiments.compare import comparison_rows, run_grid
    from i2moe.training.distributed import is_primary_process

    base = resolve_config(args)
    rows = comparison_rows(args.fusions, args.ablations)
    table = run_grid(base, rows, args.output, overwrite=args.overwrite)
    if not is_primary_process():  # a further process of a distributed run: it writes nothing
        return 0
    sys.stdout.write((Path(args.output) / "table.md").read_text())
    log.info("%d rows written to %s", len(table), args.output)
    return 0
