"""ADNI (CN / MCI / dementia) in Flex-MoE's preprocessed layout: image, genomic, clinical,
biospecimen.

Layout (relative to the dataset folder)::

    label.csv                                   PTID, DIAGNOSIS (1 CN, 2 MCI, 3 dementia)
    PTID_splits.json                            {"training", "validation", "testing": [PTID]}
    image/ADNI_G.npy                            [scans, grey-matter voxels]
    image/ADNI_subj.txt                         one <PTID>_<date> per scan (line i = row i)
    image/BLSA_SPGR+MPRAGE_averagetemplate_muse_seg_DS222.nii.gz   optional atlas
    genomic/genomic_merged.h5ad                 AnnData, obs index = PTID, X = SNPs
    clinical/clinical_merged_mean.csv           index PTID
    biospecimen/biospecimen_merged_mean.csv     index PTID

A modality is missing for a subject when the subject has no row in its file or its row is all
-2 (the preprocessing's marker).
"""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from i2moe.data.base import DataBundle, DataError, ModalitySpec
from i2moe.data.paper.folder_checks import (
    Problems,
    check_choice,
    first_items,
    import_optional,
    read_split_json,
    require_root,
    stringify_ids,
)
from i2moe.data.paper.lazy_files import ProcessLocalFile
from i2moe.data.paper.preprocessing import (
    MinMaxScaler,
    Standardizer,
    all_value_rows,
    column_modes,
)

logger = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("image", "genomic", "clinical", "biospecimen")
LABELS_FILE = "label.csv"
SPLITS_FILE = "PTID_splits.json"
IMAGE_FILE = "image/ADNI_G.npy"
SUBJECTS_FILE = "image/ADNI_subj.txt"
ATLAS_FILE = "image/BLSA_SPGR+MPRAGE_averagetemplate_muse_seg_DS222.nii.gz"
GENOMIC_FILE = "genomic/genomic_merged.h5ad"
CLINICAL_FILE = "clinical/clinical_merged_mean.csv"
BIOSPECIMEN_FILE = "biospecimen/biospecimen_merged_mean.csv"
GREY_MATTER_LABEL = 150
MISSING_MARKER = -2.0
# Clinical columns recording when cognitive decline / AD began or was diagnosed: they encode
# the diagnosis itself.
LEAK_PREFIXES: tuple[str, ...] = ("PTCOGBEG", "PTADDX", "PTADBEG")
CLASS_NAMES = ["CN", "MCI", "dementia"]
SPLIT_KEYS = {"training": "train", "validation": "val", "testing": "test"}
_CHUNK_ROWS = 64


