"""The ``i2moe`` command line.

Every ``fit`` option can also be set in a YAML config (``--config``); flags given on the command
line win over the file, the file over the defaults. User mistakes end with exit code 2 and one
line naming the file, field and expected form; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from i2moe.builders import ABLATIONS
from i2moe.config import ConfigError, RunConfig, config_from_dict, config_to_dict, load_config
from i2moe.data.base import DataError

log = logging.getLogger("i2moe")

# flag destination -> (section, key) in the run config
FIT_FLAGS: dict[str, tuple[str, str]] = {
    "data": ("data", "name"),
    "task": ("data", "task"),
    "fusion": ("model", "fusion"),
    "vanilla": ("model", "vanilla"),
    "dim": ("model", "dim"),
    "num_patches": ("model", "num_patches"),
    "masking": ("model", "masking"),
    "ablation": ("model", "ablation"),
    "perturb_k": ("model", "perturb_k"),
    "interaction_weight": ("model", "interaction_weight"),
    "temperature": ("model", "temperature"),
    "evidence_weight": ("model", "evidence_weight"),
    "execution": ("model", "execution"),
    "expert_chunk_size": ("model", "expert_chunk_size"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "seeds": ("train", "seeds"),
    "early_stopping": ("train", "early_stopping"),
    "interaction_warmup": ("train", "interaction_warmup"),
    "gradient_clip": ("train", "gradient_clip"),
    "accelerator": ("train", "accelerator"),
    "devices": ("train", "devices"),
    "strategy": ("train", "strategy"),
    "precision": ("train", "precision"),
    "num_nodes": ("train", "num_nodes"),
    "num_workers": ("train", "num_workers"),
}


def _devices(value: str) -> Any:
    if value == "auto":
        return value
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    return int(value)


def _add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="bundled dataset name (see `i2moe datasets`) or a file")
    data.add_argument("--task", choices=["classification", "multilabel", "regression"])
    data.add_argument(
        "--columns",
        metavar="FILE.yaml",
        help="for a CSV/Parquet table: YAML mapping of columns to target/split/modalities",
    )
    data.add_argument(
        "--clean-nonfinite", action="store_true", help="replace NaN/inf features with 0"
    )
    model = parser.add_argument_group("model")
    model.add_argument("--fusion", help="fusion backbone (see `i2moe fusions`)")
    model.add_argument(
        "--vanilla", action="store_true", default=None, help="the backbone alone, no experts"
    )
    model.add_argument("--dim", type=int, help="embedding width D")
    model.add_argument("--num-patches", type=int, help="tokens per vector modality")
    model.add_argument("--masking", choices=["random", "zero", "mean"])
    model.add_argument("--ablation", choices=ABLATIONS)
    model.add_argument("--perturb-k", type=int, help="perturb k modalities per step")
    model.add_argument("--interaction-weight", type=float, help="lambda_int")
    model.add_argument("--temperature", type=float, help="reweighting softmax temperature")
    model.add_argument(
        "--evidence-weight",
        type=float,
        help="train the reweighter on interaction evidence (0: the paper; docs/faithfulness.md)",
    )
    model.add_argument("--execution", choices=["vmap", "loop"], help="expert execution path")
    model.add_argument(
        "--expert-chunk-size",
        type=int,
        metavar="N",
        help="experts per batched call (default all; 2 can be faster on CPU at large sizes)",
    )
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    seeds = train.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, dest="seed")
    seeds.add_argument("--seeds", type=int, nargs="+")
    train.add_argument("--early-stopping", type=int, metavar="PATIENCE")
    train.add_argument(
        "--interaction-warmup",
        type=int,
        metavar="EPOCHS",
        help="epochs on the task loss alone before the interaction losses join (default 0)",
    )
    train.add_argument(
        "--gradient-clip",
        type=float,
        metavar="NORM",
        help="clip the gradients' global norm to NORM in every step (default: no clipping)",
    )
    train.add_argument("--accelerator", help="cpu, gpu, auto, ... (Lightning)")
    train.add_argument("--devices", type=_devices, help="count, list '0,1' or auto")
    train.add_argument("--strategy", help="auto, ddp, ... (Lightning)")
    train.add_argument("--precision", help="32-true, bf16-mixed, ... (Lightning)")
    train.add_argument("--num-nodes", type=int)
    train.add_argument("--num-workers", type=int)


def config_origins(args: argparse.Namespace) -> dict[str, str]:
    """Where each resolved field came from: its flag, else the config file (or the defaults),
    so an error names what the user typed."""
    origins = {"*": args.config or "command line"}
    for dest, (section, key) in FIT_FLAGS.items():
        if getattr(args, dest, None) is not None:
            origins[f"{section}.{key}"] = "--" + dest.replace("_", "-")
    if getattr(args, "seed", None) is not None:
        origins["train.seeds"] = "--seed"
    return origins


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """Defaults, then the YAML file, then the flags given."""
    values = config_to_dict(load_config(args.config) if args.config else RunConfig())
    if getattr(args, "seed", None) is not None:
        args.seeds = [args.seed]
    for dest, (section, key) in FIT_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            values[section][key] = value
    if getattr(args, "columns", None):
        values["data"]["options"]["mapping"] = args.columns
    if getattr(args, "clean_nonfinite", False):
        values["data"]["options"]["clean_nonfinite"] = True
    return config_from_dict(values, args.config or "command line")


def cmd_fit(args: argparse.Namespace) -> int:
    from i2moe.training.files import is_primary_process
    from i2moe.training.run import fit

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


def cmd_test(args: argparse.Namespace) -> int:
    from i2moe.training.inference import evaluate_run

    metrics = evaluate_run(args.run, data=args.data, split=args.split)
    sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from i2moe.training.inference import predict_run

    frame = predict_run(args.run, data=args.data, output=args.output)
    log.info("%d predictions written to %s", len(frame), args.output)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from i2moe.data.registry import list_datasets

    for entry in list_datasets():
        sys.stdout.write(_describe(entry) + "\n")
    return 0


def _describe(entry: Any) -> str:
    if dataclasses.is_dataclass(entry):
        fields = dataclasses.asdict(entry)
        name = fields.pop("name", "")
        fields.pop("loader", None)
        details = "; ".join(f"{k}: {v}" for k, v in fields.items() if k != "citation")
        return f"{name}\n    {details}"
    return str(entry)


def cmd_fusions(args: argparse.Namespace) -> int:
    from i2moe.fusion import FUSIONS

    sys.stdout.write("\n".join(sorted(FUSIONS)) + "\n")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i2moe", description="Interpretable multimodal interaction-aware mixture of experts"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train, select on validation, test, write a run folder")
    fit.add_argument("--output", required=True, type=Path, help="run folder to write")
    fit.add_argument("--config", help="YAML run configuration")
    fit.add_argument("--resume", action="store_true", help="continue the run in --output")
    fit.add_argument("--overwrite", action="store_true", help="replace the run in --output")
    _add_fit_arguments(fit)
    fit.set_defaults(handler=cmd_fit)

    test = sub.add_parser("test", help="evaluate a run's best checkpoint")
    test.add_argument("--run", required=True, type=Path)
    test.add_argument("--data", help="evaluate on another dataset with the same modalities")
    test.add_argument("--split", default="test", choices=["train", "val", "test"])
    test.set_defaults(handler=cmd_test)

    predict = sub.add_parser("predict", help="predictions and expert weights for every sample")
    predict.add_argument("--run", required=True, type=Path)
    predict.add_argument("--data", required=True)
    predict.add_argument("--output", required=True, type=Path, help="CSV file to write")
    predict.set_defaults(handler=cmd_predict)

    datasets = sub.add_parser("datasets", help="list the bundled datasets")
    datasets.set_defaults(handler=cmd_datasets)

    fusions = sub.add_parser("fusions", help="list the fusion backbones")
    fusions.set_defaults(handler=cmd_fusions)

    synth = sub.add_parser("synth", help="generate data with a known interaction")
    synth.add_argument(
        "--interaction", required=True, choices=["uniqueness", "redundancy", "synergy", "mixed"]
    )
    synth.add_argument("--modalities", type=int, default=2)
    synth.add_argument("--samples", type=int, default=3000)
    synth.add_argument("--dim", type=int, default=16)
    synth.add_argument("--tokens", type=int, default=None, help="tokens per modality")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--output", required=True, type=Path)
    synth.set_defaults(handler=cmd_synth)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Other modules add their sub-commands here (explain, bench, reproduce, faithfulness).
EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def _load_extra_commands() -> None:
    import importlib

    for module in (
        "i2moe.interpret.cli",
        "i2moe.bench",
        "i2moe.compare",
        "i2moe.reproduce",
        "i2moe.faithfulness",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is None or not module.startswith(error.name):
                raise  # a real import error inside an existing module


USER_ERRORS: tuple[type[Exception], ...] = (DataError, ConfigError, KeyError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    # Imported before the levels are set: importing Lightning sets its loggers' levels.
    from i2moe.training.files import RunError

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


if __name__ == "__main__":
    # Sub-commands register with the importable module, not with this __main__ copy.
    from i2moe.cli import main as package_main

    sys.exit(package_main())
