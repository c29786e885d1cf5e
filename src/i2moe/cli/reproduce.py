"""``i2moe reproduce``: the paper's tables on its datasets, from the shipped configs."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from i2moe.data.paper import paper_dataset_name, spellings
from i2moe.experiments.reproduce import BACKBONES, DATASETS, TABLES

HELP = "the paper's tables on its datasets, from the shipped configs"
DESCRIPTION = (
    "Train every run of one of the paper's tables on one dataset (configs in "
    "i2moe/configs/paper) and write the table, mean ± std over seeds, next to the "
    "paper's numbers. See docs/reproduce.md."
)
log = logging.getLogger("i2moe")


def _dataset(value: str) -> str:
    """A paper dataset by any of its spellings (``mmimdb`` -> ``imdb``)."""
    canonical = paper_dataset_name(value)
    if canonical not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset '{value}'; expected one of {spellings()}"
        )
    return canonical


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        type=_dataset,
        metavar="NAME",
        help=f"the paper's dataset: {spellings()}",
    )
    parser.add_argument("--data-root", type=Path, metavar="DIR", help="the dataset's folder")
    parser.add_argument(
        "--table",
        type=int,
        choices=TABLES,
        default=1,
        help="1 backbones + I2MoE-MulT, 2 I2MoE vs vanilla per backbone, 4 ablations, 5 masking",
    )
    parser.add_argument(
        "--fusion",
        nargs="+",
        choices=BACKBONES,
        metavar="FUSION",
        help=f"backbones to include: {', '.join(BACKBONES)}",
    )
    parser.add_argument(
        "--output", type=Path, metavar="DIR", help="default runs/reproduce/<dataset>"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="default: the configs' 0 1 2")
    parser.add_argument("--epochs", type=int, help="override every config (smoke runs)")
    parser.add_argument("--dim", type=int, help="override the width D (smoke runs)")
    parser.add_argument("--batch-size", type=int, help="override the batch size")
    parser.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override any config field (YAML value), e.g. train.accelerator=gpu or "
        "model.encoder_options.screenshot.weights_path=vgg11_bn.pt; repeatable",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace run folders whose config differs"
    )
    parser.add_argument(
        "--interpret", action="store_true", help="write each I2MoE run's interpretation"
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs, train nothing")
    parser.add_argument(
        "--list-configs", action="store_true", help="print the shipped configs' paths"
    )


def run(args: argparse.Namespace) -> int:
    from i2moe.experiments.reproduce import (
        ReproduceError,
        config_path,
        paper_grid,
        reproduce,
        shipped_configs,
    )
    from i2moe.training.distributed import is_primary_process

    if args.list_configs:
        sys.stdout.write("".join(f"{path}\n" for path in shipped_configs()))
        return 0
    if args.dataset is None or args.data_root is None:
        raise ReproduceError("--dataset and --data-root are required (or --list-configs)")
    if args.dry_run:
        for run in paper_grid(args.table, args.fusion):
            path = config_path(args.dataset, run.fusion)
            line = f"{run.method}: {path} vanilla={run.vanilla} ablation={run.ablation} "
            sys.stdout.write(line + f"masking={run.masking} -> {run.folder}/\n")
        return 0
    output = args.output or Path("runs") / "reproduce" / args.dataset
    reproduce(
        args.dataset,
        args.data_root,
        table=args.table,
        fusions=args.fusion,
        output=output,
        seeds=args.seeds,
        epochs=args.epochs,
        dim=args.dim,
        batch_size=args.batch_size,
        overrides=args.set or (),
        overwrite=args.overwrite,
        interpret=args.interpret,
    )
    if not is_primary_process():  # a further process of a distributed run: it writes nothing
        return 0
    sys.stdout.write((Path(output) / f"table{args.table}.md").read_text())
    log.info("table and runs written to %s", output)
    return 0
