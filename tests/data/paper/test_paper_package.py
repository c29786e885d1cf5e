"""The paper datasets' names: every common spelling means one dataset."""

import pytest

from i2moe.data.paper import PAPER_DATASETS, paper_dataset_name, spellings


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("mmimdb", "imdb"),
        ("MM-IMDb", "imdb"),
        ("imdb", "imdb"),
        ("cmu-mosi", "mosi"),
        ("MOSI", "mosi"),
        ("mimic-iv", "mimic"),
        ("adni", "adni"),
        ("Enrico", "enrico"),
    ],
)
def test_common_spellings_name_the_dataset(typed, meant):
    assert paper_dataset_name(typed) == meant


def test_unknown_names_and_the_listing():
    assert paper_dataset_name("cifar") is None
    listing = spellings()
    assert all(name in listing for name in PAPER_DATASETS) and "mmimdb" in listing
