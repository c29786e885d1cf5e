"""``i2moe synth``: generated data with a known interaction, as an ``.npz`` file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from i2moe.data.synth import INTERACTIONS

HELP = "generate data with a known interaction"
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interaction", required=True, choices=INTERACTIONS)
    parser.add_argument("--modalities", type=int, default=2)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=None, help="tokens per modality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from i2moe.data.synth import write_synth

    write_synth(
        args.output,
        interaction=args.interaction,
        num_modalities=args.modalities,
        num_samples=args.samples,
        dim=args.dim,
        num_tokens=args.tokens,
        seed=args.seed,
    )
    log.info("wrote %s", args.output)
    return 0
