"""``i2moe reproduce``: the paper's tables on its datasets, from the shipped configs.

One YAML config per dataset and backbone lives in ``i2moe/configs/paper/<dataset>_<fusion>.yaml``
(docs/method.md section 9's hyperparameters; each file's header says where every number comes
from). A config describes I2MoE with that backbone; the vanilla baseline is the same config with
``model.vanilla: true``. This module turns a paper table into a grid of runs over those configs,
trains every run for every seed, and writes the table as Markdown and CSV next to the paper's
own numbers (docs/method.md section 8: paper Table 1)::

    i2moe reproduce --dataset mosi --data-root data/cmu-mosi --table 1

Tables: 1 = every vanilla backbone and I2MoE-MulT; 2 = I2MoE with each backbone against the
vanilla backbone; 4 = the ablations of I2MoE-MulT (docs/method.md section 6); 5 = the masking
strategies random / mean / zero. Run folders are shared between tables (Table 1's MulT run is
Table 2's), and a finished seed whose configuration is unchanged is reused, not retrained.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from i2moe.config import ConfigError, RunConfig, config_from_dict, config_to_dict, load_config

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parents[1] / "configs" / "paper"
DATASETS: tuple[str, ...] = ("adni", "mimic", "imdb", "mosi", "enrico")
# In the paper's Table 1 order.
BACKBONES: tuple[str, ...] = (
    "ef",
    "lf",
    "lrtf",
    "interpretcc",
    "switchgate",
    "moepp",
    "transformer",
)
TABLES: tuple[int, ...] = (1, 2, 4, 5)
BACKBONE_NAMES = {
    "ef": "EF",
    "lf": "LF",
    "lrtf": "LRTF",
    "interpretcc": "InterpretCC",
    "switchgate": "SwitchGate",
    "moepp": "MoE++",
    "transformer": "MulT",
}
ABLATION_NAMES = {
    "no-interaction": "No-Interaction",
    "latent-contrastive": "Latent-Contrastive",
    "simple-weight": "Simple-Weight",
    "less-forward": "Less-Forward",
    "syn-red-only": "Synergy-Redundancy",
}
MASKINGS: tuple[str, ...] = ("random", "mean", "zero")

# The paper's metric columns per dataset (our metric name, the paper's column name).
DATASET_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "adni": (("accuracy", "accuracy"), ("auroc", "AUROC")),
    "mimic": (("accuracy", "accuracy"), ("auroc", "AUROC")),
    "imdb": (("f1_micro", "micro-F1"), ("f1_macro", "macro-F1")),
    "mosi": (("accuracy", "accuracy"),),
    "enrico": (("accuracy", "accuracy"),),
}

# docs/method.md section 8 (paper Table 1): test %, mean and std over 3 seeds, in the column order
# ADNI acc, ADNI AUROC, MIMIC acc, MIMIC AUROC, IMDB micro-F1, IMDB macro-F1, MOSI acc,
# ENRICO acc.
_TABLE1_COLUMNS = (
    ("adni", "accuracy"),
    ("adni", "auroc"),
    ("mimic", "accuracy"),
    ("mimic", "auroc"),
    ("imdb", "f1_micro"),
    ("imdb", "f1_macro"),
    ("mosi", "accuracy"),
    ("enrico", "accuracy"),
)
_TABLE1_ROWS: dict[str, tuple[tuple[float, float], ...]] = {
    "EF": (
        (52.01, 0.92), (65.69, 1.81), (67.63, 1.66), (67.75, 0.93),
        (56.10, 0.27), (41.12, 1.08), (72.16, 0.66), (42.35, 0.81),
    ),
    "LF": (
        (50.79, 3.11), (68.60, 3.77), (67.11, 1.06), (67.58, 0.88),
        (56.22, 0.03), (45.27, 0.64), (70.51, 1.14), (44.20, 1.64),
    ),
    "LRTF": (
        (50.79, 2.20), (69.37, 3.13), (70.17, 1.79), (65.45, 6.31),
        (56.22, 0.03), (45.27, 0.64), (76.63, 0.18), (46.12, 1.06),
    ),
    "InterpretCC": (
        (54.53, 3.43), (72.18, 1.70), (72.34, 4.48), (61.93, 2.53),
        (58.00, 0.23), (48.68, 0.11), (75.85, 0.07), (47.60, 1.56),
    ),
    "SwitchGate": (
        (62.28, 1.17), (79.70, 0.20), (70.98, 0.83), (68.26, 3.25),
        (55.92, 0.07), (47.33, 0.47), (72.35, 0.27), (43.95, 2.83),
    ),
    "MoE++": (
        (58.08, 2.52), (75.18, 1.95), (72.51, 2.09), (68.50, 2.13),
        (58.15, 0.32), (50.49, 0.25), (70.85, 0.83), (47.83, 1.86),
    ),
    "MulT": (
        (59.57, 0.66), (77.21, 0.51), (72.42, 2.53), (68.79, 3.34),
        (59.68, 0.19), (51.41, 0.04), (68.80, 0.78), (47.37, 1.82),
    ),
    "I2MoE-MulT": (
        (65.08, 1.52), (81.09, 0.02), (69.78, 0.91), (68.81, 0.99),
        (61.00, 0.44), (52.38, 0.48), (71.91, 2.20), (48.22, 1.61),
    ),
}  # fmt: skip
#: method -> dataset -> metric -> (mean %, std %): the paper's Table 1.
PAPER_TABLE1: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    method: {
        dataset: {
            metric: values[i] for i, (d, metric) in enumerate(_TABLE1_COLUMNS) if d == dataset
        }
        for dataset in DATASETS
    }
    for method, values in _TABLE1_ROWS.items()
}

TABLE_TITLES = {
    1: "Table 1: vanilla fusion backbones and I2MoE-MulT",
    2: "Table 2: I2MoE with each backbone against the vanilla backbone",
    4: "Table 4: ablations of I2MoE",
    5: "Table 5: masking strategies of I2MoE's perturbed passes",
}
PAPER_NOTES = {
    1: "Paper column: docs/method.md section 8 (the paper's Table 1, test, 3 seeds).",
    2: (
        "The paper's Table 2 numbers are not transcribed in docs/method.md (section 8); the paper "
        "column shows the paper's Table 1 figure where the same model is in it (the vanilla "
        "backbones, I2MoE-MulT), n/a otherwise."
    ),
    4: (
        "The paper's Table 4 numbers are not transcribed in docs/method.md (section 8); the paper "
        "column shows the paper's Table 1 figure for the full I2MoE-MulT, n/a otherwise."
    ),
    5: (
        "The paper's Table 5 numbers are not transcribed in docs/method.md (section 8); the paper "
        "column shows the paper's Table 1 figure for I2MoE-MulT with random masking (its "
        "default), n/a otherwise."
    ),
}


class ReproduceError(ValueError):
    """A reproduce request cannot be run as asked (bad table, override or output folder)."""


@dataclasses.dataclass(frozen=True)
class PaperRun:
    """One row of a paper table: which config, and what the row changes in it.

    Attributes:
        method: the row's name in the table ("MulT", "I2MoE-MulT", "No-Interaction", ...).
        fusion: backbone; selects ``<dataset>_<fusion>.yaml``.
        vanilla: the backbone alone.
        ablation: ``ModelConfig.ablation``.
        masking: ``ModelConfig.masking``.
    """

    method: str
    fusion: str
    vanilla: bool = False
    ablation: str = "none"
    masking: str = "random"

    @property
    def folder(self) -> str:
        """Run folder name, shared by every table that has this run."""
        if self.vanilla:
            return f"{self.fusion}-vanilla"
        name = f"{self.fusion}-i2moe"
        if self.ablation != "none":
            name += f"-{self.ablation}"
        if self.masking != "random":
            name += f"-masking-{self.masking}"
        return name

    @property
    def paper_method(self) -> str | None:
        """The paper's Table 1 row that is this same model, if any."""
        if self.ablation != "none" or self.masking != "random":
            return None
        if self.vanilla:
            return BACKBONE_NAMES[self.fusion]
        return "I2MoE-MulT" if self.fusion == "transformer" else None


