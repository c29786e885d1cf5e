"""The shipped paper configs, and the configuration of one run from them with its overrides.

One YAML config per dataset and backbone lives in ``i2moe/configs/paper/<dataset>_<fusion>.yaml``
(docs/method.md section 9's hyperparameters; each file's header says where every number comes
from). A config describes I2MoE with that backbone; the vanilla baseline is the same config with
``model.vanilla: true``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from i2moe.config import (
    MOVED_KEYS,
    ConfigError,
    RunConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from i2moe.experiments.paper import paper
from i2moe.experiments.reproduce.grid import PaperRun

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parents[2] / "configs" / "paper"
DATASETS: tuple[str, ...] = tuple(paper().metrics)

# A config field's path and its new value, e.g. (["model", "fusion_options", "num_heads"], 2).
Override = tuple[list[str], Any]


def config_path(dataset: str, fusion: str) -> Path:
    """The shipped config ``configs/paper/<dataset>_<fusion>.yaml``."""
    return CONFIG_DIR / f"{dataset}_{fusion}.yaml"


def shipped_configs() -> list[Path]:
    """Every shipped paper config, sorted."""
    return sorted(CONFIG_DIR.glob("*.yaml"))


def parse_overrides(pairs: Sequence[str]) -> list[Override]:
    """``section.key[.key...]=VALUE`` strings (``--set``) -> (path, YAML-parsed value)."""
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        path = key.strip().split(".")
        if not sep or len(path) < 2 or not all(path):
            raise ConfigError(
                f"--set {pair}: expected SECTION.KEY=VALUE, e.g. model.fusion_options.num_heads=2 "
                "or data.options.image_size=[32,16]"
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {pair}: the value is not valid YAML ({error})") from None
        parsed.append((path, value))
    return parsed


def apply_overrides(
    values: dict[str, Any], overrides: Sequence[Override], source: str
) -> dict[str, Any]:
    """Set each (path, value) in a config dict, creating option mappings on the way.

    A key that moved to another section (:data:`i2moe.config.MOVED_KEYS`, such as
    ``model.interaction_weight``) is set under its new name. Which sections and keys exist is
    left to :func:`i2moe.config.config_from_dict`.
    """
    for path, value in overrides:
        moved = MOVED_KEYS.get((path[0], path[1]))
        if moved is not None:
            log.warning("--set %s: %s.%s is now %s.%s", ".".join(path), *path[:2], *moved)
            path = [*moved, *path[2:]]
        node = values
        for depth, key in enumerate(path[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(f"{source}: --set {'.'.join(path)}: {where} is not a mapping")
            node = child
        node[path[-1]] = value
    return values


def build_run_config(
    dataset: str,
    run: PaperRun,
    data_root: str | Path,
    *,
    overrides: Sequence[Override] = (),
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    dim: int | None = None,
    batch_size: int | None = None,
) -> RunConfig:
    """The shipped config of ``run``'s backbone with the row's changes and the overrides.

    Order: the file, then ``overrides`` (``--set``), then the explicit flags, then the row's
    own fields (vanilla, ablation, masking).
    """
    path = config_path(dataset, run.fusion)
    values = config_to_dict(load_config(path))
    values["data"]["options"]["root"] = str(Path(data_root).expanduser().resolve())
    flags: list[Override] = [
        (["train", "seeds"], list(seeds) if seeds else None),
        (["train", "epochs"], epochs),
        (["train", "batch_size"], batch_size),
        (["model", "dim"], dim),
    ]
    row: list[Override] = [
        (["model", "vanilla"], run.vanilla),
        (["model", "ablation"], run.ablation),
        (["model", "masking"], run.masking),
    ]
    given = [(key, value) for key, value in flags if value is not None]
    apply_overrides(values, [*overrides, *given, *row], str(path))
    return config_from_dict(values, str(path))
