"""The options every training command shares (``fit``, ``compare``) and how they resolve into
a run configuration: defaults, then the YAML file, then the flags given."""

from __future__ import annotations

import argparse
from typing import Any

from i2moe.config import ABLATIONS, RunConfig, config_from_dict, config_to_dict, load_config
from i2moe.execution import EXECUTIONS
from i2moe.perturbation import STRATEGIES
from i2moe.spec import TASKS

# flag destination -> (section, key) in the run config
FIT_FLAGS: dict[str, tuple[str, str]] = {
    "data": ("data", "name"),
    "task": ("data", "task"),
    "fusion": ("model", "fusion"),
    "vanilla": ("model", "vanilla"),
    "allow_one_modality": ("model", "allow_one_modality"),
    "dim": ("model", "dim"),
    "num_patches": ("model", "num_patches"),
    "masking": ("model", "masking"),
    "ablation": ("model", "ablation"),
    "perturb_k": ("model", "perturb_k"),
    "interaction_weight": ("loss", "interaction_weight"),
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
    "logger": ("train", "loggers"),
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


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="bundled dataset name (see `i2moe datasets`) or a file")
    data.add_argument("--task", choices=TASKS)
    data.add_argument(
        "--columns",
        metavar="FILE.yaml",
        help="for a CSV/Parquet table: YAML mapping of columns to target/split/modalities",
    )
    data.add_argument(
        "--clean-nonfinite", action="store_true", help="replace NaN/inf features with 0"
    )
    data.add_argument(
        "--malformed-as-missing",
        action="store_true",
        help="a table's numeric column with a few cells that are not numbers: read those "
        "cells as missing values (refused otherwise)",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--fusion", help="fusion backbone (see `i2moe fusions`)")
    model.add_argument(
        "--vanilla", action="store_true", default=None, help="the backbone alone, no experts"
    )
    model.add_argument(
        "--allow-one-modality",
        action="store_true",
        default=None,
        help="train I2MoE on data with a single modality (refused otherwise: use --vanilla)",
    )
    model.add_argument("--dim", type=int, help="embedding width D")
    model.add_argument("--num-patches", type=int, help="tokens per vector modality")
    model.add_argument("--masking", choices=STRATEGIES)
    model.add_argument("--ablation", choices=ABLATIONS)
    model.add_argument("--perturb-k", type=int, help="perturb k modalities per step")
    model.add_argument("--interaction-weight", type=float, help="lambda_int")
    model.add_argument("--temperature", type=float, help="reweighting softmax temperature")
    model.add_argument(
        "--evidence-weight",
        type=float,
        help="train the reweighter on interaction evidence (0: the paper; docs/faithfulness.md)",
    )
    model.add_argument("--execution", choices=EXECUTIONS, help="expert execution path")
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
    train.add_argument(
        "--logger",
        nargs="+",
        metavar="NAME",
        help="csv, tensorboard (default both), wandb (offline), mlflow (a file store in logs/)",
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
    if getattr(args, "malformed_as_missing", False):
        values["data"]["options"]["malformed_as_missing"] = True
    return config_from_dict(values, args.config or "command line")
