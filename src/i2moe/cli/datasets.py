"""``i2moe datasets``: the bundled datasets with their sizes, licences and citations."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

HELP = "list the bundled datasets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    from i2moe.data.registry import list_datasets

    for entry in list_datasets():
        sys.stdout.write(describe(entry) + "\n")
    return 0


def describe(entry: Any) -> str:
    if dataclasses.is_dataclass(entry):
        fields = dataclasses.asdict(entry)
        name = fields.pop("name", "")
        fields.pop("loader", None)
        details = "; ".join(f"{k}: {v}" for k, v in fields.items() if k != "citation")
        return f"{name}\n    {details}"
    return str(entry)
