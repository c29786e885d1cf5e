"""Readers of the five datasets of the I2MoE paper, in their published on-disk formats.

Each reader is ``read_<name>(root, **options) -> DataBundle``; :data:`PAPER_DATASETS` maps
the dataset's name to its reader. The optional dependencies (h5py, pillow, nibabel, anndata)
come with ``pip install "i2moe[paper]"`` and are imported only when a reader needs them. See
``docs/paper-datasets.md`` for the expected files and how to obtain them.
"""

from __future__ import annotations

from collections.abc import Callable

from i2moe.data.base import DataBundle
from i2moe.data.paper.adni import read_adni
from i2moe.data.paper.enrico import read_enrico
from i2moe.data.paper.imdb import read_imdb
from i2moe.data.paper.mimic import read_mimic
from i2moe.data.paper.mosi import read_mosi

PAPER_DATASETS: dict[str, Callable[..., DataBundle]] = {
    "mosi": read_mosi,
    "imdb": read_imdb,
    "enrico": read_enrico,
    "adni": read_adni,
    "mimic": read_mimic,
}

__all__ = [
    "PAPER_DATASETS",
    "read_adni",
    "read_enrico",
    "read_imdb",
    "read_mimic",
    "read_mosi",
]
