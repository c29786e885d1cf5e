"""Which process of a distributed run this is: only the primary one writes files."""

from __future__ import annotations

import os


def is_primary_process() -> bool:
    """False in every process of a distributed run but global rank 0.

    Lightning's DDP launcher starts the command again in one process per further device (with
    ``LOCAL_RANK`` set; ``NODE_RANK`` on further nodes), and torchrun or SLURM start every rank
    with ``RANK`` or ``SLURM_PROCID``. Those processes train with the primary one but leave the
    output folder to it: they neither check, delete nor write it.
    """
    for name in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if name in os.environ:
            return os.environ[name].strip() in ("", "0")
    ranks = (os.environ.get(name, "0").strip() for name in ("LOCAL_RANK", "NODE_RANK"))
    return all(rank in ("", "0") for rank in ranks)
