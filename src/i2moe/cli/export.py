"""``i2moe export``: a finished run's model as a TorchScript or ONNX file, checked against
PyTorch on the run's test split (docs/export.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "export a run's model to TorchScript or ONNX"
DESCRIPTION = (
    "Export the eval-mode model of a finished run (inputs: the modalities in the run's order "
    "and the observed mask [B, M]; outputs: prediction [B, C] and, for I2MoE, the expert "
    "weights [B, E]), load the file back, and check it against the PyTorch model on the run's "
    "test split (max abs difference below 1e-4). See docs/export.md."
)
FORMATS = ("torchscript", "onnx")
log = logging.getLogger("i2moe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="a run folder of 'i2moe fit'")
    parser.add_argument(
        "--format", required=True, metavar="|".join(FORMATS), help="the file format to write"
    )
    parser.add_argument("--output", required=True, type=Path, help="the file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise ValueError(f"--format: {args.format!r}; expected one of {', '.join(FORMATS)}")
    from i2moe.runs.export import export_run

    report = export_run(args.run, args.output, format=args.format, overwrite=args.overwrite)
    log.info(
        "%s written: inputs %s; outputs %s",
        report.path,
        ", ".join(report.inputs),
        ", ".join(report.outputs),
    )
    return 0
