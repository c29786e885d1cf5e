"""Writers of tiny fake copies of the paper's five datasets, in their exact on-disk formats.

Each ``write_<name>(root, ...)`` creates the dataset's folder under ``root`` and returns it, so
that ``read_<name>(write_<name>(tmp_path))`` works. The contents are random but seeded and
follow simple, documented patterns that tests can check against (see each writer). Other tests
(e.g. end-to-end command-line runs) may reuse them.

Needs h5py (MM-IMDb, ADNI genomic), pillow (ENRICO) and nibabel (ADNI atlas, optional).
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ENRICO_TOPICS = (
    "bare",
    "camera",
    "chat",
    "dialer",
    "editor",
    "form",
    "gallery",
    "list",
    "login",
    "maps",
    "mediaplayer",
    "menu",
    "modal",
    "news",
    "other",
    "profile",
    "search",
    "settings",
    "terms",
    "tutorial",
)
ADNI_ATLAS = "BLSA_SPGR+MPRAGE_averagetemplate_muse_seg_DS222.nii.gz"


def write_mosi(
    root: str | Path,
    *,
    sizes: tuple[int, int, int] = (16, 8, 8),
    raw: bool = False,
    seq_len: int = 50,
    seed: int = 0,
) -> Path:
    """MultiBench's affect pickle ``mosi_data.pkl`` (or ``mosi_raw.pkl`` with ``raw``).

    Patterns: in every split, sample 1 has all-zero text (the reader drops it) and sample 2 is
    scored exactly 0.0; vision and audio hold some NaN, +inf and -inf; ids are [N, 2] bytes.

    Returns:
        The folder holding the pickle.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "mosi"
    folder.mkdir(parents=True, exist_ok=True)
    widths = (35, 74, 300) if raw else (20, 5, 300)
    content = {}
    for split, n in zip(("train", "valid", "test"), sizes, strict=True):
        vision = rng.normal(size=(n, seq_len, widths[0])).astype(np.float32)
        audio = rng.normal(size=(n, seq_len, widths[1])).astype(np.float32)
        text = rng.normal(size=(n, seq_len, widths[2])).astype(np.float32)
        vision[0, 0, 0] = np.nan
        audio[0, 1, :2] = (np.inf, -np.inf)
        text[1] = 0.0
        labels = rng.uniform(-3, 3, size=(n, 1, 1)).round(1)
        labels[2] = 0.0
        labels[3] = -1.4
        labels[4] = 2.2
        ids = np.array([[f"video{split}{i // 3}".encode(), str(i).encode()] for i in range(n)])
        content[split] = {
            "vision": vision,
            "audio": audio,
            "text": text,
            "labels": labels,
            "id": ids,
        }
    with (folder / ("mosi_raw.pkl" if raw else "mosi_data.pkl")).open("wb") as handle:
        pickle.dump(content, handle)
    return folder


def write_imdb(
    root: str | Path, *, n: int = 40, text_dim: int = 300, image_dim: int = 4096, seed: int = 0
) -> Path:
    """Arevalo et al.'s ``multimodal_imdb.hdf5`` with ``n`` rows.

    Patterns: ``features[i, 0] == i`` and ``vgg_features[i, 0] == -i`` (row i is recognisable);
    every row has at least one genre.

    Returns:
        The folder holding the file.
    """
    import h5py

    rng = np.random.default_rng(seed)
    folder = Path(root) / "mmimdb"
    folder.mkdir(parents=True, exist_ok=True)
    text = rng.normal(size=(n, text_dim)).astype(np.float32)
    image = rng.normal(size=(n, image_dim)).astype(np.float32)
    text[:, 0] = np.arange(n)
    image[:, 0] = -np.arange(n)
    genres = (rng.random((n, 23)) < 0.15).astype(np.int8)
    genres[np.arange(n), np.arange(n) % 23] = 1
    with h5py.File(folder / "multimodal_imdb.hdf5", "w") as handle:
        handle["features"] = text
        handle["vgg_features"] = image
        handle["genres"] = genres
        handle["imdb_ids"] = np.array([f"{100000 + i:07d}".encode() for i in range(n)])
        handle["images"] = rng.integers(0, 255, size=(n, 3, 8, 6), dtype=np.uint8)
    return folder


