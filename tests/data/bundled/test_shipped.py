"""The data files shipped for the bundled datasets (i2moe.data.bundled.shipped)."""

from __future__ import annotations

from importlib import resources

import pytest

from i2moe.data.base import DataError
from i2moe.data.bundled.shipped import check_fractions, check_seed, open_data


def test_shipped_data_stays_small():
    folder = resources.files("i2moe").joinpath("datasets_data")
    sizes = {
        name: len(folder.joinpath(name).read_bytes())
        for name in ("mfeat.npz", "birds.npz", "reviews.parquet")
    }
    assert sum(sizes.values()) < 10 * 2**20, sizes
    for name in ("README.md", "LICENSES.md"):
        assert folder.joinpath(name).is_file()


def test_a_missing_shipped_file_is_a_data_error_naming_it():
    with pytest.raises(DataError, match="datasets_data/absent.npz: bundled data file is missing"):
        open_data("absent.npz")
    with pytest.raises(DataError, match="dataset 'toy': option seed=-1"):
        check_seed("toy", -1)
    with pytest.raises(DataError, match="val_fraction \\+ test_fraction"):
        check_fractions("toy", 0.6, 0.4)
