"""The ``i2moe`` command line: an explicit table of commands, one module each, and the
handling of user mistakes.

Every ``fit`` option can also be set in a YAML config (``--config``); flags given on the command
line win over the file, the file over the defaults. User mistakes end with exit code 2 and one
line naming the file, field and expected form; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

from i2moe.cli import (
    bench,
    compare,
    datasets,
    explain,
    export,
    faithfulness,
    fit,
    fusions,
    predict,
    reproduce,
    robustness,
    synth,
)
from i2moe.cli import test as test_command
from i2moe.config import ConfigError
from i2moe.spec import DataError

log = logging.getLogger("i2moe")

# Sub-command -> its module: ``HELP`` (and optionally ``DESCRIPTION``), ``add_arguments(parser)``
# and ``run(args) -> exit code``. A new command is a module in this package and a row here.
COMMANDS: dict[str, ModuleType] = {
    "fit": fit,
    "test": test_command,
    "predict": predict,
    "datasets": datasets,
    "fusions": fusions,
    "synth": synth,
    "explain": explain,
    "export": export,
    "robustness": robustness,
    "compare": compare,
    "reproduce": reproduce,
    "faithfulness": faithfulness,
    "bench": bench,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``i2moe`` parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="i2moe", description="Interpretable multimodal interaction-aware mixture of experts"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        description = getattr(command, "DESCRIPTION", None)
        command_parser = sub.add_parser(name, help=command.HELP, description=description)
        command.add_arguments(command_parser)
        command_parser.set_defaults(handler=command.run)
    return parser


USER_ERRORS: tuple[type[Exception], ...] = (DataError, ConfigError, KeyError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``i2moe`` with ``argv`` (default: the process's arguments); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    from i2moe.runs.files import RunError

    if args.quiet:
        # Imported before the levels are set: importing Lightning sets its loggers' levels.
        import lightning.pytorch  # noqa: F401

    quieted = ("lightning", "lightning.pytorch", "lightning.fabric")
    levels = {name: logging.getLogger(name).level for name in quieted}
    try:
        with warnings.catch_warnings():
            if args.quiet:
                warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
                for name in quieted:
                    logging.getLogger(name).setLevel(logging.WARNING)
            return args.handler(args)
    except (*USER_ERRORS, RunError, OSError, ImportError) as error:
        if args.debug or not _is_user_error(error):
            raise
        sys.stderr.write(f"i2moe {args.command}: error: {_message(error)}\n")
        return 2
    finally:
        log.removeHandler(handler)  # main() called again in one process must not log twice
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _is_user_error(error: Exception) -> bool:
    """An ImportError is the user's only when an optional package is missing; one raised by
    i2moe's own modules is a bug and keeps its traceback."""
    if isinstance(error, ImportError):
        return not (error.name or "").startswith("i2moe")
    return True


def _message(error: Exception) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, ImportError):
        text = str(error)
        if "pip install" in text:
            return text
        return f"{text}; an optional dependency is missing: install it (see README.md, Install)"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)
