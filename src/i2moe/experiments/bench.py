"""``i2moe bench``: the cost of I2MoE against its vanilla backbone (``docs/benchmarks.md``).

For the transformer backbone at the paper's MOSI-, ADNI- and MM-IMDb-like sizes (batch 32) it
measures three variants: the vanilla backbone (``vanilla_model``), I2MoE with the reference loop
over experts (``execution="loop"``) and I2MoE with the fast path (``execution="vmap"``). For
each: milliseconds per training step (forward + backward + Adam step on the total loss) and per
inference batch (eval, no_grad), the median of repeated runs after warm-up; the number of
dispatched ATen operators per training step (a device-independent stand-in for GPU kernel
launches); peak memory; parameter count. The fast variant also carries ``floor_train_ms``: one
vanilla training step over an E*P times larger batch, the arithmetic floor of the fast path.

Each variant runs in a fresh ``python -m i2moe.experiments.bench --worker`` subprocess by default, so that
the CPU memory figure (the growth of the RSS high-water mark from ``resource.getrusage``) is that
variant's alone; ``--in-process`` trades this for speed. Shape letters as everywhere: E experts
(n+2), P passes (1 + perturbed modalities), B batch.

Run ``python -m i2moe.experiments.bench --help`` or ``i2moe bench --help``; ``docs/benchmarks.md`` has the
numbers and how to read them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from i2moe.builders import i2moe_model, vanilla_model
from i2moe.losses import total_loss

log = logging.getLogger(__name__)

VARIANTS = ("vanilla", "loop", "fast")
EXECUTION = {"loop": "loop", "fast": "vmap"}
DEVICES = ("cpu", "cuda", "all")
DESCRIPTION = "Time, operator count and memory: vanilla backbone vs I2MoE loop vs fast path."


@dataclass(frozen=True)
class BenchSize:
    """One benchmark size: modalities, task and the model configuration (ModelConfig fields).

    Attributes:
        name: "mosi", "adni" or "imdb".
        modalities: name -> per-sample shape, in the model's modality order.
        task: "classification" or "multilabel".
        num_outputs: C.
        model: keyword fields of :class:`i2moe.builders.ModelConfig`.
        batch: B.
        source: where the numbers come from, for the JSON and the docs.
    """

    name: str
    modalities: dict[str, tuple[int, ...]]
    task: str
    num_outputs: int
    model: dict[str, Any]
    batch: int = 32
    source: str = ""

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)


def _transformer(
    *,
    dim: int,
    patches: int,
    heads: int,
    layers: int,
    head_layers: int,
    reweighting: tuple[int, int],
    temperature: float = 2.0,
    interaction_weight: float = 0.5,
) -> dict[str, Any]:
    """ModelConfig fields of I2MoE-MulT from the paper's table rows."""
    return {
        "fusion": "transformer",
        "fusion_options": {"num_layers": layers, "num_heads": heads},
        "dim": dim,
        "num_patches": patches,
        "head_hidden": dim,
        "head_layers": head_layers,
        "reweighting_hidden": reweighting[0],
        "reweighting_layers": reweighting[1],
        "temperature": temperature,
        "interaction_weight": interaction_weight,
    }


