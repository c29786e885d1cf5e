"""Files a paper dataset opens lazily, once in each process that reads them, and never pickles."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


class ProcessLocalFile:
    """An open file made on first use in each process, and left out when pickled.

    A handle inherited through fork is not safe to use in the child (HDF5 keeps process-local
    state), so every process that reads, DataLoader workers included, opens its own; a pickled
    dataset carries only how to open the file.

    Args:
        open_file: opens the file; picklable (a module-level function or a
            ``functools.partial`` of one).
    """

    def __init__(self, open_file: Callable[[], Any]) -> None:
        self.open_file = open_file
        self._handle: Any = None
        self._pid: int | None = None

    @property
    def is_open(self) -> bool:
        """Whether this process holds the open file."""
        return self._handle is not None and self._pid == os.getpid()

    def get(self) -> Any:
        """The file, opened now if this process has not opened it yet."""
        if not self.is_open:
            self._handle = self.open_file()
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        """Close this process's handle, if any; one without ``close`` (a memory map) is
        dropped."""
        if self.is_open and hasattr(self._handle, "close"):
            self._handle.close()
        self._handle = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        return {"open_file": self.open_file, "_handle": None, "_pid": None}