class AdniDataset(Dataset):
    """One ADNI split: tabular modalities in memory, image rows read from the ``.npy`` file.

    The scan matrix is memory-mapped lazily in each process (never pickled to workers) and
    each item's row is normalised with the training mean/std and, with an atlas, scattered
    into a zero volume.

    Args:
        sample_ids: PTIDs of this split.
        targets: class ids (0 CN, 1 MCI, 2 dementia).
        observed: [n, 4] bool, modality order image, genomic, clinical, biospecimen.
        tabular: name -> [n, F] float32 array (zeros where not observed).
        image_path: the ``ADNI_G.npy`` file.
        image_rows: [n] row of each subject's scan in the file (-1 where missing).
        image_mean: training mean of the voxel values.
        image_std: training std of the voxel values.
        num_voxels: columns of the scan matrix.
        voxel_index: flat positions of the grey-matter voxels in the atlas volume, or None
            for the voxel vector.
        volume_shape: the atlas's (D, H, W), with ``voxel_index``.
    """

    def __init__(
        self,
        *,
        sample_ids: list[str],
        targets: np.ndarray,
        observed: np.ndarray,
        tabular: dict[str, np.ndarray],
        image_path: str | Path,
        image_rows: np.ndarray,
        image_mean: float,
        image_std: float,
        num_voxels: int,
        voxel_index: np.ndarray | None,
        volume_shape: tuple[int, int, int] | None,
    ) -> None:
        self.sample_ids = list(sample_ids)
        self.targets = torch.tensor(np.array(targets, dtype=np.int64))
        self.observed = torch.tensor(np.array(observed, dtype=bool))
        self.tabular = {
            k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in tabular.items()
        }
        self.image_path = str(image_path)
        self.image_rows = np.asarray(image_rows, dtype=np.int64)
        self.image_mean = float(image_mean)
        self.image_std = float(image_std)
        self.num_voxels = int(num_voxels)
        self.voxel_index = voxel_index
        self.volume_shape = volume_shape
        self._scans = ProcessLocalFile(functools.partial(np.load, self.image_path, mmap_mode="r"))

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        inputs = {"image": self._image(index)}
        inputs.update({name: values[index] for name, values in self.tabular.items()})
        return {
            "inputs": inputs,
            "target": self.targets[index],
            "observed": self.observed[index],
            "index": index,
        }

    def _image(self, index: int) -> torch.Tensor:
        row = int(self.image_rows[index])
        if row >= 0:
            raw = np.asarray(self._scans.get()[row], dtype=np.float32)
            voxels = np.nan_to_num((raw - self.image_mean) / self.image_std, nan=0.0)
        if self.voxel_index is None:
            if row < 0:
                return torch.zeros(self.num_voxels, dtype=torch.float32)
            return torch.from_numpy(voxels.astype(np.float32))
        assert self.volume_shape is not None
        volume = np.zeros(int(np.prod(self.volume_shape)), dtype=np.float32)
        if row >= 0:
            # Background stays 0 so that only grey matter carries signal.
            volume[self.voxel_index] = voxels
        return torch.from_numpy(volume.reshape(1, *self.volume_shape))


