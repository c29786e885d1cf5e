"""One entry point from a DATA argument to a DataBundle."""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch.utils.data import Dataset

from i2moe.data.base import SPLITS, ArrayDataset, DataBundle, DataError, ModalitySpec
from i2moe.data.scaling import Statistics
from i2moe.data.validate import PREDICTION_SPLIT

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
PAPER_PREFIX = "paper:"
# DataConfig.task -> read_mosi's own ``task`` option (the other paper datasets have one task).
_MOSI_TASKS = {"classification": "binary", "regression": "regression"}


def load_data(
    name: str,
    *,
    task: str | None = None,
    seed: int = 0,
    statistics: Statistics | None = None,
    for_prediction: bool = False,
    **options: Any,
) -> DataBundle:
    """A bundled dataset by name, a ``.npz`` file, a folder of ``.npy`` files, a CSV/Parquet
    table, or a paper dataset.

    Args:
        name: bundled dataset name (``i2moe datasets``), a path, or ``paper:<dataset>`` /
            ``paper:<dataset>:<folder>`` for the I2MoE paper's datasets (see
            :func:`load_paper_data`).
        task: force the task for user files.
        seed: seeds the split where the data has none (the paper datasets keep their
            published splits and ignore it).
        statistics: a trained run's ``{modality: {"mean", "std"}}``: a ``.npz`` file or a
            table scales its modalities with them instead of with its own training
            statistics; the bundled and paper datasets keep their own scaling.
        for_prediction: read the data to be predicted: every row in ``bundle.test``, in file
            order, labels and split optional (see :func:`i2moe.data.npz.read_npz`,
            :func:`i2moe.data.folder.read_folder` and :func:`i2moe.data.table.read_table`);
            a bundled or paper dataset keeps its reading and puts its train, val and test
            rows one after the other (:func:`all_rows_bundle`).
        options: reader options (tables: ``modalities``, ``target``, ``split_column``, or
            ``mapping``: a YAML file with those keys; paper datasets: ``root`` and the
            reader's options).
    """
    if name.startswith(PAPER_PREFIX):
        bundle = load_paper_data(name, task=task, **options)
        return all_rows_bundle(bundle) if for_prediction else bundle
    path = Path(name)
    if path.suffix == ".npz":
        from i2moe.data.npz import read_npz

        return read_npz(
            path,
            task=task,
            seed=seed,
            statistics=statistics,
            for_prediction=for_prediction,
            **options,
        )
    if path.suffix in TABLE_SUFFIXES:
        from i2moe.data.table import read_table, read_table_config

        if "mapping" in options:
            options = {**read_table_config(options.pop("mapping")), **options}
        mapped_task = options.pop("task", None)  # the mapping file may name the task
        task = task or mapped_task
        return read_table(
            path,
            task=task,
            seed=seed,
            statistics=statistics,
            for_prediction=for_prediction,
            **options,
        )
    from i2moe.data.registry import list_datasets, load_dataset

    # A registered name wins over a same-named folder (e.g. a run folder called "birds").
    registered = name in {entry.name for entry in list_datasets()}
    if path.is_dir() and not registered:
        from i2moe.data.folder import read_folder

        return read_folder(
            path,
            task=task,
            seed=seed,
            statistics=statistics,
            for_prediction=for_prediction,
            **options,
        )
    if path.exists() and not registered:
        raise DataError(
            f"{path}: unsupported file type '{path.suffix}'; expected .npz, .csv, .parquet or "
            "a folder of .npy files"
        )
    bundle = load_dataset(name, seed=seed, **options)
    return all_rows_bundle(bundle) if for_prediction else bundle