# The paper's Table A (docs/method.md section 9) I2MoE-MulT settings; feature sizes as in its
# section 10 for MOSI and MM-IMDb, stand-ins for ADNI (its image is a volume in the paper).
SIZES: dict[str, BenchSize] = {
    "mosi": BenchSize(
        name="mosi",
        modalities={"vision": (50, 20), "audio": (50, 5), "text": (50, 300)},
        task="classification",
        num_outputs=2,
        model=_transformer(
            dim=256,
            patches=4,
            heads=1,
            layers=1,
            head_layers=1,
            reweighting=(256, 3),
            temperature=2.0,
            interaction_weight=0.005,
        ),
        source="Table A MOSI: heads 1, hidden 256, patches 4, fusion/prediction layers 1/1, "
        "reweighting 256 x 3; GRU encoders (one token per modality)",
    ),
    "adni": BenchSize(
        name="adni",
        modalities={"image": (4096,), "genomic": (1024,), "clinical": (64,), "biospecimen": (32,)},
        task="classification",
        num_outputs=3,
        model=_transformer(
            dim=256,
            patches=16,
            heads=4,
            layers=2,
            head_layers=2,
            reweighting=(256, 2),
            temperature=1.0,
            interaction_weight=0.5,
        ),
        source="Table A ADNI: heads 4, hidden 256, patches 16, fusion/prediction layers 2/2, "
        "reweighting 256 x 2; four vector modalities with stand-in feature sizes, MLP encoders",
    ),
    "imdb": BenchSize(
        name="imdb",
        modalities={"image": (4096,), "text": (300,)},
        task="multilabel",
        num_outputs=23,
        model=_transformer(
            dim=256,
            patches=4,
            heads=4,
            layers=2,
            head_layers=2,
            reweighting=(256, 3),
            temperature=2.0,
            interaction_weight=0.5,
        ),
        source="Table A IMDB: heads 4, hidden 256, patches 4, fusion/prediction layers 2/2, "
        "reweighting 256 x 3; VGG (4096) and word2vec (300) vectors, MLP encoders",
    ),
}

_TINY = _transformer(dim=16, patches=2, heads=2, layers=1, head_layers=2, reweighting=(16, 2))
QUICK_SIZES: dict[str, BenchSize] = {
    "mosi": BenchSize(
        name="mosi",
        modalities={"vision": (6, 5), "audio": (6, 3), "text": (6, 12)},
        task="classification",
        num_outputs=2,
        model=_TINY,
        batch=4,
        source="--quick: tiny",
    ),
    "adni": BenchSize(
        name="adni",
        modalities={"image": (32,), "genomic": (24,), "clinical": (8,), "biospecimen": (6,)},
        task="classification",
        num_outputs=3,
        model=_TINY,
        batch=4,
        source="--quick: tiny",
    ),
    "imdb": BenchSize(
        name="imdb",
        modalities={"image": (32,), "text": (12,)},
        task="multilabel",
        num_outputs=5,
        model=_TINY,
        batch=4,
        source="--quick: tiny",
    ),
}


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


@dataclass
class BenchOptions:
    """What one benchmark run measures and how.

    Attributes:
        sizes: names from :data:`SIZES`.
        device: "cpu", "cuda" or "all" (CPU, and CUDA when present).
        quick: tiny sizes, one repeat (for tests and CI).
        repeats: timed runs per measurement; the median is reported.
        warmup: untimed runs before timing.
        perturb_k: perturb only k modalities per step (the Less-Forward speed option).
        compile: ``torch.compile`` the models (best effort; eager if it fails).
        bf16: run forward and loss under bfloat16 autocast.
        threads: ``torch.set_num_threads`` (None keeps torch's default).
        in_process: measure every variant in this process instead of a fresh subprocess.
    """

    sizes: list[str] = field(default_factory=lambda: list(SIZES))
    device: str = "cpu"
    quick: bool = False
    repeats: int = 3
    warmup: int = 1
    perturb_k: int | None = None
    compile: bool = False
    bf16: bool = False
    threads: int | None = None
    in_process: bool = False


def size_spec(name: str, quick: bool) -> BenchSize:
    table = QUICK_SIZES if quick else SIZES
    if name not in table:
        raise ValueError(f"unknown size '{name}'; valid: {', '.join(table)}")
    return table[name]


def passes(size: BenchSize, perturb_k: int | None) -> int:
    """P: the intact pass and one per perturbed modality."""
    return 1 + (size.num_modalities if perturb_k is None else min(perturb_k, size.num_modalities))