def read_adni(
    root: str | Path,
    *,
    missing: str = "drop",
    image_form: str = "auto",
    tabular_scaling: str = "standard",
) -> DataBundle:
    """Read Flex-MoE's preprocessed ADNI folder (3 classes: CN, MCI, dementia).

    Each subject's latest scan is used. Every statistic is fitted on the training subjects
    only: the image mean/std, the genomic NaN fill (column mode) and min-max scaling to
    [-1, 1], and the clinical / biospecimen NaN fill (column mean) and z-scoring. Clinical
    columns starting with PTCOGBEG, PTADDX or PTADBEG are dropped (they leak the diagnosis).

    Args:
        root: the dataset folder.
        missing: ``"drop"`` keeps subjects with all four modalities (as the paper);
            ``"keep"`` keeps every subject with at least one, its missing modalities zero
            with ``observed`` False.
        image_form: ``"volume"`` scatters each scan into the atlas grid, (1, 91, 109, 91) for
            the published atlas (needs the atlas file and nibabel); ``"vector"`` keeps the
            grey-matter voxel vector; ``"auto"`` picks volume when the atlas file exists.
        tabular_scaling: ``"standard"`` z-scores clinical and biospecimen features with
            training statistics; ``"none"`` leaves them as in the files (the authors' choice).

    Returns:
        A bundle with modalities ``image`` (volume or vector), ``genomic``, ``clinical``,
        ``biospecimen`` (vectors).

    Raises:
        DataError: a file, column or key is missing, or shapes disagree.
        ImportError: a volume is asked for and nibabel is missing, or neither anndata nor h5py
            is installed for the genomic file.
    """
    check_choice("missing", missing, ("drop", "keep"))
    check_choice("image_form", image_form, ("auto", "volume", "vector"))
    check_choice("tabular_scaling", tabular_scaling, ("standard", "none"))
    root = require_root("ADNI", root)
    problems = Problems("ADNI", root)
    expected = {
        LABELS_FILE: "a CSV with columns PTID, DIAGNOSIS (1, 2 or 3)",
        SPLITS_FILE: 'JSON {"training": [PTID...], "validation": [...], "testing": [...]}',
        IMAGE_FILE: "a numpy [scans, grey-matter voxels] matrix",
        SUBJECTS_FILE: "one <PTID>_<date> line per row of ADNI_G.npy",
        GENOMIC_FILE: "an AnnData file (obs index PTID, X SNPs)",
        CLINICAL_FILE: "a CSV indexed by PTID",
        BIOSPECIMEN_FILE: "a CSV indexed by PTID",
    }
    if image_form == "volume":
        expected[ATLAS_FILE] = f"the MUSE atlas (label {GREY_MATTER_LABEL} = grey matter)"
    problems.require_files(expected)
    problems.raise_if_any()
    use_volume = image_form == "volume" or (image_form == "auto" and (root / ATLAS_FILE).is_file())

    labels = _read_labels(problems)
    splits = read_split_json(problems, SPLITS_FILE)
    scans = _open_scans(root, problems)
    latest_scan = _latest_scans(root, problems, None if scans is None else len(scans))
    voxel_index, volume_shape = None, None
    if use_volume and scans is not None:
        voxel_index, volume_shape = _read_atlas(root, problems, scans.shape[1])
    genomic = _read_genomic(root, problems)
    clinical = _read_table(CLINICAL_FILE, problems, drop_prefixes=LEAK_PREFIXES)
    biospecimen = _read_table(BIOSPECIMEN_FILE, problems)
    problems.raise_if_any()
    assert labels is not None and splits is not None and scans is not None
    assert latest_scan is not None and genomic is not None
    assert clinical is not None and biospecimen is not None

    tables = {"genomic": genomic, "clinical": clinical, "biospecimen": biospecimen}
    subjects_by_split, skipped = _select_subjects(
        splits, labels, latest_scan, scans, tables, missing
    )
    train_ids = subjects_by_split["train"][0]
    train_observed = subjects_by_split["train"][1]

    image_mean, image_std = _image_statistics(
        scans, [latest_scan[s] for s, ok in zip(train_ids, train_observed[:, 0], strict=True) if ok]
    )
    transforms = _fit_tabular(tables, train_ids, train_observed, tabular_scaling)

    datasets: dict[str, AdniDataset] = {}
    for split, (ids, observed) in subjects_by_split.items():
        tabular = {}
        for position, name in enumerate(MODALITIES[1:], start=1):
            table = tables[name]
            values = np.zeros((len(ids), table.shape[1]), dtype=np.float32)
            present = observed[:, position]
            if present.any():
                rows = table.loc[[s for s, ok in zip(ids, present, strict=True) if ok]]
                values[present] = transforms[name](rows.to_numpy(dtype=np.float64))
            tabular[name] = values
        image_rows = np.array(
            [latest_scan[s] if ok else -1 for s, ok in zip(ids, observed[:, 0], strict=True)]
        )
        datasets[split] = AdniDataset(
            sample_ids=ids,
            targets=labels.loc[ids].to_numpy(),
            observed=observed,
            tabular=tabular,
            image_path=root / IMAGE_FILE,
            image_rows=image_rows,
            image_mean=image_mean,
            image_std=image_std,
            num_voxels=int(scans.shape[1]),
            voxel_index=voxel_index,
            volume_shape=volume_shape,
        )

    image_spec = (
        ModalitySpec("image", (1, *volume_shape), "volume")
        if volume_shape is not None
        else ModalitySpec("image", (int(scans.shape[1]),), "vector")
    )
    specs = [image_spec] + [
        ModalitySpec(name, (int(tables[name].shape[1]),), "vector") for name in MODALITIES[1:]
    ]
    dropped_leaks = list(clinical.attrs.get("dropped", []))
    return DataBundle(
        name="adni",
        task="classification",
        modalities=specs,
        num_outputs=3,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=list(CLASS_NAMES),
        meta={
            "source": str(root),
            "missing": missing,
            "image_form": "volume" if volume_shape is not None else "vector",
            "sizes": {s: len(d) for s, d in datasets.items()},
            "skipped_subjects": skipped,
            "dropped_leak_columns": dropped_leaks,
            "image_mean": image_mean,
            "image_std": image_std,
            "scalers_fitted_on": "training subjects only",
            "tabular_scaling": tabular_scaling,
            "genomic_reader": genomic.attrs.get("reader", ""),
        },
    )


