"""The bundled Mulan birds dataset (i2moe.data.bundled.birds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bundle_arrays import raw_arrays, split_ids, stacked

from i2moe.data.bundled import load_birds


@pytest.fixture(scope="module")
def birds():
    return load_birds()


def test_birds_modalities_task_and_official_split(birds):
    raw = raw_arrays("birds.npz")
    assert birds.task == "multilabel"
    assert birds.num_outputs == 19
    assert birds.modality_names == ["audio", "segments"]
    assert [m.shape for m in birds.modalities] == [(153,), (105,)]
    assert "Swainson's Thrush" in birds.class_names and len(birds.class_names) == 19
    train, val, test = split_ids(birds)
    assert len(train) + len(val) == 322 and len(test) == 323
    assert set(test) == set(np.flatnonzero(raw["is_test"]))
    assert not set(train) & set(val)
    assert 40 <= len(val) <= 56  # about 15 % of 322
    item = birds.train[0]
    assert item["target"].dtype == torch.float32 and item["target"].shape == (19,)
    assert set(torch.unique(birds.train.targets).tolist()) == {0.0, 1.0}
    assert birds.meta["feature_names"]["segments"][-7:][0] == "segments"


def test_birds_segment_view_is_masked_where_clips_have_no_segments(birds):
    raw = raw_arrays("birds.npz")
    for split in ("train", "val", "test"):
        dataset = birds.split(split)
        has_segments = raw["has_segments"][dataset.sample_ids]
        observed = dataset.observed.numpy()
        assert observed[:, 0].all()
        assert np.array_equal(observed[:, 1], has_segments)
        assert not dataset.arrays["segments"][~torch.as_tensor(has_segments)].any()
    train_segments = stacked(birds.train, "segments")[birds.train.observed[:, 1].numpy()]
    np.testing.assert_allclose(train_segments.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(stacked(birds.train, "audio").mean(axis=0), 0.0, atol=1e-4)
    assert np.abs(stacked(birds.test, "audio").mean(axis=0)).max() > 1e-3


def test_birds_without_masking_keeps_every_view_observed():
    unmasked = load_birds(mask_empty_segments=False)
    assert unmasked.train.observed.all()
    np.testing.assert_allclose(stacked(unmasked.train, "segments").mean(axis=0), 0.0, atol=1e-4)


def test_birds_validation_split_is_deterministic_for_a_seed(birds):
    assert np.array_equal(split_ids(load_birds(seed=0))[1], split_ids(birds)[1])
    assert not np.array_equal(split_ids(load_birds(seed=3))[1], split_ids(birds)[1])
