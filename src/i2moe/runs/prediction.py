"""Predictions of a run for every row of a file, with attributions, the paper's weights and the
observed masks, written in batches (``i2moe predict``, ``predictions.csv``)."""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from i2moe.data.base import DataBundle
from i2moe.data.validate import PREDICTION_SPLIT
from i2moe.model import I2MoE
from i2moe.runs.files import write_atomic
from i2moe.runs.loading import load_run, reference_rows, run_data, run_seed
from i2moe.spec import SPLITS
from i2moe.training.module import FusionLightningModule

if TYPE_CHECKING:
    from i2moe.interpret.attribution import Attribution

log = logging.getLogger(__name__)

PREDICTION_SUFFIXES = (".csv", ".parquet")
# Rows of a prediction file predicted, attributed and written at a time, and rows per model call.
PREDICTION_BATCH = 4096
MODEL_BATCH = 256


@torch.no_grad()
def predict_split(
    module: FusionLightningModule, dataset: Dataset, batch_size: int = 256
) -> dict[str, Any]:
    """Predictions, expert weights and outputs for every sample of a split (eval mode)."""
    module.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    parts: dict[str, list[torch.Tensor]] = {"prediction": [], "target": [], "observed": []}
    is_i2moe = isinstance(module.model, I2MoE)
    if is_i2moe:
        parts |= {"weights": [], "expert_outputs": []}
    device = module.device
    for batch in loader:
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        observed = batch["observed"].to(device)
        output = module.model(inputs, None if bool(observed.all()) else observed)
        parts["prediction"].append(output.prediction.cpu())
        parts["target"].append(batch["target"])
        parts["observed"].append(batch["observed"])
        if is_i2moe:
            parts["weights"].append(output.weights.cpu())
            parts["expert_outputs"].append(output.expert_outputs.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


@dataclasses.dataclass
class PredictionRows:
    """What the rows of a prediction file say besides the model: who they are and their labels.

    Attributes:
        sample_ids: one id per row (the ``id`` column).
        class_names: the run's names of its classes (or labels), for ``prediction`` and the
            ``prob_`` / ``pred_`` columns; None: the class ids.
        labelled: the rows carry labels (the ``target`` columns).
        target_names: names of the labels' class ids (the file's own text labels, else the
            run's names); None: the ids.
        file_split: each row's split code in its file (the ``split`` column), or None when
            the file has no split.
        split_positions: each row's position within its file split (the ``sample`` column);
            default: counted from ``file_split``.
    """

    sample_ids: Sequence[Any]
    class_names: Sequence[str] | None = None
    labelled: bool = True
    target_names: Sequence[str] | None = None
    file_split: np.ndarray | None = None
    split_positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.file_split is not None and self.split_positions is None:
            positions = np.zeros(len(self.file_split), dtype=np.int64)
            for code in range(len(SPLITS)):
                rows = np.flatnonzero(self.file_split == code)
                positions[rows] = np.arange(len(rows))
            self.split_positions = positions

    def part(self, start: int, stop: int) -> PredictionRows:
        """Rows ``start`` to ``stop - 1``, with their positions within the whole file's split."""
        split, positions = self.file_split, self.split_positions
        return dataclasses.replace(
            self,
            sample_ids=self.sample_ids[start:stop],
            file_split=None if split is None else split[start:stop],
            split_positions=None if positions is None else positions[start:stop],
        )


def prediction_frame(
    module: FusionLightningModule,
    result: dict[str, Any],
    rows: PredictionRows,
    *,
    attribution: Attribution | None = None,
) -> pd.DataFrame:
    """One row per sample (``docs/predictions.md``): ``id``; ``split`` and ``sample`` when the
    rows have a file split; the prediction, probabilities and labels; ``attr_<interaction>``
    (``attribution``), ``weight_<expert>`` and ``observed_<modality>``.

    Args:
        module: the run's model.
        result: :func:`predict_split` of the rows.
        rows: the rows' ids, names and split, one per row of ``result``.
        attribution: the rows' attribution by the run's default method, if any.
    """
    task = module.task
    prediction = result["prediction"].float()
    names = list(rows.class_names) if rows.class_names else list(range(prediction.shape[1]))
    frame = pd.DataFrame({"id": [_plain(i) for i in rows.sample_ids]})
    if rows.file_split is not None:
        frame["split"] = [SPLITS[code] for code in rows.file_split]
        frame["sample"] = rows.split_positions
    target = result["target"]
    if task == "classification":
        probabilities = prediction.softmax(-1).numpy()
        frame["prediction"] = [names[c] for c in probabilities.argmax(-1)]
        for c, name in enumerate(names):
            frame[f"prob_{name}"] = probabilities[:, c]
        if rows.labelled:
            ids = target.reshape(-1).numpy()
            frame["target"] = [rows.target_names[i] for i in ids] if rows.target_names else ids
    elif task == "multilabel":
        probabilities = prediction.sigmoid().numpy()
        for c, name in enumerate(names):
            frame[f"prob_{name}"] = probabilities[:, c]
            frame[f"pred_{name}"] = (probabilities[:, c] > 0.5).astype(int)
        if rows.labelled:
            for c, name in enumerate(names):
                frame[f"target_{name}"] = target[:, c].numpy().astype(int)
    else:
        frame["prediction"] = prediction[:, 0].numpy()
        if rows.labelled:
            frame["target"] = target.reshape(-1).numpy()
    if attribution is not None:
        for index, name in enumerate(attribution.names):
            frame[f"attr_{name}"] = attribution.scores[:, index]
    if "weights" in result:
        for e, name in enumerate(module.model.expert_names):
            frame[f"weight_{name}"] = result["weights"][:, e].numpy()
    for m, name in enumerate(module.model.modality_names):
        frame[f"observed_{name}"] = result["observed"][:, m].numpy()
    return frame


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def attribution_method(module: FusionLightningModule) -> str | None:
    """The run's default attribution method (``i2moe.interpret.attribution.default_method``),
    or None for a vanilla model (no experts)."""
    if not isinstance(module.model, I2MoE):
        return None
    from i2moe.interpret.attribution import default_method

    return default_method(module.model)


def needs_reference(method: str | None) -> bool:
    """Whether ``method`` fits something on the run's training split (the rule's probes)."""
    return method is not None and method.startswith("rule")


def prediction_frames(
    module: FusionLightningModule,
    dataset: Dataset,
    rows: PredictionRows,
    *,
    method: str | None = None,
    reference: Dataset | None = None,
    seed: int = 0,
    batch_size: int = PREDICTION_BATCH,
) -> Iterator[pd.DataFrame]:
    """:func:`prediction_frame` of ``dataset``, ``batch_size`` rows at a time, in its order.

    Args:
        module: the run's model.
        dataset: the rows to predict.
        rows: their ids, names and split.
        method: the attribution method of the ``attr_`` columns (None: no such columns).
        reference: the split the method fits on (the run's training split), for the rule.
        seed: seed of the attribution (the run's, as in its interpretation).
        batch_size: rows per attribution and frame (the model runs on at most
            :data:`MODEL_BATCH` of them at a time).

    Raises:
        ValueError: ``batch_size`` below 1, or a method that needs a reference without one.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size}: expected a whole number of rows >= 1")
    if needs_reference(method) and reference is None:
        raise ValueError(f"attribution method {method!r} needs the run's training split")
    total = len(dataset)  # type: ignore[arg-type]
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        chunk = Subset(dataset, range(start, stop))
        result = predict_split(module, chunk, batch_size=min(batch_size, MODEL_BATCH))
        attribution = None
        if method is not None:
            from i2moe.interpret.attribution import attribute

            scores = attribute(module.model, chunk, [method], reference=reference, seed=seed)
            attribution = scores[method]
        frame = prediction_frame(module, result, rows.part(start, stop), attribution=attribution)
        frame.index = pd.RangeIndex(start, stop)
        yield frame


def check_prediction_output(output: Path, data: str | None = None) -> None:
    """Refuse an output of an unsupported type, a folder, or the data file itself.

    Raises:
        ValueError: naming the output and the expected form.
    """
    if output.suffix.lower() not in PREDICTION_SUFFIXES:
        raise ValueError(
            f"{output}: unsupported output type '{output.suffix}'; expected a file ending in "
            f"{' or '.join(PREDICTION_SUFFIXES)}"
        )
    if output.is_dir():
        raise ValueError(f"{output}: is a folder; expected a file name for the predictions")
    if data is not None and Path(data).exists() and output.resolve() == Path(data).resolve():
        raise ValueError(
            f"{output}: is the data file being predicted; expected another file for the predictions"
        )


def write_prediction_rows(frames: Iterable[pd.DataFrame], output: Path) -> int:
    """Write the frames one after the other to ``output`` (``.csv``: appended; ``.parquet``:
    one row group each) through a temporary file beside it, moved into place at the end: an
    existing file is replaced only by a complete one, and a failure leaves it as it was.

    Returns:
        The number of rows written.
    """
    check_prediction_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    count = 0
    try:
        if output.suffix.lower() == ".csv":
            with open(tmp, "w", encoding="utf-8", newline="") as file:
                for frame in frames:
                    frame.to_csv(file, header=count == 0, index=False)
                    count += len(frame)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            try:
                for frame in frames:
                    if writer is None:
                        schema = pa.Schema.from_pandas(frame, preserve_index=False)
                        writer = pq.ParquetWriter(tmp, schema)
                    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                    writer.write_table(table)
                    count += len(frame)
            finally:
                if writer is not None:
                    writer.close()
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return count


def write_predictions(
    module: FusionLightningModule,
    bundle: DataBundle,
    split: str,
    output: Path,
    *,
    attribution: bool = True,
    seed: int | None = None,
) -> None:
    """``predictions.csv`` of a split (the columns of ``i2moe predict``, with ``split`` and
    ``sample``, its position in the split) and, for an I2MoE, ``interpretation/weights.csv``.

    Args:
        module: the trained model.
        bundle: the run's data; its training split is the attribution's reference.
        split: the split to predict.
        output: the run folder.
        attribution: write the ``attr_`` columns (the run's default attribution method).
        seed: seed of the attribution; default the run's (``output/config.yaml``), as in its
            interpretation.
    """
    if seed is None:
        seed = run_seed(output)
    dataset = bundle.split(split)
    rows = PredictionRows(
        sample_ids=_sample_ids(dataset),
        class_names=bundle.class_names,
        target_names=bundle.class_names,
        file_split=np.full(len(dataset), SPLITS.index(split), dtype=np.int8),  # type: ignore[arg-type]
    )
    method = attribution_method(module) if attribution else None
    frames = prediction_frames(
        module, dataset, rows, method=method, reference=bundle.train, seed=seed
    )
    frame = pd.concat(list(frames))
    write_prediction_rows([frame], output / "predictions.csv")
    weight_columns = [f"weight_{name}" for name in getattr(module.model, "expert_names", [])]
    if weight_columns:
        weights = frame[["sample", *weight_columns]].rename(
            columns=lambda column: column.removeprefix("weight_")
        )
        write_atomic(output / "interpretation" / "weights.csv", weights.to_csv(index=False))


def _sample_ids(dataset: Dataset) -> list[Any]:
    """The dataset's ``sample_ids`` when it has one per row, else the row positions."""
    ids = getattr(dataset, "sample_ids", None)
    size = len(dataset)  # type: ignore[arg-type]
    return list(ids) if ids is not None and len(ids) == size else list(range(size))


def predict_run(
    run: str | Path,
    *,
    data: str,
    output: str | Path,
    batch_size: int = PREDICTION_BATCH,
    attribution: bool = True,
    mapping: str | Path | None = None,
    reference: Dataset | None = None,
) -> int:
    """Predict every row of ``data`` once, in file order, into a CSV or Parquet file.

    The columns are described in ``docs/predictions.md``. The data may lack labels and a
    split; labels it has are carried into ``target`` columns (``i2moe test`` scores).

    Args:
        run: the run folder (one seed).
        data: a ``.npz`` file, a CSV/Parquet table (read with the run's column mapping), or a
            bundled or paper dataset (its train, val and test rows one after the other).
        output: the file to write, ``.csv`` or ``.parquet``; an existing one is replaced
            only when the new one is complete.
        batch_size: rows predicted, attributed and written at a time.
        attribution: write the ``attr_`` columns (the run's default attribution method). The
            rule fits its probes on the run's training data: where that cannot be read (moved,
            or a saved estimator's in-memory data) and no ``reference`` is given, the columns
            are left out with a logged warning.
        mapping: a YAML column mapping for a table (default: the run's).
        reference: the split the rule's probes are fitted on (default: the run's training
            split, read from the run's data).

    Returns:
        The number of rows written.

    Raises:
        RunError: not a run folder, or data that does not fit the run.
        DataError, ConfigError: the data cannot be read.
        ValueError: an unsupported output, or ``batch_size`` below 1.
    """
    output = Path(output)
    check_prediction_output(output, data)
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size}: expected a whole number of rows >= 1")
    module, config, info = load_run(run)
    bundle = run_data(config, info, data, for_prediction=True, mapping=mapping)
    method = attribution_method(module) if attribution else None
    if needs_reference(method) and reference is None:
        reference = reference_rows(run, config, info, method)
        method = method if reference is not None else None
    dataset = bundle.split(PREDICTION_SPLIT)
    rows = PredictionRows(
        sample_ids=_sample_ids(dataset),
        class_names=info.get("class_names"),
        labelled=bool(bundle.meta.get("labelled", True)),
        target_names=bundle.class_names or info.get("class_names"),
        file_split=bundle.meta.get("file_split"),
    )
    frames = prediction_frames(
        module,
        dataset,
        rows,
        method=method,
        reference=reference,
        seed=config.train.seeds[0],
        batch_size=batch_size,
    )
    return write_prediction_rows(frames, output)