# ----------------------------------------------------------------------------- file readers


def _read_labels(problems: Problems) -> pd.Series | None:
    table = problems.read_csv(LABELS_FILE, ("PTID", "DIAGNOSIS"), "(1 CN, 2 MCI, 3 dementia)")
    if table is None:
        return None
    diagnosis = pd.to_numeric(table["DIAGNOSIS"], errors="coerce")
    bad = ~diagnosis.isin([1, 2, 3])
    if bad.any():
        shown = ", ".join(
            f"{p}={d}"
            for p, d in zip(
                table.loc[bad, "PTID"].head(5), table.loc[bad, "DIAGNOSIS"].head(5), strict=True
            )
        )
        problems.add(
            LABELS_FILE,
            f"column DIAGNOSIS has {int(bad.sum())} value(s) outside 1..3 ({shown}); expected "
            "1 (CN), 2 (MCI) or 3 (dementia)",
        )
        return None
    ptids = table["PTID"].astype(str).str.strip()
    if ptids.duplicated().any():
        problems.add(
            LABELS_FILE,
            f"column PTID repeats {', '.join(ptids[ptids.duplicated()].head(5))}; expected one "
            "row per subject",
        )
        return None
    return pd.Series((diagnosis - 1).astype(np.int64).to_numpy(), index=ptids.to_list())


def _open_scans(root: Path, problems: Problems) -> np.ndarray | None:
    try:
        scans = np.load(root / IMAGE_FILE, mmap_mode="r")
    except (OSError, ValueError) as error:
        problems.add(IMAGE_FILE, f"cannot be read as a numpy array ({error})")
        return None
    if scans.ndim != 2 or not np.issubdtype(scans.dtype, np.number):
        problems.add(
            IMAGE_FILE,
            f"has shape {scans.shape} and dtype {scans.dtype}; expected a numeric "
            "[scans, grey-matter voxels] matrix",
        )
        return None
    return scans


def _latest_scans(root: Path, problems: Problems, num_rows: int | None) -> dict[str, int] | None:
    """PTID -> row of its latest scan in ``ADNI_G.npy`` (ties: the later line)."""
    lines = (root / SUBJECTS_FILE).read_text().splitlines()
    lines = [line.strip() for line in lines if line.strip()]
    if num_rows is not None and len(lines) != num_rows:
        problems.add(
            SUBJECTS_FILE,
            f"has {len(lines)} lines but {IMAGE_FILE} has {num_rows} rows; expected one line "
            "per row",
        )
        return None
    parts = [line.split("_") for line in lines]
    short = [i + 1 for i, p in enumerate(parts) if len(p) < 4]
    if short:
        problems.add(
            SUBJECTS_FILE,
            f"line(s) {first_items(short)} do not read <site>_S_<number>_<date>; expected the PTID "
            "as the first three '_'-separated tokens and the scan date as the last",
        )
        return None
    dates = pd.to_datetime([p[-1] for p in parts], errors="coerce", format="mixed")
    bad = [i + 1 for i, d in enumerate(dates) if pd.isna(d)]
    if bad:
        problems.add(
            SUBJECTS_FILE,
            f"line(s) {first_items(bad)} end in something that is not a date; expected "
            "<PTID>_<date>, e.g. 002_S_0295_2006-04-18",
        )
        return None
    latest: dict[str, tuple[Any, int]] = {}
    for row, (tokens, date) in enumerate(zip(parts, dates, strict=True)):
        ptid = "_".join(tokens[:3])
        if ptid not in latest or date >= latest[ptid][0]:
            latest[ptid] = (date, row)
    return {ptid: row for ptid, (_, row) in latest.items()}


