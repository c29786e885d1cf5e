"""A finished run folder read back: its model, its configuration and data description, and
new data read and checked as the run read its own."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import Dataset

from i2moe.config import RunConfig
from i2moe.data.base import ArrayDataset, DataBundle
from i2moe.data.load import load_data
from i2moe.runs.checks import check_data_options
from i2moe.runs.files import RunError, read_checkpoint, read_json
from i2moe.spec import SPLITS
from i2moe.training.module import FusionLightningModule, spec_dicts

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

PREDICTION_SUFFIXES = (".csv", ".parquet")
# Rows of a prediction file predicted, attributed and written at a time, and rows per model call.
PREDICTION_BATCH = 4096
MODEL_BATCH = 256


def run_info(bundle: DataBundle) -> dict[str, Any]:
    """What ``run.json`` records of the data: enough to check and prepare other data."""
    statistics = bundle.meta.get("standardization") or {}
    info = {
        "dataset": bundle.name,
        "task": bundle.task,
        "num_outputs": bundle.num_outputs,
        "modalities": spec_dicts(bundle.modalities),
        "class_names": bundle.class_names,
        "split_sizes": {split: len(bundle.split(split)) for split in SPLITS},
        # The training split's feature statistics, so new data is scaled as the run's was.
        "standardization": {
            name: {"mean": np.asarray(s["mean"]).tolist(), "std": np.asarray(s["std"]).tolist()}
            for name, s in statistics.items()
        },
    }
    if "categories" in bundle.meta:  # a table: other tables are encoded as this one was
        info["encoding"] = {
            "categories": {k: list(v) for k, v in bundle.meta["categories"].items()},
            "medians": {k: np.asarray(v).tolist() for k, v in bundle.meta["medians"].items()},
        }
    return info


def run_seed(run: Path) -> int:
    """The seed in a run folder's ``config.yaml`` (0 before it is written)."""
    from i2moe.config import load_config

    path = run / "config.yaml"
    return load_config(path).train.seeds[0] if path.is_file() else 0


def load_run(run: str | Path) -> tuple[FusionLightningModule, RunConfig, dict[str, Any]]:
    """The best checkpoint's model, the run's config and its data description.

    Raises:
        RunError: not a run folder (or one of several seeds), or a damaged file in it.
    """
    from i2moe.config import load_config

    run = Path(run)
    if not run.is_dir():
        raise RunError(f"{run}: no such folder; expected a run folder written by 'i2moe fit'")
    if not (run / "config.yaml").exists():
        seeds = sorted(run.glob("seed_*/config.yaml"))
        if seeds:
            raise RunError(f"{run}: holds several seeds; name one of them, e.g. {seeds[0].parent}")
        raise RunError(
            f"{run}: not a run folder (no config.yaml); expected a folder written by 'i2moe fit'"
        )
    config = load_config(run / "config.yaml")
    info = read_json(run / "run.json", "the run's data description (JSON)")
    metrics_file = run / "metrics.json"
    best = run / "checkpoints" / "best.ckpt"
    if metrics_file.exists():
        metrics = read_json(metrics_file, "the run's metrics (JSON)")
        best = run / str(metrics.get("best_checkpoint", "checkpoints/best.ckpt"))
    if not best.exists():
        best = run / "checkpoints" / "last.ckpt"
    module = load_checkpoint(best)
    return module, config, info


