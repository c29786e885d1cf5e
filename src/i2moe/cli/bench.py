"""``i2moe bench``: step time, operator count and memory of vanilla, loop and fast path."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from i2moe.experiments.bench.sizes import DESCRIPTION, DEVICES, SIZES, BenchOptions

HELP = DESCRIPTION
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", nargs="+", choices=list(SIZES), default=list(SIZES), help="default: all"
    )
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="all: CPU and CUDA")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for CI)")
    parser.add_argument("--repeats", type=int, help="timed runs, median reported (default 3)")
    parser.add_argument("--warmup", type=int, help="untimed runs first (default 1)")
    parser.add_argument(
        "--perturb-k", type=int, help="perturb k modalities per step (Less-Forward speed option)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile (best effort)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for every run")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no subprocess per variant (faster; CPU peak memory is then a lower bound)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results here")


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The benchmark's options from the parsed command line."""
    quick = args.quick
    return BenchOptions(
        sizes=list(args.sizes),
        device=args.device,
        quick=quick,
        repeats=args.repeats if args.repeats is not None else (1 if quick else 3),
        warmup=args.warmup if args.warmup is not None else 1,
        perturb_k=args.perturb_k,
        compile=args.compile,
        bf16=args.bf16,
        threads=args.threads,
        in_process=args.in_process,
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.experiments.bench.benchmark import format_table, run_benchmark

    entries = run_benchmark(options_from_args(args))
    sys.stdout.write(format_table(entries))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(entries, indent=2) + "\n")
        log.info("results written to %s", args.json)
    return 0