def _read_atlas(
    root: Path, problems: Problems, num_voxels: int
) -> tuple[np.ndarray | None, tuple[int, int, int] | None]:
    nibabel = import_optional("nibabel", "scattering ADNI scans into the atlas volume")
    try:
        atlas = np.asarray(nibabel.load(str(root / ATLAS_FILE)).dataobj)
    except Exception as error:  # nibabel raises several unrelated types for unreadable files
        problems.add(ATLAS_FILE, f"cannot be read as NIfTI ({error})")
        return None, None
    if atlas.ndim != 3:
        problems.add(ATLAS_FILE, f"has shape {atlas.shape}; expected a 3-D label volume")
        return None, None
    voxel_index = np.flatnonzero(np.rint(atlas).astype(np.int64).ravel() == GREY_MATTER_LABEL)
    if len(voxel_index) != num_voxels:
        problems.add(
            ATLAS_FILE,
            f"marks {len(voxel_index)} voxels with label {GREY_MATTER_LABEL} but {IMAGE_FILE} "
            f"has {num_voxels} columns; expected one column per grey-matter voxel",
        )
        return None, None
    return voxel_index, tuple(int(s) for s in atlas.shape)  # type: ignore[return-value]


def _read_genomic(root: Path, problems: Problems) -> pd.DataFrame | None:
    """The SNP matrix as a DataFrame indexed by PTID (anndata if installed, else h5py)."""
    path = root / GENOMIC_FILE
    try:
        anndata = importlib.import_module("anndata")
    except ImportError:
        anndata = None
    try:
        if anndata is not None:
            adata = anndata.read_h5ad(path)
            if adata.X is None:
                raise DataError("field 'X' is missing; expected the [obs, SNPs] matrix")
            matrix = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
            ptids = stringify_ids(adata.obs_names)
            reader = "anndata"
        else:
            ptids, matrix = read_h5ad_with_h5py(path)
            reader = "h5py"
    except DataError as error:
        problems.add(GENOMIC_FILE, str(error))
        return None
    except Exception as error:  # h5py and anndata raise many unrelated types on foreign files
        problems.add(GENOMIC_FILE, f"cannot be read as AnnData ({type(error).__name__}: {error})")
        return None
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != len(ptids):
        problems.add(
            GENOMIC_FILE,
            f"X has shape {matrix.shape} for {len(ptids)} obs; expected [obs, SNPs]",
        )
        return None
    frame = pd.DataFrame(matrix, index=[p.strip() for p in ptids])
    frame = frame[~frame.index.duplicated(keep="last")]
    frame.attrs["reader"] = reader
    return frame


