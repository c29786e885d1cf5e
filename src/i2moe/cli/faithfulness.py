"""``i2moe faithfulness``: do the explanations name the interaction that is really there?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from i2moe.experiments.faithfulness import EMBEDDINGS, KINDS, SUITE_SIZES

HELP = "benchmark the interaction explanations on data with known interactions"
DESCRIPTION = (
    "Generate data sets with known interactions (checked by exact PID), train "
    "I2MoE (paper training and evidence-supervised reweighting) and score each attribution "
    "method: top interaction right, per-sample agreement on mixtures, test accuracy."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, help="folder for results.csv and summary.md")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--modalities", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--embeddings", nargs="+", choices=EMBEDDINGS, default=list(EMBEDDINGS))
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    sizes = ", ".join(f"{n}: {s} / {e}" for n, (s, e) in SUITE_SIZES.items())
    parser.add_argument(
        "--samples", type=int, help=f"samples per data set (default by modalities, {sizes})"
    )
    parser.add_argument("--epochs", type=int, help="epochs (default by modalities, as above)")
    parser.add_argument("--fusion", default="transformer", help="experts' backbone")
    parser.add_argument("--no-pid", action="store_true", help="skip the PID ground-truth check")
    parser.add_argument(
        "--accuracy",
        metavar="DATA",
        help="instead: test accuracy of the paper's and the evidence training on a real data set "
        "(e.g. mfeat; D = 32, --epochs, one run per --seeds)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 modalities, vector embeddings only (6 data sets)"
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.experiments.faithfulness import accuracy_cost, run_benchmark
    from i2moe.runs.tables import frame_markdown

    if args.accuracy:
        epochs = args.epochs or 5
        frame = accuracy_cost(args.accuracy, seeds=tuple(args.seeds), epochs=epochs, dim=32)
        table = frame.groupby("training", sort=False)["test_accuracy"].agg(["mean", "std"])
        sys.stdout.write(frame_markdown(frame) + "\n" + frame_markdown(table.reset_index()))
        if args.output is not None:
            args.output.mkdir(parents=True, exist_ok=True)
            frame.to_csv(args.output / f"accuracy_{args.accuracy}.csv", index=False)
        return 0
    options: dict[str, Any] = {
        "seeds": tuple(args.seeds),
        "modalities": tuple(args.modalities),
        "embeddings": tuple(args.embeddings),
        "kinds": tuple(args.kinds),
        "num_samples": args.samples,
        "epochs": args.epochs,
        "fusion": args.fusion,
        "check_pid": not args.no_pid,
    }
    if args.quick:
        options.update(modalities=(2,), embeddings=("vector",))
    _, table = run_benchmark(args.output, **options)
    sys.stdout.write(frame_markdown(table))
    return 0