def all_rows_bundle(bundle: DataBundle) -> DataBundle:
    """The bundle with all its rows in ``test`` (train and val empty), as data read to be
    predicted: in file order where the reader records each split's rows (``meta["rows"]``),
    else its train, val and test rows one after the other.

    ``meta["file_split"]`` holds each row's split code, ``meta["labelled"]`` is True, and
    per-split records of the meta (``rows``, ``interaction``, ...) are joined the same way.
    """
    splits = [bundle.split(split) for split in SPLITS]
    sizes = [len(dataset) for dataset in splits]  # type: ignore[arg-type]
    codes = np.repeat(np.arange(len(SPLITS), dtype=np.int8), sizes)

    def per_split(value: Any) -> bool:  # one record per row of each split
        return isinstance(value, Mapping) and all(
            split in value and np.ndim(value[split]) >= 1 and len(value[split]) == size
            for split, size in zip(SPLITS, sizes, strict=True)
        )

    rows = bundle.meta.get("rows")
    order = np.arange(len(codes))
    if per_split(rows):
        order = np.argsort(np.concatenate([np.asarray(rows[split]) for split in SPLITS]))
    empty = ArrayDataset(
        {spec.name: np.zeros((0, *spec.shape), dtype=np.float32) for spec in bundle.modalities},
        np.zeros((0, bundle.num_outputs) if bundle.task == "multilabel" else 0),
        bundle.task,
    )
    meta = {**bundle.meta, "labelled": True, "file_split": codes[order]}
    for key, value in bundle.meta.items():
        if per_split(value) and set(value) == set(SPLITS):
            joined = np.concatenate([np.asarray(value[split]) for split in SPLITS])[order]
            meta[key] = {split: joined[:0] for split in SPLITS} | {PREDICTION_SPLIT: joined}
    parts = {split: empty for split in SPLITS} | {PREDICTION_SPLIT: JoinedSplits(splits, order)}
    return dataclasses.replace(bundle, **parts, meta=meta)


class JoinedSplits(Dataset):
    """Several splits read as one: item ``i`` is item ``order[i]`` of the splits one after the
    other (default: in their order); ``sample_ids`` follow the same order."""

    def __init__(self, datasets: Sequence[Dataset], order: Sequence[int] | None = None) -> None:
        self.datasets = list(datasets)
        sizes = [len(dataset) for dataset in self.datasets]  # type: ignore[arg-type]
        self.starts = np.cumsum([0, *sizes]).tolist()
        self.order = np.arange(self.starts[-1]) if order is None else np.asarray(order)
        ids = [
            sample_id
            for dataset, size in zip(self.datasets, sizes, strict=True)
            for sample_id in (getattr(dataset, "sample_ids", None) or range(size))
        ]
        self.sample_ids = [ids[position] for position in self.order]

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        position = int(self.order[index])
        part = bisect.bisect_right(self.starts, position) - 1
        item = self.datasets[part][position - self.starts[part]]
        return {**item, "index": index}


