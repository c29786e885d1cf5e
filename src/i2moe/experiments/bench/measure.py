"""Measuring one variant of one size: its training step and inference batch, timed, their
operators counted, and the memory they take.

Shape letters as everywhere: E experts (n+2), P passes (1 + perturbed modalities), B batch.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from i2moe.config import ModelConfig
from i2moe.experiments.bench.sizes import (
    EXECUTION,
    OPTIMIZER,
    QUICK_SIZES,
    VARIANTS,
    BenchSize,
    passes,
    size_spec,
)
from i2moe.spec import ModalitySpec
from i2moe.training.module import FusionLightningModule

log = logging.getLogger(__name__)


class OpCounter(TorchDispatchMode):
    """Counts every ATen operator dispatched while active (forward, backward and optimizer).

    Under ``vmap`` it sees the batched operators that actually run, one per batched call, so the
    count stands in for the kernel launches of a GPU run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.by_name: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        self.by_name[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def variant_config(size: BenchSize, variant: str, perturb_k: int | None = None) -> ModelConfig:
    """The size's model as the vanilla backbone, or as I2MoE with the loop or the fast (vmap)
    expert execution."""
    if variant == "vanilla":
        return ModelConfig(**{**size.model, "vanilla": True})
    if variant not in EXECUTION:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    k = None if perturb_k is None else min(perturb_k, size.num_modalities)
    return ModelConfig(**{**size.model, "execution": EXECUTION[variant], "perturb_k": k})


def build_variant(
    size: BenchSize, variant: str, perturb_k: int | None = None
) -> FusionLightningModule:
    """The training module of one variant (:func:`variant_config`) with the size's loss."""
    specs = [ModalitySpec.from_shape(name, shape) for name, shape in size.modalities.items()]
    return FusionLightningModule.from_config(
        specs,
        size.task,
        size.num_outputs,
        variant_config(size, variant, perturb_k),
        size.loss,
        lr=OPTIMIZER["lr"],
    )


def make_batch(
    size: BenchSize, batch: int, device: torch.device, seed: int = 0
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Random inputs {name: [B, ...]} and targets for the size's task."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {
        name: torch.randn(batch, *shape, generator=generator).to(device)
        for name, shape in size.modalities.items()
    }
    if size.task == "multilabel":
        target = torch.randint(0, 2, (batch, size.num_outputs), generator=generator).float()
    else:
        target = torch.randint(0, size.num_outputs, (batch,), generator=generator)
    return inputs, target.to(device)


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(run: Callable[[], Any], *, warmup: int, repeats: int, device: torch.device) -> float:
    """Median wall time of ``run`` in milliseconds, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def count_ops(run: Callable[[], Any]) -> OpCounter:
    """Run once under an :class:`OpCounter` and return it."""
    with OpCounter() as counter:
        run()
    return counter


class MeasuredSteps:
    """The two things measured of one variant, on one fixed batch: a training step and an
    inference batch.

    The training step is the training module's: its model's forward and its loss
    (``module.loss`` at the module's current lambda_int), then backward and an Adam step
    (``OPTIMIZER``).
    """

    def __init__(
        self,
        module: FusionLightningModule,
        size: BenchSize,
        batch: int,
        device: torch.device,
        bf16: bool,
    ) -> None:
        self.module = module.to(device)
        self.runner: Callable[..., Any] = self.module.model
        self.device = device
        self.bf16 = bf16
        self.inputs, self.target = make_batch(size, batch, device)
        self.optimizer = torch.optim.Adam(self.module.parameters(), **OPTIMIZER)

    def train(self) -> None:
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device, self.bf16):
            output = self.runner(self.inputs)
            loss = self.module.loss(
                output, self.target, interaction_weight=self.module.interaction_weight
            ).total
        loss.backward()
        self.optimizer.step()

    def infer(self) -> None:
        self.module.eval()
        with torch.no_grad(), _autocast(self.device, self.bf16):
            self.runner(self.inputs)

    def try_compile(self, warmup: int) -> str:
        """Compile the model and warm both steps up; stay eager if that fails."""
        try:
            self.runner = torch.compile(self.module.model)
            for _ in range(max(warmup, 1)):
                self.train()
                self.infer()
        except Exception as error:  # noqa: BLE001 - best effort: any failure means eager
            log.warning(
                "torch.compile failed (%s: %s); measuring eager", type(error).__name__, error
            )
            self.runner = self.module.model
            return f"failed: {type(error).__name__}"
        return "compiled"


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


def _initialise_libraries(size: str, variant: str, device: torch.device) -> None:
    # One step of the tiny model loads what every run loads once (lazy imports, BLAS and
    # oneDNN buffers, about 90 MB on CPU), so the memory figure leaves it out.
    torch.manual_seed(0)
    tiny = QUICK_SIZES[size]
    steps = MeasuredSteps(build_variant(tiny, variant), tiny, tiny.batch, device, bf16=False)
    steps.train()
    steps.infer()


def measure_variant(job: dict[str, Any]) -> dict[str, Any]:
    """Measure one variant of one size on one device.

    Args:
        job: keys "size", "quick", "variant", "device", "repeats", "warmup", "perturb_k",
            "compile", "bf16", "threads" and "floor" (also time vanilla at batch E*P*B).

    Returns:
        "train_ms", "infer_ms", "ops_per_step", "peak_mem_mb" and "params"; also
        "floor_train_ms" when asked, and "compile" (its outcome) with ``torch.compile``.
    """
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    size = size_spec(job["size"], job["quick"])
    device = torch.device(job["device"])
    warmup, repeats = job["warmup"], job["repeats"]
    _initialise_libraries(job["size"], job["variant"], device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _peak_rss_mb()

    torch.manual_seed(0)
    module = build_variant(size, job["variant"], job["perturb_k"])
    params = sum(p.numel() for p in module.model.parameters())
    steps = MeasuredSteps(module, size, size.batch, device, job["bf16"])
    for _ in range(max(warmup, 1)):  # Adam's state exists from the first step on
        steps.train()
    ops = count_ops(steps.train).count  # eager, steady state
    result: dict[str, Any] = {}
    if job["compile"]:
        result["compile"] = steps.try_compile(warmup)
    train_ms = median_ms(steps.train, warmup=warmup, repeats=repeats, device=device)
    infer_ms = median_ms(steps.infer, warmup=warmup, repeats=repeats, device=device)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = _peak_rss_mb() - rss_before
    result.update(
        train_ms=train_ms,
        infer_ms=infer_ms,
        ops_per_step=ops,
        peak_mem_mb=peak_mb,
        params=params,
    )
    del steps, module
    if job.get("floor"):
        result["floor_train_ms"] = floor_train_ms(size, job, device)
    return result


def floor_train_ms(size: BenchSize, job: dict[str, Any], device: torch.device) -> float:
    """Vanilla training step over an E*P times larger batch: what the fast path folds into one."""
    num_experts = size.num_modalities + 2
    batch = num_experts * passes(size, job["perturb_k"]) * size.batch
    torch.manual_seed(0)
    steps = MeasuredSteps(build_variant(size, "vanilla"), size, batch, device, job["bf16"])
    if job["compile"]:
        steps.try_compile(job["warmup"])
    return median_ms(steps.train, warmup=job["warmup"], repeats=job["repeats"], device=device)
