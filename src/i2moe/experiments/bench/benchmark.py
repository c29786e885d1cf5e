"""A benchmark run: every size and variant on every device, each variant measured in a fresh
worker subprocess, and the table of the results."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from i2moe.experiments.bench.sizes import (
    OPTIMIZER_TEXT,
    VARIANTS,
    BenchOptions,
    BenchSize,
    passes,
    size_spec,
)

log = logging.getLogger(__name__)

WORKER = [sys.executable, "-m", "i2moe.experiments.bench", "--worker"]


def run_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Measure ``job`` in a fresh ``python -m i2moe.experiments.bench --worker`` process."""
    with tempfile.TemporaryDirectory(prefix="i2moe-bench-") as folder:
        job_path = Path(folder) / "job.json"
        result_path = Path(folder) / "result.json"
        job_path.write_text(json.dumps({**job, "result_path": str(result_path)}))
        done = subprocess.run([*WORKER, str(job_path)], capture_output=True, text=True)
        if done.returncode != 0 or not result_path.exists():
            raise RuntimeError(
                f"benchmark worker for {job['size']}/{job['variant']}/{job['device']} failed "
                f"(exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        return json.loads(result_path.read_text())


def worker_main(job_path: str) -> int:
    """What a worker process does: measure the job in ``job_path``, write its result."""
    from i2moe.experiments.bench.measure import measure_variant

    job = json.loads(Path(job_path).read_text())
    result = measure_variant(job)
    Path(job["result_path"]).write_text(json.dumps(result))
    return 0


def _devices(choice: str) -> list[str]:
    if choice == "cpu":
        return ["cpu"]
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available on this machine")
        return ["cuda"]
    if not torch.cuda.is_available():
        log.info("CUDA is not available: measuring CPU only")
        return ["cpu"]
    return ["cpu", "cuda"]


def _config(size: BenchSize, device: str, options: BenchOptions) -> dict[str, Any]:
    num_passes = passes(size, options.perturb_k)
    num_experts = size.num_modalities + 2
    if device == "cuda":
        memory = "torch.cuda.max_memory_allocated"
    elif options.in_process:
        memory = "growth of this process's RSS high-water mark (getrusage); a lower bound"
    else:
        memory = "growth of the RSS high-water mark (getrusage) in a fresh subprocess"
    return {
        "modalities": {name: list(shape) for name, shape in size.modalities.items()},
        "task": size.task,
        "num_outputs": size.num_outputs,
        "batch": size.batch,
        "model": size.model,
        "loss": dataclasses.asdict(size.loss),
        "source": size.source,
        "experts": num_experts,
        "passes": num_passes,
        "perturb_k": None if options.perturb_k is None else num_passes - 1,
        "floor_batch": num_experts * num_passes * size.batch,
        "optimizer": OPTIMIZER_TEXT,
        "repeats": options.repeats,
        "warmup": options.warmup,
        "threads": options.threads or torch.get_num_threads(),
        "compile": options.compile,
        "bf16": options.bf16,
        "peak_mem": memory,
        "ops": "ATen operators per eager training step (TorchDispatchMode)",
        "torch": torch.__version__,
    }


def run_benchmark(options: BenchOptions) -> list[dict[str, Any]]:
    """Measure every size on every device; one JSON-ready entry per size and device."""
    from i2moe.experiments.bench.measure import measure_variant

    if options.perturb_k is not None and options.perturb_k < 1:
        raise ValueError(f"--perturb-k must be at least 1, got {options.perturb_k}")
    if options.repeats < 1 or options.warmup < 0:
        raise ValueError("--repeats must be at least 1 and --warmup at least 0")
    sizes = [size_spec(name, options.quick) for name in options.sizes]
    if options.threads:
        torch.set_num_threads(options.threads)
    entries = []
    for device in _devices(options.device):
        for size in sizes:
            config = _config(size, device, options)
            entry: dict[str, Any] = {
                "size": size.name,
                "n": size.num_modalities,
                "device": device,
                "config": config,
            }
            for variant in VARIANTS:
                log.info("bench %s / %s / %s", size.name, device, variant)
                job = {
                    "size": size.name,
                    "quick": options.quick,
                    "variant": variant,
                    "device": device,
                    "repeats": options.repeats,
                    "warmup": options.warmup,
                    "perturb_k": options.perturb_k,
                    "compile": options.compile,
                    "bf16": options.bf16,
                    "threads": options.threads,
                    "floor": variant == "vanilla",
                }
                result = measure_variant(job) if options.in_process else run_worker(job)
                if "compile" in result:
                    config.setdefault("compile_outcome", {})[variant] = result.pop("compile")
                if variant == "vanilla":
                    floor = result.pop("floor_train_ms")
                entry[variant] = result
            entry["fast"]["floor_train_ms"] = floor
            entries.append(entry)
    return entries


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def format_table(entries: Sequence[dict[str, Any]]) -> str:
    """A readable table: one row per variant, then the ratios of each size and device."""
    header = (
        f"{'size':<6}{'device':<7}{'variant':<9}{'train ms':>11}{'infer ms':>11}"
        f"{'ops/step':>10}{'peak MB':>10}{'params':>12}"
    )
    lines = [header, "-" * len(header)]
    for entry in entries:
        for variant in VARIANTS:
            v = entry[variant]
            lines.append(
                f"{entry['size']:<6}{entry['device']:<7}{variant:<9}{v['train_ms']:>11.2f}"
                f"{v['infer_ms']:>11.2f}{v['ops_per_step']:>10d}{v['peak_mem_mb']:>10.1f}"
                f"{v['params']:>12,d}"
            )
        fast, loop, vanilla = entry["fast"], entry["loop"], entry["vanilla"]
        floor_batch = entry["config"]["floor_batch"]
        lines.append(
            f"{'':<13}floor (vanilla at batch {floor_batch}): train {fast['floor_train_ms']:.2f} ms"
        )
        lines.append(
            f"{'':<13}train fast/vanilla {_ratio(fast['train_ms'], vanilla['train_ms'])}, "
            f"loop/fast {_ratio(loop['train_ms'], fast['train_ms'])}, "
            f"fast/floor {_ratio(fast['train_ms'], fast['floor_train_ms'])}; "
            f"infer fast/vanilla {_ratio(fast['infer_ms'], vanilla['infer_ms'])}"
        )
        lines.append(
            f"{'':<13}ops fast/vanilla {_ratio(fast['ops_per_step'], vanilla['ops_per_step'])}, "
            f"loop/vanilla {_ratio(loop['ops_per_step'], vanilla['ops_per_step'])}, "
            f"loop/fast {_ratio(loop['ops_per_step'], fast['ops_per_step'])}"
        )
    return "\n".join(lines) + "\n"
