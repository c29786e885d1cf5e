"""Writing a data file atomically: into a temporary file beside it, then renamed over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` with ``write(stream)`` so that no reader ever sees a partial file.

    The data go to a temporary file in the same folder (created, with its parents, if
    missing), reach the disk, and the file is renamed over ``path``; on any failure the
    temporary file is removed and the error raised.

    Args:
        path: the file to write.
        write: writes the content to the binary stream it is given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file private to its owner; give it an ordinary data file's mode.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