def load_paper_data(
    name: str,
    *,
    task: str | None = None,
    root: str | Path | None = None,
    sequence_chunks: int | Mapping[str, int] | None = None,
    **options: Any,
) -> DataBundle:
    """One of the paper's datasets (``i2moe.data.paper.PAPER_DATASETS``) from its folder.

    Args:
        name: ``paper:<dataset>`` with the folder in ``root``, or ``paper:<dataset>:<folder>``.
        task: ``"classification"`` or ``"regression"`` picks CMU-MOSI's task (binary or the raw
            score); for the other datasets it must be the dataset's own task, if given.
        root: the dataset's folder (docs/paper-datasets.md describes each).
        sequence_chunks: feed vector modalities to sequence encoders (MIMIC-IV's LSTMs): each
            vector [F] is zero-padded to a multiple of L and cut into L chunks, giving a
            sequence [L, ceil(F / L)]. An int applies to every vector modality, a mapping
            ``{modality: L}`` to the named ones.
        options: the reader's keyword options (e.g. ``image_form`` for ADNI, ``image_size``
            for ENRICO, ``exclude_neutral`` for CMU-MOSI).

    Raises:
        DataError: unknown dataset, no folder given, a task the dataset does not have, or a
            ``sequence_chunks`` entry that names no vector modality.
    """
    from i2moe.data.paper import PAPER_DATASETS, paper_dataset_name, spellings

    given, _, inline_root = name[len(PAPER_PREFIX) :].partition(":")
    dataset = paper_dataset_name(given)
    if dataset is None:
        raise DataError(
            f"{name}: unknown paper dataset '{given}'; expected paper:<dataset> with one of "
            f"{spellings()}"
        )
    if inline_root and root is not None and Path(inline_root) != Path(root):
        raise DataError(
            f"{name}: names the folder {inline_root} but data option 'root' is {root}; give one"
        )
    folder = inline_root or root
    if folder is None:
        raise DataError(
            f"{name}: no dataset folder; set data option 'root' (data.options.root in a config, "
            f"--data-root for 'i2moe reproduce') or write --data paper:{dataset}:<folder>"
        )
    options = dict(options)
    for key, value in options.items():
        if isinstance(value, list):  # YAML has no tuples (ENRICO's image_size, mean, std)
            options[key] = tuple(value)
    if dataset == "mosi" and task is not None:
        if task not in _MOSI_TASKS:
            raise DataError(
                f"{name}: task '{task}' is not available; expected classification or regression"
            )
        options.setdefault("task", _MOSI_TASKS[task])
    bundle = PAPER_DATASETS[dataset](folder, **options)
    if task is not None and bundle.task != task:
        raise DataError(f"{name}: the dataset's task is {bundle.task}, not '{task}'")
    if sequence_chunks:
        bundle = as_sequences(bundle, sequence_chunks)
    return bundle


def as_sequences(bundle: DataBundle, chunks: int | Mapping[str, int]) -> DataBundle:
    """The bundle with vector modalities cut into sequences of chunks (see load_paper_data)."""
    vectors = [m.name for m in bundle.modalities if m.kind == "vector"]
    wanted = dict.fromkeys(vectors, chunks) if isinstance(chunks, int) else dict(chunks)
    problems = [
        f"'{k}' ({'not a vector modality' if k in bundle.modality_names else 'unknown'})"
        for k in wanted
        if k not in vectors
    ]
    problems += [
        f"'{k}' (length {v}; expected an int >= 1)"
        for k, v in wanted.items()
        if not isinstance(v, int) or isinstance(v, bool) or v < 1
    ]
    if problems:
        raise DataError(
            f"data option sequence_chunks: {', '.join(problems)}; expected an int or "
            f"{{modality: length}} for the vector modalities {', '.join(vectors) or '(none)'}"
        )
    shapes: dict[str, tuple[int, int]] = {}
    specs = []
    for spec in bundle.modalities:
        if spec.name in wanted:
            length = wanted[spec.name]
            shapes[spec.name] = (length, math.ceil(spec.shape[0] / length))
            spec = ModalitySpec(spec.name, shapes[spec.name], "sequence")
        specs.append(spec)
    return dataclasses.replace(
        bundle,
        modalities=specs,
        train=ChunkedDataset(bundle.train, shapes),
        val=ChunkedDataset(bundle.val, shapes),
        test=ChunkedDataset(bundle.test, shapes),
        meta={**bundle.meta, "sequence_chunks": {k: list(v) for k, v in shapes.items()}},
    )


class ChunkedDataset(Dataset):
    """A split whose named vector modalities are returned as [L, C] sequences (zero-padded).

    Attributes of the wrapped split (``sample_ids``, ...) stay reachable.
    """

    def __init__(self, base: Dataset, shapes: Mapping[str, tuple[int, int]]) -> None:
        self.base = base
        self.shapes = dict(shapes)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        inputs = dict(item["inputs"])
        for name, (length, chunk) in self.shapes.items():
            vector = inputs[name].reshape(-1)
            inputs[name] = F.pad(vector, (0, length * chunk - len(vector))).view(length, chunk)
        return {**item, "inputs": inputs}

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "shapes"):  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)


__all__ = [
    "ChunkedDataset",
    "JoinedSplits",
    "all_rows_bundle",
    "as_sequences",
    "load_data",
    "load_paper_data",
]