def i2moe_name(fusion: str) -> str:
    """``I2MoE-MulT``, ``I2MoE-EF``, ...: I2MoE with that backbone."""
    return f"I2MoE-{BACKBONE_NAMES[fusion]}"


def paper_grid(table: int, fusions: Sequence[str] | None = None) -> list[PaperRun]:
    """The runs of a paper table.

    Args:
        table: 1, 2, 4 or 5.
        fusions: backbones to include (default: all for Tables 1 and 2, the transformer for
            Tables 4 and 5, whose rows are variants of I2MoE with the given backbones).
    """
    if table not in TABLES:
        raise ReproduceError(f"--table {table}: expected one of {', '.join(map(str, TABLES))}")
    default = BACKBONES if table in (1, 2) else ("transformer",)
    chosen = list(fusions) if fusions else list(default)
    unknown = [f for f in chosen if f not in BACKBONES]
    if unknown:
        raise ReproduceError(
            f"--fusion {' '.join(unknown)}: unknown backbone; "
            f"expected some of {', '.join(BACKBONES)}"
        )
    chosen = [f for f in BACKBONES if f in chosen]  # the paper's row order
    if table == 1:
        runs = [PaperRun(BACKBONE_NAMES[f], f, vanilla=True) for f in chosen]
        if "transformer" in chosen:
            runs.append(PaperRun("I2MoE-MulT", "transformer"))
        return runs
    if table == 2:
        return [
            run
            for f in chosen
            for run in (PaperRun(BACKBONE_NAMES[f], f, vanilla=True), PaperRun(i2moe_name(f), f))
        ]
    runs = []
    for f in chosen:
        suffix = "" if len(chosen) == 1 else f" ({BACKBONE_NAMES[f]})"
        if table == 4:
            runs.append(PaperRun(f"{i2moe_name(f)} (full)", f))
            runs += [
                PaperRun(f"{label}{suffix}", f, ablation=ablation)
                for ablation, label in ABLATION_NAMES.items()
            ]
        else:
            runs += [
                PaperRun(f"{masking} masking{suffix}", f, masking=masking) for masking in MASKINGS
            ]
    return runs


