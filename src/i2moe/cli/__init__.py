"""The ``i2moe`` command line (the top layer): :func:`main` and the table of commands."""

from i2moe.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
