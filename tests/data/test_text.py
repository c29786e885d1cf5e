"""Text features: the hashing featuriser and MiniLM embeddings (i2moe.data.text)."""

from __future__ import annotations

import numpy as np
import pytest

from i2moe.data.text import HashingTextFeaturizer, embed_texts_minilm, minilm_available


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


@pytest.mark.skipif(not minilm_available(), reason="needs the optional text extra")
def test_minilm_embeds_a_handful_of_texts():
    texts = ["This dress is lovely.", "", "What a beautiful dress!", "The zip broke at once."]
    embeddings = embed_texts_minilm(texts)
    assert embeddings.shape == (4, 384) and embeddings.dtype == np.float32
    assert not embeddings[1].any()
    np.testing.assert_allclose(np.linalg.norm(embeddings[[0, 2, 3]], axis=1), 1.0, rtol=1e-4)
    assert embeddings[0] @ embeddings[2] > embeddings[0] @ embeddings[3]