def write_enrico(
    root: str | Path, *, n: int = 30, image_hw: tuple[int, int] = (24, 12), seed: int = 0
) -> Path:
    """ENRICO's ``design_topics.csv``, ``screenshots/<id>.jpg`` and ``wireframes/<id>.png``.

    Patterns: ``n`` usable screens with ids 10000, 10001, ... and topics cycling through the
    20 topics, plus the two skipped screens 50105 and 50109 whose wireframes are corrupt (not
    images at all), as in the published data.

    Returns:
        The dataset folder.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = Path(root) / "enrico"
    (folder / "screenshots").mkdir(parents=True, exist_ok=True)
    (folder / "wireframes").mkdir(parents=True, exist_ok=True)
    rows = [(str(10000 + i), ENRICO_TOPICS[i % len(ENRICO_TOPICS)]) for i in range(n)]
    rows[3:3] = [("50105", "list"), ("50109", "login")]
    height, width = image_hw
    for screen, _ in rows:
        shot = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(shot).save(folder / "screenshots" / f"{screen}.jpg")
        if screen in ("50105", "50109"):
            (folder / "wireframes" / f"{screen}.png").write_bytes(b"not a png")
            continue
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[: height // 2, :, int(screen) % 3] = 200
        Image.fromarray(frame).save(folder / "wireframes" / f"{screen}.png")
    with (folder / "design_topics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["screen_id", "topic"])
        writer.writerows(rows)
    return folder


def adni_ptid(i: int) -> str:
    """PTID of fake ADNI subject ``i`` (site_S_number, as in ADNI)."""
    return f"{i % 9 + 1:03d}_S_{1000 + i:04d}"


def write_adni(
    root: str | Path,
    *,
    n_subjects: int = 30,
    n_snps: int = 12,
    atlas_shape: tuple[int, int, int] | None = (9, 11, 9),
    seed: int = 0,
) -> Path:
    """Flex-MoE's preprocessed ADNI folder (see ``i2moe.data.paper.adni``).

    Subjects ``adni_ptid(i)`` for i < n_subjects, DIAGNOSIS ``i % 3 + 1``; splits: i % 5 == 3
    validation, i % 5 == 4 testing, else training; the testing list also names an unknown
    subject. Missing modalities: no scan when i % 7 == 5; absent from the genomic file when
    i % 6 == 4; clinical row all -2 when i % 8 == 6; absent from the biospecimen file when
    i % 9 == 7. Every subject with a scan has two (dates 2010-05-01 and 2012-03-15, the later
    written first); every voxel of a scan row equals ``i + 0.5`` for the latest scan and
    ``-100`` for the older one. Clinical columns include the leaking PTCOGBEG, PTADDX and
    PTADBEG_YEAR, which equal the diagnosis. With ``atlas_shape`` None, no atlas is written.

    Returns:
        The dataset folder.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "adni"
    for sub in ("image", "genomic", "clinical", "biospecimen"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ptids = [adni_ptid(i) for i in range(n_subjects)]
    diagnosis = [i % 3 + 1 for i in range(n_subjects)]
    pd.DataFrame({"PTID": ptids, "DIAGNOSIS": diagnosis, "VISCODE": "bl"}).to_csv(
        folder / "label.csv", index=False
    )
    splits = {
        "training": [p for i, p in enumerate(ptids) if i % 5 < 3],
        "validation": [p for i, p in enumerate(ptids) if i % 5 == 3],
        "testing": [p for i, p in enumerate(ptids) if i % 5 == 4] + ["999_S_9999"],
    }
    (folder / "PTID_splits.json").write_text(json.dumps(splits))

    # Image: an atlas whose label 150 marks the grey-matter voxels, one column per voxel.
    shape = atlas_shape or (9, 11, 9)
    atlas = rng.choice(np.array([0, 4, 150], dtype=np.int16), size=shape, p=[0.4, 0.2, 0.4])
    num_voxels = int((atlas == 150).sum())
    if atlas_shape is not None:
        import nibabel

        nibabel.save(nibabel.Nifti1Image(atlas, np.eye(4)), folder / "image" / ADNI_ATLAS)
    scan_rows, lines = [], []
    for i, ptid in enumerate(ptids):
        if i % 7 == 5:
            continue
        lines.append(f"{ptid}_2012-03-15")
        scan_rows.append(np.full(num_voxels, i + 0.5, dtype=np.float32))
        lines.append(f"{ptid}_2010-05-01")
        scan_rows.append(np.full(num_voxels, -100.0, dtype=np.float32))
    np.save(folder / "image" / "ADNI_G.npy", np.stack(scan_rows))
    (folder / "image" / "ADNI_subj.txt").write_text("\n".join(lines) + "\n")

    genomic_ids = [p for i, p in enumerate(ptids) if i % 6 != 4]
    snps = rng.integers(0, 3, size=(len(genomic_ids), n_snps)).astype(np.float32)
    snps[0, 0] = np.nan
    write_h5ad(folder / "genomic" / "genomic_merged.h5ad", genomic_ids, snps)

    clinical = pd.DataFrame(
        {
            "AGE": rng.normal(72, 6, n_subjects).round(1),
            "PTEDUCAT": rng.integers(8, 20, n_subjects).astype(float),
            "MMSE": rng.normal(27, 2, n_subjects).round(),
            "PTCOGBEG": np.array(diagnosis, dtype=float),
            "PTADDX": np.array(diagnosis, dtype=float),
            "PTADBEG_YEAR": np.array(diagnosis, dtype=float),
        },
        index=pd.Index(ptids, name="PTID"),
    )
    clinical.iloc[[i for i in range(n_subjects) if i % 8 == 6]] = -2.0
    clinical.to_csv(folder / "clinical" / "clinical_merged_mean.csv")

    bio_ids = [p for i, p in enumerate(ptids) if i % 9 != 7]
    pd.DataFrame(
        {
            "ABETA": rng.normal(900, 200, len(bio_ids)),
            "TAU": rng.normal(250, 50, len(bio_ids)),
            "APOE4": rng.integers(0, 3, len(bio_ids)).astype(float),
        },
        index=pd.Index(bio_ids, name="PTID"),
    ).to_csv(folder / "biospecimen" / "biospecimen_merged_mean.csv")
    return folder


def write_h5ad(path: str | Path, obs_names: list[str], matrix: np.ndarray) -> None:
    """Write a dense AnnData file with h5py alone, following AnnData's on-disk format."""
    import h5py

    strings = h5py.string_dtype("utf-8")

    def frame(group: h5py.Group, names: list[str]) -> None:
        group.attrs.update(
            {
                "encoding-type": "dataframe",
                "encoding-version": "0.2.0",
                "_index": "_index",
                "column-order": np.array([], dtype=strings),
            }
        )
        index = group.create_dataset("_index", data=np.array(names, dtype=object), dtype=strings)
        index.attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})

    with h5py.File(path, "w") as handle:
        handle.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        x = handle.create_dataset("X", data=matrix)
        x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
        frame(handle.create_group("obs"), obs_names)
        frame(handle.create_group("var"), [f"rs{j}" for j in range(matrix.shape[1])])
        for name in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            group = handle.create_group(name)
            group.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})


