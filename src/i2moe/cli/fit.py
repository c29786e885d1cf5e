"""``i2moe fit``: train, select on validation, test, write a run folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from i2moe.cli.options import add_fit_arguments, config_origins, resolve_config

HELP = "train, select on validation, test, write a run folder"
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path, help="run folder to write")
    parser.add_argument("--config", help="YAML run configuration")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --output")
    add_fit_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from i2moe.runs.fitting import fit
    from i2moe.training.distributed import is_primary_process

    config = resolve_config(args)
    per_seed = fit(
        config,
        args.output,
        resume=args.resume,
        overwrite=args.overwrite,
        origins=config_origins(args),
    )
    if not is_primary_process():  # a further process of a distributed run: it writes nothing
        return 0
    for seed, metrics in per_seed.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
        log.info("seed %d test: %s", seed, shown)
    log.info("run written to %s", args.output)
    return 0
