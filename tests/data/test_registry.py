"""Tests for i2moe.data.registry."""

from __future__ import annotations

import numpy as np
import pytest

from i2moe.data import registry
from i2moe.data.base import ArrayDataset, DataBundle, DataError, ModalitySpec
from i2moe.data.registry import (
    DatasetEntry,
    get_dataset_entry,
    list_datasets,
    load_dataset,
    register_dataset,
)


@pytest.fixture
def isolated_registry(monkeypatch):
    """A copy of the registry (bundled datasets included) that the test may modify."""
    list_datasets()  # registers the bundled datasets before copying
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    return registry.DATASETS


def _toy_bundle(size: int = 4, seed: int = 0) -> DataBundle:
    rng = np.random.default_rng(seed)
    split = ArrayDataset({"x": rng.normal(size=(size, 3))}, np.arange(size) % 2, "classification")
    return DataBundle(
        name="toy",
        task="classification",
        modalities=[ModalitySpec("x", (3,), "vector")],
        num_outputs=2,
        train=split,
        val=split,
        test=split,
    )


def test_bundled_datasets_are_listed_sorted_with_their_facts():
    entries = list_datasets()
    names = [entry.name for entry in entries]
    assert names == sorted(names)
    assert {"mfeat", "birds", "reviews"} <= set(names)
    mfeat = next(entry for entry in entries if entry.name == "mfeat")
    assert isinstance(mfeat, DatasetEntry)
    assert mfeat.task == "classification"
    assert mfeat.num_samples == 2000
    assert mfeat.licence == "CC BY 4.0"
    assert "van Breukelen" in mfeat.citation
    assert [m.split(" ")[0] for m in mfeat.modalities] == ["fou", "fac", "kar", "pix", "zer", "mor"]


def test_unknown_name_raises_data_error_listing_valid_names():
    with pytest.raises(DataError, match="unknown name 'nope'") as caught:
        load_dataset("nope")
    for name in ("birds", "mfeat", "reviews"):
        assert name in str(caught.value)


def test_unknown_option_raises_data_error_listing_accepted_options():
    with pytest.raises(DataError, match="unknown option.*colour.*accepted options: seed"):
        load_dataset("mfeat", colour="red")


def test_register_and_load_custom_dataset_passes_options(isolated_registry):
    @register_dataset("toy", description="toy data", citation="nobody", licence="CC0 1.0")
    def load_toy(size: int = 4, seed: int = 0) -> DataBundle:
        return _toy_bundle(size, seed)

    assert "toy" in isolated_registry
    bundle = load_dataset("toy", size=6)
    assert len(bundle.train) == 6
    entry = get_dataset_entry("toy")
    assert entry.loader is load_toy
    assert entry.options == {"size": 4, "seed": 0}
    assert entry.task is None and entry.num_samples is None and entry.modalities == ()


def test_registering_another_function_under_a_taken_name_fails(isolated_registry):
    with pytest.raises(ValueError, match="'mfeat' is already registered"):

        @register_dataset("mfeat", description="impostor", citation="-", licence="-")
        def load_other() -> DataBundle:
            return _toy_bundle()


def test_reregistering_the_same_function_replaces_the_entry(isolated_registry):
    original = isolated_registry["mfeat"].loader
    register_dataset("mfeat", description="updated", citation="-", licence="-")(original)
    assert isolated_registry["mfeat"].description == "updated"
    assert isolated_registry["mfeat"].loader is original
