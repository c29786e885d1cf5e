"""The disk cache: its folder, and arrays computed once and kept there."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from i2moe.data.files import write_atomically

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "I2MOE_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/i2moe")


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$I2MOE_CACHE``, else ``~/.cache/i2moe``."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR
    return Path(cache_dir).expanduser()


def cached_array(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Load the ``.npy`` array at ``path``, or compute it and save it atomically.

    The array is written to a temporary file in the same folder and then renamed over
    ``path``, so an interrupted run or a concurrent reader never sees a partial file. An
    unreadable cache file is recomputed.

    Args:
        path: the cache file.
        compute: produces the array when the cache is missing or unreadable.

    Returns:
        The array.
    """
    if path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            logger.warning("cache file %s is unreadable (%s); recomputing it", path, error)
    array = compute()
    write_atomically(path, lambda stream: np.save(stream, array, allow_pickle=False))
    return array