def build_variant(size: BenchSize, variant: str, perturb_k: int | None = None) -> torch.nn.Module:
    """The vanilla backbone, or I2MoE with the loop or the fast (vmap) expert execution."""
    if variant == "vanilla":
        return vanilla_model(size.modalities, size.num_outputs, **size.model)
    if variant not in EXECUTION:
        raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
    k = None if perturb_k is None else min(perturb_k, size.num_modalities)
    return i2moe_model(
        size.modalities,
        size.num_outputs,
        task=size.task,
        execution=EXECUTION[variant],
        perturb_k=k,
        **size.model,
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


class _Steps:
    """A model with its optimizer and batch: one training step, one inference batch."""

    def __init__(
        self,
        model: torch.nn.Module,
        size: BenchSize,
        batch: int,
        device: torch.device,
        bf16: bool,
    ) -> None:
        self.model = model.to(device)
        self.runner: Callable[..., Any] = self.model
        self.size = size
        self.device = device
        self.bf16 = bf16
        self.inputs, self.target = make_batch(size, batch, device)
        # foreach: one fused update per parameter group, the same count on CPU and GPU.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, foreach=True)

    def train(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device, self.bf16):
            output = self.runner(self.inputs)
            loss = total_loss(
                output,
                self.target,
                self.size.task,
                interaction_weight=self.size.model["interaction_weight"],
            ).total
        loss.backward()
        self.optimizer.step()

    def infer(self) -> None:
        self.model.eval()
        with torch.no_grad(), _autocast(self.device, self.bf16):
            self.runner(self.inputs)

    def try_compile(self, warmup: int) -> str:
        """Compile the model and warm both steps up; stay eager if that fails."""
        try:
            self.runner = torch.compile(self.model)
            for _ in range(max(warmup, 1)):
                self.train()
                self.infer()
        except Exception as error:  # noqa: BLE001 - best effort: any failure means eager
            log.warning(
                "torch.compile failed (%s: %s); measuring eager", type(error).__name__, error
            )
            self.runner = self.model
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
    steps = _Steps(build_variant(tiny, variant), tiny, tiny.batch, device, bf16=False)
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
    model = build_variant(size, job["variant"], job["perturb_k"])
    params = sum(p.numel() for p in model.parameters())
    steps = _Steps(model, size, size.batch, device, job["bf16"])
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
    del steps, model
    if job.get("floor"):
        result["floor_train_ms"] = floor_train_ms(size, job, device)
    return result


def floor_train_ms(size: BenchSize, job: dict[str, Any], device: torch.device) -> float:
    """Vanilla training step over an E*P times larger batch: what the fast path folds into one."""
    num_experts = size.num_modalities + 2
    batch = num_experts * passes(size, job["perturb_k"]) * size.batch
    torch.manual_seed(0)
    steps = _Steps(build_variant(size, "vanilla"), size, batch, device, job["bf16"])
    if job["compile"]:
        steps.try_compile(job["warmup"])
    return median_ms(steps.train, warmup=job["warmup"], repeats=job["repeats"], device=device)


def _run_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Measure ``job`` in a fresh ``python -m i2moe.experiments.bench --worker`` process."""
    with tempfile.TemporaryDirectory(prefix="i2moe-bench-") as folder:
        job_path = Path(folder) / "job.json"
        result_path = Path(folder) / "result.json"
        job_path.write_text(json.dumps({**job, "result_path": str(result_path)}))
        done = subprocess.run(
            [sys.executable, "-m", "i2moe.experiments.bench", "--worker", str(job_path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not result_path.exists():
            raise RuntimeError(
                f"benchmark worker for {job['size']}/{job['variant']}/{job['device']} failed "
                f"(exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        return json.loads(result_path.read_text())


def _worker_main(job_path: str) -> int:
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
        "source": size.source,
        "experts": num_experts,
        "passes": num_passes,
        "perturb_k": None if options.perturb_k is None else num_passes - 1,
        "floor_batch": num_experts * num_passes * size.batch,
        "optimizer": "Adam(lr=1e-4, foreach=True)",
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
                result = measure_variant(job) if options.in_process else _run_worker(job)
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


if __name__ == "__main__":
    # A measurement subprocess started by _run_worker: ``--worker JOB.json``.
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit("usage: python -m i2moe.experiments.bench --worker JOB.json (use `i2moe bench`)")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    sys.exit(_worker_main(sys.argv[2]))
