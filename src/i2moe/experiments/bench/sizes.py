"""What the benchmark measures: the model sizes (the paper's and tiny ones), the variants and
the options of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from i2moe.config import LossConfig

VARIANTS = ("vanilla", "loop", "fast")
EXECUTION = {"loop": "loop", "fast": "vmap"}
DEVICES = ("cpu", "cuda", "all")
DESCRIPTION = "Time, operator count and memory: vanilla backbone vs I2MoE loop vs fast path."
# Adam's settings of every measured training step (foreach: one fused update per parameter
# group, the same operator count on CPU and GPU), and how the JSON names them.
OPTIMIZER = {"lr": 1e-4, "foreach": True}
OPTIMIZER_TEXT = "Adam(lr=1e-4, foreach=True)"


@dataclass(frozen=True)
class BenchSize:
    """One benchmark size: modalities, task, and the model and loss configurations.

    Attributes:
        name: "mosi", "adni" or "imdb".
        modalities: name -> per-sample shape, in the model's modality order.
        task: "classification" or "multilabel".
        num_outputs: C.
        model: keyword fields of :class:`i2moe.config.ModelConfig`.
        loss: the training loss's weights (:class:`i2moe.config.LossConfig`).
        batch: B.
        source: where the numbers come from, for the JSON and the docs.
    """

    name: str
    modalities: dict[str, tuple[int, ...]]
    task: str
    num_outputs: int
    model: dict[str, Any]
    loss: LossConfig = field(default_factory=LossConfig)
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
    }


# The paper's Table A (docs/method.md section 9) I2MoE-MulT settings; feature sizes as in
# section 10 for MOSI and MM-IMDb, stand-ins for ADNI (its image is a volume in the paper).
SIZES: dict[str, BenchSize] = {
    "mosi": BenchSize(
        name="mosi",
        modalities={"vision": (50, 20), "audio": (50, 5), "text": (50, 300)},
        task="classification",
        num_outputs=2,
        model=_transformer(
            dim=256, patches=4, heads=1, layers=1, head_layers=1, reweighting=(256, 3)
        ),
        loss=LossConfig(interaction_weight=0.005),
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
        ),
        loss=LossConfig(interaction_weight=0.5),
        source="Table A ADNI: heads 4, hidden 256, patches 16, fusion/prediction layers 2/2, "
        "reweighting 256 x 2; four vector modalities with stand-in feature sizes, MLP encoders",
    ),
    "imdb": BenchSize(
        name="imdb",
        modalities={"image": (4096,), "text": (300,)},
        task="multilabel",
        num_outputs=23,
        model=_transformer(
            dim=256, patches=4, heads=4, layers=2, head_layers=2, reweighting=(256, 3)
        ),
        loss=LossConfig(interaction_weight=0.5),
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
    """The size ``name``, tiny with ``quick``."""
    table = QUICK_SIZES if quick else SIZES
    if name not in table:
        raise ValueError(f"unknown size '{name}'; valid: {', '.join(table)}")
    return table[name]


def passes(size: BenchSize, perturb_k: int | None) -> int:
    """P: the intact pass and one per perturbed modality."""
    return 1 + (size.num_modalities if perturb_k is None else min(perturb_k, size.num_modalities))
