"""``i2moe bench``: the cost of I2MoE against its vanilla backbone (``docs/benchmarks.md``).

For the transformer backbone at the paper's MOSI-, ADNI- and MM-IMDb-like sizes (batch 32) it
measures three variants: the vanilla backbone, I2MoE with the reference loop over experts
(``execution="loop"``) and I2MoE with the fast path (``execution="vmap"``). For each:
milliseconds per training step (forward, the training module's loss, backward and an Adam step)
and per inference batch (eval, no_grad), the median of repeated runs after warm-up; the number
of dispatched ATen operators per training step (a device-independent stand-in for GPU kernel
launches); peak memory; parameter count. The fast variant also carries ``floor_train_ms``: one
vanilla training step over an E*P times larger batch, the arithmetic floor of the fast path.

Each variant runs in a fresh ``python -m i2moe.experiments.bench --worker`` subprocess by
default, so that the CPU memory figure (the growth of the RSS high-water mark from
``resource.getrusage``) is that variant's alone; ``--in-process`` trades this for speed. Shape
letters as everywhere: E experts (n+2), P passes (1 + perturbed modalities), B batch.

- :mod:`~i2moe.experiments.bench.sizes`: the sizes, variants and options;
- :mod:`~i2moe.experiments.bench.measure`: measuring one variant (``measure_variant``);
- :mod:`~i2moe.experiments.bench.benchmark`: a whole run (``run_benchmark``) and its table.

The command line imports this package when it starts; the public names of the measuring
modules, which load the training framework, are imported on first use.
"""

import importlib
from typing import Any

from i2moe.experiments.bench.sizes import (
    DESCRIPTION,
    DEVICES,
    QUICK_SIZES,
    SIZES,
    VARIANTS,
    BenchOptions,
    BenchSize,
)

_EXPORTS = {
    "MeasuredSteps": "measure",
    "OpCounter": "measure",
    "build_variant": "measure",
    "count_ops": "measure",
    "measure_variant": "measure",
    "format_table": "benchmark",
    "run_benchmark": "benchmark",
}

__all__ = [
    "DESCRIPTION",
    "DEVICES",
    "QUICK_SIZES",
    "SIZES",
    "VARIANTS",
    "BenchOptions",
    "BenchSize",
    *sorted(_EXPORTS),
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'i2moe.experiments.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"i2moe.experiments.bench.{_EXPORTS[name]}"), name)