def read_h5ad_with_h5py(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read an AnnData file's ``X`` (dense, CSR or CSC) and ``obs`` index with h5py alone.

    Follows the AnnData on-disk format (``obs`` as a group whose ``_index`` attribute names
    the index dataset; the older compound-dataset ``obs`` with an ``index`` field is also
    accepted).

    Raises:
        DataError: ``X`` or the ``obs`` index is missing or of an unknown encoding.
    """
    h5py = import_optional("h5py", "reading ADNI's genomic AnnData file without anndata")
    with h5py.File(path, "r") as handle:
        if "X" not in handle:
            raise DataError("field 'X' is missing; expected the [obs, SNPs] matrix")
        matrix = _read_x(handle["X"], h5py)
        if "obs" not in handle:
            raise DataError("field 'obs' is missing; expected obs with the PTID index")
        obs = handle["obs"]
        if isinstance(obs, h5py.Group):
            index_name = obs.attrs.get("_index", "_index")
            index_name = index_name.decode() if isinstance(index_name, bytes) else str(index_name)
            if index_name not in obs:
                raise DataError(f"field 'obs/{index_name}' is missing; expected the PTID index")
            ptids = _read_strings(obs[index_name], h5py)
        else:
            names = obs.dtype.names or ()
            field = "index" if "index" in names else (names[0] if names else None)
            if field is None:
                raise DataError("field 'obs' has no index column; expected PTIDs")
            ptids = stringify_ids(obs[field])
    return ptids, matrix


def _read_strings(node: Any, h5py: Any) -> list[str]:
    """A string column: a plain dataset, a nullable string array (``values`` + ``mask``, as
    newer AnnData writes pandas' string dtype) or a categorical (``codes`` + ``categories``)."""
    if isinstance(node, h5py.Dataset):
        return stringify_ids(node[()])
    if "values" in node:
        return stringify_ids(node["values"][()])
    if "codes" in node and "categories" in node:
        categories = stringify_ids(node["categories"][()])
        return [categories[int(code)] for code in node["codes"][()]]
    raise DataError(
        f"field '{node.name}' has an unknown encoding; expected a string array of PTIDs"
    )


def _read_x(node: Any, h5py: Any) -> np.ndarray:
    if isinstance(node, h5py.Dataset):
        return np.asarray(node[()])
    encoding = node.attrs.get("encoding-type", node.attrs.get("h5sparse_format", ""))
    encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
    shape = node.attrs.get("shape", node.attrs.get("h5sparse_shape"))
    if encoding not in ("csr_matrix", "csc_matrix", "csr", "csc") or shape is None:
        raise DataError(
            f"field 'X' has encoding '{encoding}'; expected a dense array, csr_matrix or csc_matrix"
        )
    data, indices, indptr = (np.asarray(node[k][()]) for k in ("data", "indices", "indptr"))
    rows, columns = (int(s) for s in shape)
    dense = np.zeros((rows, columns), dtype=np.float64)
    major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    if encoding.startswith("csr"):
        dense[major, indices] = data
    else:
        dense[indices, major] = data
    return dense


def _read_table(
    relative: str, problems: Problems, drop_prefixes: tuple[str, ...] = ()
) -> pd.DataFrame | None:
    table = problems.read_csv(relative, index_col=0)
    if table is None:
        return None
    dropped = (
        [c for c in table.columns if str(c).startswith(drop_prefixes)] if drop_prefixes else []
    )
    table = table.drop(columns=dropped)
    non_numeric = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        problems.add(
            relative,
            f"column(s) {first_items(non_numeric)} are not numeric; expected numeric features "
            "indexed by PTID (the preprocessing's *_mean.csv output)",
        )
        return None
    if table.shape[1] == 0:
        problems.add(relative, "has no feature columns; expected PTID then numeric features")
        return None
    table.index = table.index.astype(str).str.strip()
    table = table[~table.index.duplicated(keep="last")].astype(np.float64)
    table.attrs["dropped"] = [str(c) for c in dropped]
    return table


# -------------------------------------------------------------------------- subject selection


def _select_subjects(
    splits: dict[str, list[str]],
    labels: pd.Series,
    latest_scan: dict[str, int],
    scans: np.ndarray,
    tables: dict[str, pd.DataFrame],
    missing: str,
) -> tuple[dict[str, tuple[list[str], np.ndarray]], dict[str, dict[str, int]]]:
    """Subjects of each split with their observed mask, and counts of those left out."""
    missing_rows = {
        name: set(table.index[all_value_rows(table.to_numpy(), MISSING_MARKER)])
        for name, table in tables.items()
    }
    selected: dict[str, tuple[list[str], np.ndarray]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for key, split in SPLIT_KEYS.items():
        candidates = [s for s in splits[key] if s in labels.index]
        observed = np.zeros((len(candidates), len(MODALITIES)), dtype=bool)
        for i, subject in enumerate(candidates):
            observed[i, 0] = subject in latest_scan
            for position, name in enumerate(MODALITIES[1:], start=1):
                observed[i, position] = (
                    subject in tables[name].index and subject not in missing_rows[name]
                )
        _unmark_empty_scans(candidates, observed, latest_scan, scans)
        keep = observed.all(axis=1) if missing == "drop" else observed.any(axis=1)
        skipped[split] = {
            "not_in_labels": len(splits[key]) - len(candidates),
            "missing_modalities": int((~keep).sum()),
        }
        ids = [s for s, k in zip(candidates, keep, strict=True) if k]
        if not ids:
            raise DataError(
                f"ADNI: no '{key}' subject of {SPLITS_FILE} is in {LABELS_FILE} with "
                + ("all four modalities" if missing == "drop" else "any modality")
                + "; expected PTIDs shared by the files (try missing='keep')"
            )
        selected[split] = (ids, observed[keep])
    logger.info("ADNI: subjects left out per split: %s", skipped)
    return selected, skipped


def _unmark_empty_scans(
    subjects: list[str], observed: np.ndarray, latest_scan: dict[str, int], scans: np.ndarray
) -> None:
    """A scan row of all -2 is the preprocessing's missing marker: not observed."""
    positions = [i for i in range(len(subjects)) if observed[i, 0]]
    for start in range(0, len(positions), _CHUNK_ROWS):
        chunk = positions[start : start + _CHUNK_ROWS]
        rows = np.asarray(scans[[latest_scan[subjects[i]] for i in chunk]])
        observed[chunk, 0] = ~all_value_rows(rows, MISSING_MARKER)


def _image_statistics(scans: np.ndarray, train_rows: list[int]) -> tuple[float, float]:
    """Mean and std of all voxel values of the training scans (streamed in chunks)."""
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(train_rows), _CHUNK_ROWS):
        chunk = np.asarray(scans[train_rows[start : start + _CHUNK_ROWS]], dtype=np.float64)
        chunk = chunk[np.isfinite(chunk)]
        total += float(chunk.sum())
        total_sq += float(np.square(chunk).sum())
        count += chunk.size
    if count == 0:
        return 0.0, 1.0
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    return mean, std if std > 0 else 1.0


def _fit_tabular(
    tables: dict[str, pd.DataFrame],
    train_ids: list[str],
    train_observed: np.ndarray,
    tabular_scaling: str,
) -> dict[str, Any]:
    """name -> function mapping raw rows to model inputs, fitted on observed training rows."""
    transforms: dict[str, Any] = {}
    for position, name in enumerate(MODALITIES[1:], start=1):
        ids = [s for s, ok in zip(train_ids, train_observed[:, position], strict=True) if ok]
        train_rows = tables[name].loc[ids].to_numpy(dtype=np.float64)
        if name == "genomic":
            # Genotypes are 0/1/2 counts: a missing call is filled with the commonest one.
            modes = column_modes(train_rows)
            filled = np.where(np.isnan(train_rows), modes, train_rows)
            scaler = MinMaxScaler(filled, -1.0, 1.0)
            transforms[name] = _genomic_transform(modes, scaler)
        else:
            standardizer = Standardizer(train_rows)
            if tabular_scaling == "standard":
                transforms[name] = standardizer.transform
            else:
                transforms[name] = _fill_only(standardizer)
    return transforms


def _genomic_transform(modes: np.ndarray, scaler: MinMaxScaler) -> Any:
    def transform(rows: np.ndarray) -> np.ndarray:
        return scaler.transform(np.where(np.isnan(rows), modes, rows))

    return transform


def _fill_only(standardizer: Standardizer) -> Any:
    def transform(rows: np.ndarray) -> np.ndarray:
        return standardizer.fill_missing(rows).astype(np.float32)

    return transform