def config_path(dataset: str, fusion: str) -> Path:
    """The shipped config ``configs/paper/<dataset>_<fusion>.yaml``."""
    return CONFIG_DIR / f"{dataset}_{fusion}.yaml"


def shipped_configs() -> list[Path]:
    """Every shipped paper config, sorted."""
    return sorted(CONFIG_DIR.glob("*.yaml"))


def parse_overrides(pairs: Sequence[str]) -> list[tuple[list[str], Any]]:
    """``section.key[.key...]=VALUE`` strings -> (path, YAML-parsed value)."""
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
    values: dict[str, Any], overrides: Sequence[tuple[list[str], Any]], source: str
) -> dict[str, Any]:
    """Set each (path, value) in a config dict, creating option mappings on the way."""
    for path, value in overrides:
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
    overrides: Sequence[tuple[list[str], Any]] = (),
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
    apply_overrides(values, overrides, str(path))
    flags = {
        ("train", "seeds"): list(seeds) if seeds else None,
        ("train", "epochs"): epochs,
        ("train", "batch_size"): batch_size,
        ("model", "dim"): dim,
    }
    for (section, key), value in flags.items():
        if value is not None:
            values[section][key] = value
    values["model"].update(vanilla=run.vanilla, ablation=run.ablation, masking=run.masking)
    return config_from_dict(values, str(path))


def _bundle_key(config: RunConfig) -> str:
    options = {k: v for k, v in config.data.options.items() if k != "sequence_chunks"}
    return json.dumps([config.data.name, config.data.task, options], sort_keys=True, default=str)