def write_mimic(
    root: str | Path,
    *,
    n: int = 40,
    widths: tuple[int, int, int] = (10, 16, 12),
    as_numpy: bool = False,
    seed: int = 0,
) -> Path:
    """Flex-MoE's preprocessed MIMIC-IV folder.

    Patterns: subject ids 5000 + 7 * i; row i of each feature file has ``[i, 0] == i``;
    ``lab_x`` holds NaN at [0, 1]; one_year_mortality is 1 for every fourth subject; splits
    (integer ids in the JSON): i % 5 == 3 validation, i % 5 == 4 testing, else training.
    ``as_numpy`` saves numpy arrays instead of tensors (both occur in practice).

    Returns:
        The dataset folder.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "mimic"
    folder.mkdir(parents=True, exist_ok=True)
    for name, width in zip(("lab", "note", "code"), widths, strict=True):
        values = rng.normal(size=(n, width))
        values[:, 0] = np.arange(n)
        if name == "lab":
            values[0, 1] = np.nan
        content = values if as_numpy else torch.tensor(values, dtype=torch.float32)
        torch.save(content, folder / f"{name}_x.pt")
    ids = [5000 + 7 * i for i in range(n)]
    mortality = [int(i % 4 == 0) for i in range(n)]
    pd.DataFrame({"subject_id": ids, "one_year_mortality": mortality}).to_csv(
        folder / "labels.csv", index=False
    )
    splits = {
        "training": [s for i, s in enumerate(ids) if i % 5 < 3],
        "validation": [s for i, s in enumerate(ids) if i % 5 == 3],
        "testing": [s for i, s in enumerate(ids) if i % 5 == 4],
    }
    (folder / "PTID_splits_mimic.json").write_text(json.dumps(splits))
    return folder