def load_checkpoint(path: str | Path) -> FusionLightningModule:
    """Load a run's checkpoint, with a clear error for a damaged or foreign file."""
    checkpoint = read_checkpoint(path)
    try:
        module = FusionLightningModule.from_checkpoint_state(checkpoint["hyper_parameters"])
        module.load_state_dict(checkpoint["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        first_line = str(message).splitlines()[0] if str(message) else type(error).__name__
        raise RunError(
            f"{path}: its model cannot be rebuilt ({first_line}); expected a checkpoint of this "
            "version of i2moe with its fusions and encoders available"
        ) from error
    module.eval()
    return module


def run_data(
    config: RunConfig,
    info: dict[str, Any],
    data: str | None,
    *,
    for_prediction: bool = False,
    mapping: str | Path | None = None,
) -> DataBundle:
    """The run's own data (same seed, so the same split), or another file checked against it.

    Other data is read as the run read its own: scaled with the run's training statistics, a
    table with the run's column mapping, categories and medians.

    Args:
        config: the run's configuration.
        info: the run's data description (``run.json``).
        data: another dataset or file (default: the run's own data).
        for_prediction: read ``data`` to be predicted (labels and split optional, every row
            in ``bundle.test`` in file order; see :func:`i2moe.data.load.load_data`); labels
            it has are checked against the run's classes.
        mapping: a YAML column mapping for a table ``data`` (default: the run's, when the run
            read a table).

    Raises:
        RunError: the data's modalities, per-sample shapes or labels do not fit the run.
        DataError, ConfigError: the data cannot be read, or a table has no column mapping.
    """
    from i2moe.data.load import TABLE_SUFFIXES, all_rows_bundle

    seed = config.train.seeds[0]
    if for_prediction and (data is None or _is_run_data(config, data)) and mapping is None:
        # The run's own data, read exactly as the run read it (a missing modality's noise is
        # keyed by the sample's inputs bit for bit), its rows in file order, its split kept.
        return all_rows_bundle(run_data(config, info, None))
    options: dict[str, Any] = dict(config.data.options) if data is None else {}
    is_table = data is not None and Path(data).suffix in TABLE_SUFFIXES
    if is_table and mapping is not None:
        options = {"mapping": str(mapping)}
    elif is_table and Path(config.data.name).suffix in TABLE_SUFFIXES:
        options = dict(config.data.options)  # another table of the run's form: the same mapping
    elif (
        data is not None and data.startswith("paper:") and "sequence_chunks" in config.data.options
    ):
        # The same paper dataset from another folder: feed its vectors as the run did.
        options = {"sequence_chunks": config.data.options["sequence_chunks"]}
    source = data or config.data.name
    check_data_options(source, options)
    if is_table and "encoding" in info:
        options |= {
            "categories": info["encoding"]["categories"],
            "medians": info["encoding"]["medians"],
        }
    # Other data is scaled with the run's training statistics, as the run's own data was.
    statistics = info.get("standardization") if data is not None else None
    bundle = load_data(
        source,
        task=info["task"],
        seed=seed,
        statistics=statistics,
        for_prediction=for_prediction,
        **options,
    )
    expected = [(m["name"], list(m["shape"])) for m in info["modalities"]]
    found = [(m.name, list(m.shape)) for m in bundle.modalities]
    if found != expected:
        raise RunError(
            f"{source}: has the modalities {found}; expected the run's {expected} (names and "
            f"per-sample shapes): {_first_difference(bundle, expected)}"
        )
    if for_prediction and bundle.meta.get("labelled", True):
        _check_labels(bundle, info, source)
    return bundle


def _is_run_data(config: RunConfig, data: str) -> bool:
    """Whether ``data`` names the data the run was trained on."""
    if data == config.data.name:
        return True
    given, own = Path(data), Path(config.data.name)
    return given.is_file() and own.is_file() and given.resolve() == own.resolve()


def _modality_field(bundle: DataBundle, name: str) -> str:
    """How a modality of ``bundle`` is named in a message: its array, or its table columns."""
    columns = bundle.meta.get("columns", {}).get(name)
    if columns is None:
        return f"array '{name}'"
    shown = ", ".join(columns[:5]) + (", ..." if len(columns) > 5 else "")
    return f"modality '{name}' (columns {shown})"


def _first_difference(bundle: DataBundle, expected: list[tuple[str, list[int]]]) -> str:
    wanted = dict(expected)
    for spec in bundle.modalities:
        if spec.name not in wanted:
            return f"{_modality_field(bundle, spec.name)} is not a modality of the run"
        if list(spec.shape) != wanted[spec.name]:
            return (
                f"{_modality_field(bundle, spec.name)} has the per-sample shape "
                f"{list(spec.shape)}; the run's is {wanted[spec.name]}"
            )
    missing = [name for name in wanted if name not in bundle.modality_names]
    return f"the run's modality '{missing[0]}' is missing" if missing else "another order"


def _check_labels(bundle: DataBundle, info: dict[str, Any], source: str) -> None:
    """Labels carried along with data to predict must be labels of the run's outputs."""
    num_outputs = int(info["num_outputs"])
    if bundle.task == "multilabel" and bundle.num_outputs != num_outputs:
        raise RunError(
            f"{source}: the labels have {bundle.num_outputs} columns; expected the run's "
            f"{num_outputs} labels"
        )
    if bundle.task != "classification":
        return
    run_names = info.get("class_names")
    if bundle.class_names is not None:  # text labels: compared by name
        unknown = sorted(set(bundle.class_names) - set(run_names or bundle.class_names))
        if unknown:
            log.warning(
                "%s: the labels %s are not among the run's classes %s", source, unknown, run_names
            )
    elif bundle.num_outputs > num_outputs:
        raise RunError(
            f"{source}: the labels hold the class id {bundle.num_outputs - 1}; expected ids "
            f"0..{num_outputs - 1}, the run's {num_outputs} classes"
        )


REFERENCE_FILE = "reference.npz"


def write_reference_rows(folder: Path, dataset: ArrayDataset) -> Path:
    """Save the training rows the attribution's probes are fitted on (``reference.npz``), for a
    run whose data lives nowhere else (an estimator trained in memory)."""
    path = folder / REFERENCE_FILE
    np.savez(
        path,
        targets=dataset.targets.numpy(),
        observed=dataset.observed.numpy(),
        **{f"modality_{name}": values.numpy() for name, values in dataset.arrays.items()},
    )
    return path


def reference_rows(
    run: str | Path, config: RunConfig, info: dict[str, Any], method: str | None
) -> Dataset | None:
    """The rows the run's attribution fits its probes on: ``reference.npz`` when the folder has
    one, else the run's training split; None (logged) where neither can be read."""
    from i2moe.config import ConfigError
    from i2moe.spec import DataError

    saved = Path(run) / REFERENCE_FILE
    if saved.is_file():
        names = [m["name"] for m in info["modalities"]]
        with np.load(saved) as rows:
            arrays = {name: rows[f"modality_{name}"] for name in names}
            return ArrayDataset(arrays, rows["targets"], info["task"], rows["observed"])
    try:
        return run_data(config, info, None).train
    except (DataError, ConfigError, OSError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        log.warning(
            "%s: the attr_ columns are left out: the attribution method '%s' fits its probes "
            "on the run's training data (%s), which cannot be read (%s); --no-attribution "
            "leaves them out without this warning",
            run,
            method,
            config.data.name,
            first_line,
        )
        return None
