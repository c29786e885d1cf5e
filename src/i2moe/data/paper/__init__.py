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

# Other spellings users type (the authors' scripts, MultiBench and the HDF5 file say "mmimdb")
# -> the name above. Looked up without case.
DATASET_ALIASES: dict[str, str] = {
    "mm-imdb": "imdb",
    "mm_imdb": "imdb",
    "mmimdb": "imdb",
    "cmu-mosi": "mosi",
    "cmu_mosi": "mosi",
    "cmumosi": "mosi",
    "mimic-iv": "mimic",
    "mimic_iv": "mimic",
    "mimiciv": "mimic",
    "mimic4": "mimic",
}


def paper_dataset_name(name: str) -> str | None:
    """The paper dataset ``name`` means (any case, any spelling of DATASET_ALIASES), or None."""
    key = name.strip().lower()
    key = DATASET_ALIASES.get(key, key)
    return key if key in PAPER_DATASETS else None


def spellings() -> str:
    """Every accepted spelling, for help texts and messages: ``imdb (mm-imdb, mmimdb, ...)``."""
    parts = []
    for canonical in PAPER_DATASETS:
        others = sorted(alias for alias, target in DATASET_ALIASES.items() if target == canonical)
        parts.append(f"{canonical} ({', '.join(others)})" if others else canonical)
    return ", ".join(parts)


__all__ = [
    "DATASET_ALIASES",
    "PAPER_DATASETS",
    "paper_dataset_name",
    "spellings",
    "read_adni",
    "read_enrico",
    "read_imdb",
    "read_mimic",
    "read_mosi",
]
