"""Interleaved CPU-time comparison of I2MoE's expert executions (docs/benchmarks.md).

On a shared machine wall-clock times drift between and during runs, so this script builds every
variant in one process and times their training steps in turn, reading ``time.process_time()``
(the CPU time of this one thread). Variants, at one of ``i2moe.experiments.bench``'s sizes,
each timed on the benchmark's training step (``MeasuredSteps``: the training module's loss):

- ``vanilla``: the backbone alone;
- ``loop``: I2MoE, ``execution="loop"``: a Python loop over the E experts, each called once on
  its P passes folded into the batch;
- ``double_loop``: I2MoE as the authors' code runs it, a loop over experts *and* passes
  (E * P expert calls per step); the same model, its expert stack called once per pass;
- ``fast_folded``: I2MoE, ``execution="vmap"`` with ``reuse_parts=False``: one batched call for
  all experts and passes, every pass computed in full;
- ``fast``: I2MoE, ``execution="vmap"``: one batched call for all experts and passes, the
  passes sharing the intact modalities' parts (``i2moe.execution.fuse_passes``).

With ``--perturb-k K1 K2 ...`` it times the fast path instead, perturbing K of the n
modalities per step (Less-Forward, ``--perturb-k`` of ``i2moe fit``), one variant per K.
With ``--fusion NAME`` the experts use another backbone (its defaults, width ``hidden`` = D)
at the size's modalities, encoders and batch.

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_controlled.py mosi --repeats 7
    OMP_NUM_THREADS=1 python scripts/bench_controlled.py adni --repeats 3 --perturb-k 1 2 3 4
    OMP_NUM_THREADS=1 python scripts/bench_controlled.py mosi --repeats 7 --fusion lf

Logs the median CPU ms per training step, the ratios, and each variant's operator count.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import time
import types

import torch

from i2moe.execution import ExpertResult
from i2moe.experiments.bench.measure import MeasuredSteps, build_variant, count_ops
from i2moe.experiments.bench.sizes import SIZES
from i2moe.training.module import FusionLightningModule

log = logging.getLogger("bench_controlled")


def as_double_loop(module: FusionLightningModule) -> FusionLightningModule:
    """Make the expert stack of a ``loop`` I2MoE run each pass separately (E * P calls)."""
    stack = module.model.experts

    def run_passes(self, embeddings, perturbed, replacements):
        e = self.num_experts
        results = [self(embeddings)]  # the intact pass
        for q in perturbed:
            inputs = [
                replacements[m] if m == q else x.expand(e, *x.shape)
                for m, x in enumerate(embeddings)
            ]
            results.append(self(inputs, per_expert=True))
        return ExpertResult(
            torch.cat([r.latent for r in results], dim=1),
            torch.cat([r.output for r in results], dim=1),
            torch.stack([r.aux_loss for r in results]).mean(dim=0),
        )

    stack.run_passes = types.MethodType(run_passes, stack)
    return module


def without_reuse(module: FusionLightningModule) -> FusionLightningModule:
    """The fast path with every pass computed in full (``reuse_parts=False``)."""
    module.model.experts.reuse_parts = False
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--perturb-k", type=int, nargs="+", help="time the fast path per k")
    parser.add_argument("--fusion", help="another backbone than the size's transformer")
    parser.add_argument("--chunk-size", type=int, help="expert_chunk_size of the fast paths")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    torch.set_num_threads(1)
    size = SIZES[args.size]
    if args.fusion and args.fusion != "transformer":
        options = {} if args.fusion in ("switchgate", "moepp") else {"hidden": size.model["dim"]}
        model = {**size.model, "fusion": args.fusion, "fusion_options": options}
        size = dataclasses.replace(size, model=model)
    if args.chunk_size:
        size = dataclasses.replace(size, model={**size.model, "expert_chunk_size": args.chunk_size})
    cpu = torch.device("cpu")
    if args.perturb_k:
        modules = {f"fast_k{k}": build_variant(size, "fast", perturb_k=k) for k in args.perturb_k}
    else:
        modules = {
            "vanilla": build_variant(size, "vanilla"),
            "loop": build_variant(size, "loop"),
            "double_loop": as_double_loop(build_variant(size, "loop")),
            "fast_folded": without_reuse(build_variant(size, "fast")),
            "fast": build_variant(size, "fast"),
        }
    steps = {name: MeasuredSteps(m, size, size.batch, cpu, False) for name, m in modules.items()}
    for step in steps.values():
        step.train()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.process_time()
            step.train()
            times[name].append(time.process_time() - start)
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    log.info(
        "%s (%s): median CPU ms per training step over %d interleaved repeats",
        size.name,
        size.model["fusion"],
        args.repeats,
    )
    for name, value in ms.items():
        ops = count_ops(steps[name].train).count
        log.info("  %-12s %9.1f ms  %6d ops", name, value, ops)
    if args.perturb_k:
        return
    fast = ms["fast"]
    log.info(
        "  fast/vanilla %.2fx, loop/fast %.2fx, double_loop/fast %.2fx, fast_folded/fast %.2fx",
        fast / ms["vanilla"],
        ms["loop"] / fast,
        ms["double_loop"] / fast,
        ms["fast_folded"] / fast,
    )


if __name__ == "__main__":
    main()
