"""``i2moe fusions``: the registered fusion backbones."""

from __future__ import annotations

import argparse
import sys

HELP = "list the fusion backbones"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    from i2moe.fusion import FUSIONS

    sys.stdout.write("\n".join(sorted(FUSIONS)) + "\n")
    return 0