def reproduce(
    dataset: str,
    data_root: str | Path,
    *,
    table: int = 1,
    fusions: Sequence[str] | None = None,
    output: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    dim: int | None = None,
    batch_size: int | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    interpret: bool = False,
) -> list[dict[str, Any]]:
    """Train every run of a paper table on one dataset and write the table.

    Args:
        dataset: ``adni``, ``mimic``, ``imdb``, ``mosi`` or ``enrico``.
        data_root: the dataset's folder (docs/paper-datasets.md).
        table: 1, 2, 4 or 5 (see :func:`paper_grid`).
        fusions: backbones to include (default: see :func:`paper_grid`).
        output: folder for ``table<k>.md`` / ``table<k>.csv`` and the run folders
            ``<run>/seed_<s>/`` (default ``runs/reproduce/<dataset>``).
        seeds / epochs / dim / batch_size: override every config (smoke runs).
        overrides: ``SECTION.KEY=VALUE`` settings applied to every config (``--set``).
        overwrite: replace run folders whose configuration differs instead of refusing.
        interpret: also write each I2MoE run's interpretation of the test split.

    Returns:
        One record per table row and metric (the rows of ``table<k>.csv``).
    """
    from i2moe.data.load import as_sequences, load_paper_data
    from i2moe.runs.grid import GridRun, fit_grid
    from i2moe.training.distributed import is_primary_process

    if dataset not in DATASETS:
        raise ReproduceError(f"--dataset {dataset}: expected one of {', '.join(DATASETS)}")
    runs = paper_grid(table, fusions)
    parsed = parse_overrides(overrides)
    output = Path(output) if output is not None else Path("runs") / "reproduce" / dataset
    configs = {
        run: build_run_config(
            dataset,
            run,
            data_root,
            overrides=parsed,
            seeds=seeds,
            epochs=epochs,
            dim=dim,
            batch_size=batch_size,
        )
        for run in runs
    }
    bundles: dict[str, Any] = {}

    def data(grid_run: GridRun, seed: int) -> Any:
        # The paper datasets have fixed splits: one read per data configuration, any seed.
        config = grid_run.config
        key = _bundle_key(config)
        if key not in bundles:
            options = {k: v for k, v in config.data.options.items() if k != "sequence_chunks"}
            bundle = load_paper_data(config.data.name, task=config.data.task, **options)
            chunks = config.data.options.get("sequence_chunks")
            bundles[key] = as_sequences(bundle, chunks) if chunks else bundle
        return bundles[key]

    grid = [GridRun(run.folder, config) for run, config in configs.items()]
    by_folder = fit_grid(grid, output, data, overwrite=overwrite, interpret=interpret)
    results = {run: by_folder[run.folder].per_seed for run in configs}
    records = table_records(dataset, table, results)
    base = next(iter(configs.values()))
    if is_primary_process():
        write_table(records, output, dataset, table, base, epochs_overridden=epochs is not None)
    return records


def table_records(
    dataset: str, table: int, results: Mapping[PaperRun, Mapping[int, Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """Per row and paper metric: mean and std (population, as the authors) over seeds, in %."""
    import numpy as np

    records = []
    for run, per_seed in results.items():
        for metric, label in DATASET_METRICS[dataset]:
            values = np.array([100.0 * m["test"][metric] for m in per_seed.values()])
            paper = PAPER_TABLE1.get(run.paper_method or "", {}).get(dataset, {}).get(metric)
            records.append(
                {
                    "table": table,
                    "dataset": dataset,
                    "method": run.method,
                    "run": run.folder,
                    "fusion": run.fusion,
                    "vanilla": run.vanilla,
                    "ablation": run.ablation,
                    "masking": run.masking,
                    "metric": label,
                    "mean_pct": float(values.mean()),
                    "std_pct": float(values.std(ddof=0)),
                    "seeds": " ".join(str(s) for s in per_seed),
                    "paper_mean_pct": paper[0] if paper else None,
                    "paper_std_pct": paper[1] if paper else None,
                }
            )
    return records


def write_table(
    records: Sequence[dict[str, Any]],
    output: Path,
    dataset: str,
    table: int,
    base: RunConfig,
    *,
    epochs_overridden: bool = False,
) -> Path:
    """``table<k>.csv`` (one line per row and metric) and ``table<k>.md`` (paper style)."""
    import pandas as pd

    frame = pd.DataFrame(records)
    frame.to_csv(output / f"table{table}.csv", index=False)
    labels = [label for _, label in DATASET_METRICS[dataset]]
    header = ["method"] + [name for label in labels for name in (label, f"{label} (paper)")]
    lines = [
        f"# {TABLE_TITLES[table]}: {dataset}",
        "",
        f"Test split, %, mean ± std over seeds {', '.join(map(str, base.train.seeds))} "
        "(population std, as the authors).",
        PAPER_NOTES[table],
    ]
    if epochs_overridden:
        lines.append(
            f"Smoke run: every config's epochs overridden to {base.train.epochs}; not "
            "comparable with the paper."
        )
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in dict.fromkeys(r["method"] for r in records):
        cells = [method]
        for label in labels:
            row = next(r for r in records if r["method"] == method and r["metric"] == label)
            cells.append(f"{row['mean_pct']:.2f} ± {row['std_pct']:.2f}")
            paper = row["paper_mean_pct"]
            cells.append("n/a" if paper is None else f"{paper:.2f} ± {row['paper_std_pct']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    path = output / f"table{table}.md"
    path.write_text("\n".join(lines) + "\n")
    return path
