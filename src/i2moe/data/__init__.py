"""Data readers: bundled datasets, the user's files, generated data, the paper's datasets.

The package re-exports the data contract of :mod:`i2moe.data.base` (``DataBundle``,
``ArrayDataset``, ``DataError``, ``ModalitySpec``, ...), so ``from i2moe.data import DataError``
works.
"""

from i2moe.data import base
from i2moe.data.base import *  # noqa: F403 (the names of base.__all__)

__all__ = base.__all__
