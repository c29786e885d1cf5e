"""A finished run's model as a TorchScript or ONNX file, checked against PyTorch (docs/export.md).

The exported model is the eval-mode intact pass of the run's best checkpoint:

- inputs: one float32 tensor [B, ...] per modality, in the run's modality order, then
  ``observed`` [B, M] bool (False where a sample lacks a modality);
- outputs: ``prediction`` [B, C] and, for I2MoE, ``weights`` [B, E] (the reweighting
  weights, experts in ``I2MoE.expert_names`` order). A vanilla fusion run has ``prediction``
  only.

The batch axis is dynamic. The experts run one module each (:class:`UnstackedExperts`), since
``torch.func.functional_call``, which both of :class:`~i2moe.execution.ExpertStack`'s paths use,
does not trace; modules whose forward reads the batch size with ``len`` are wrapped
(:data:`BATCH_FREE`). A missing modality's embedding is replaced as the model replaces it,
except under the ``random`` masking: the model's per-sample keyed noise hashes the raw input
bytes, which no graph can express, so the file holds one fixed noise draw per modality instead
(:func:`missing_fills`).

After writing, the file is loaded back (``torch.jit.load`` or ``onnxruntime``), run on the
run's test split and compared with the PyTorch model; at a largest absolute difference of
:data:`TOLERANCE` or more nothing is written and :class:`~i2moe.runs.files.RunError` is raised.

Shape letters: B batch, M modalities, T tokens, D width, E experts, C outputs.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from i2moe.encoders import PatchTokenizer
from i2moe.execution import ExpertStack
from i2moe.model import I2MoE, VanillaFusion
from i2moe.reweighting import GlobalWeights
from i2moe.runs.files import RunError
from i2moe.runs.loading import load_run, run_data

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
TOLERANCE = 1e-4  # largest absolute difference from the PyTorch model that passes
OBSERVED = "observed"  # name of the missing-modality mask input
METADATA_KEY = "i2moe"  # TorchScript extra file ``i2moe.json`` / ONNX metadata property
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
ONNX_INSTALL = 'pip install "i2moe[export]"'
ONNX_MIN_TORCH = "2.6"
FIXED_DRAW_SEED = 0  # seed of the fixed noise that stands in for a missing modality (random)
# (backbone, format) pairs that do not export, and why (docs/export.md).
KNOWN_LIMITS: dict[tuple[str, str], str] = {
    ("switchgate", "torchscript"): (
        "its expert capacity is computed from the number of tokens in the batch, which "
        "torch.jit.trace fixes to the example batch's; --format onnx keeps it dynamic"
    ),
}


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_run` wrote and how closely the file matches the PyTorch model.

    Attributes:
        path: the file written.
        format: "torchscript" or "onnx".
        fusion: the run's backbone ("vanilla <name>" for a vanilla run).
        inputs: input names: the modalities in order, then ``observed``.
        outputs: output names: ``prediction`` (and ``weights`` for I2MoE).
        max_difference: largest absolute difference from the PyTorch model over the outputs
            and the test samples.
        samples: test samples compared.
        missing_samples: test samples lacking at least one modality.
        keyed_noise_difference: under the ``random`` masking, the largest absolute difference
            on ``missing_samples`` between the file (fixed draw) and the PyTorch model's keyed
            noise; None otherwise or without such samples. Not part of the check.
    """

    path: Path
    format: str
    fusion: str
    inputs: list[str]
    outputs: list[str]
    max_difference: float
    samples: int
    missing_samples: int
    keyed_noise_difference: float | None = None


class UnstackedExperts(nn.Module):
    """The experts of an :class:`~i2moe.execution.ExpertStack`, each a module with its own copy
    of its slice of the stacked weights, run one after the other.

    Computes what the stack computes on intact embeddings, with plain module calls that
    ``torch.jit.trace`` and ``torch.export`` record.
    """

    def __init__(self, stack: ExpertStack) -> None:
        super().__init__()
        self.members = nn.ModuleList(_own_copy(stack.expert(e)) for e in range(stack.num_experts))

    def forward(self, embeddings: list[Tensor]) -> Tensor:
        """M embeddings [B, T_m, D] -> the experts' outputs [E, B, C]."""
        return torch.stack([expert(embeddings)[1] for expert in self.members])


def _own_copy(expert: nn.Module) -> nn.Module:
    """``expert`` with parameters and buffers in storage of their own, not views of a stack
    (a saved view would carry the whole stacked tensor)."""
    expert = copy.deepcopy(expert)  # a Parameter's deepcopy clones its data
    for owner in expert.modules():
        for name, buffer in list(owner.named_buffers(recurse=False)):
            owner.register_buffer(name, buffer.clone())
    return expert.requires_grad_(False)


class BatchFreePatchTokenizer(nn.Module):
    """A :class:`~i2moe.encoders.PatchTokenizer` that reads no batch size: its own forward's
    ``view(len(x), ...)`` is a constant to ``torch.jit.trace`` and ``torch.export``."""

    def __init__(self, tokenizer: PatchTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, x: Tensor) -> Tensor:
        """[B, F] -> [B, P, D]."""
        tokenizer = self.tokenizer
        chunks = F.pad(x.flatten(1), (0, tokenizer.pad)).unflatten(
            1, (tokenizer.num_patches, tokenizer.chunk)
        )  # [B, P, chunk]
        return tokenizer.proj(chunks) + tokenizer.patch_offset


class BatchFreeGlobalWeights(nn.Module):
    """:class:`~i2moe.reweighting.GlobalWeights` (the Simple-Weight ablation) expanded to the
    batch by its traced shape rather than ``len(pooled)``."""

    def __init__(self, weights: GlobalWeights) -> None:
        super().__init__()
        self.weights = weights

    def forward(self, pooled: Tensor) -> Tensor:
        """[B, ...] -> weights [B, E], the same row for every sample."""
        row = (self.weights.logits / self.weights.temperature).softmax(dim=-1)  # [E]
        return row.expand(pooled.shape[0], -1)


# Modules whose forward fixes the batch size under tracing -> a wrapper that does not.
BATCH_FREE: dict[type[nn.Module], Callable[[Any], nn.Module]] = {
    PatchTokenizer: BatchFreePatchTokenizer,
    GlobalWeights: BatchFreeGlobalWeights,
}


def make_batch_free(root: nn.Module) -> nn.Module:
    """``root`` with each module of a :data:`BATCH_FREE` type wrapped, in place."""
    for name, module in list(root.named_modules()):
        wrapper = BATCH_FREE.get(type(module))
        if wrapper is None or not name:
            continue
        owner_name, _, leaf = name.rpartition(".")
        owner = root.get_submodule(owner_name) if owner_name else root
        setattr(owner, leaf, wrapper(module))
    return root


class ExportableModel(nn.Module):
    """A model's intact eval forward with positional tensor inputs and named outputs.

    Args:
        model: an eval-mode :class:`~i2moe.model.I2MoE` or :class:`~i2moe.model.VanillaFusion`
            (deep-copied; the original is left as it is).
        fills: for I2MoE, per modality what replaces a missing modality's embedding: a
            [T_m, D] tensor, or None for the current batch's mean embedding (the ``mean``
            masking before any training step); see :func:`missing_fills`.
    """

    def __init__(
        self, model: I2MoE | VanillaFusion, fills: Sequence[Tensor | None] | None = None
    ) -> None:
        super().__init__()
        model = make_batch_free(copy.deepcopy(model).eval().requires_grad_(False))
        self.modality_names = list(model.modality_names)
        self.is_i2moe = isinstance(model, I2MoE)
        if self.is_i2moe:
            if fills is None or len(fills) != len(self.modality_names):
                raise ValueError(f"an I2MoE export needs one fill per modality, got {fills}")
            self.encoders = model.encoders
            self.reweighting = model.reweighting
            self.experts = UnstackedExperts(model.experts)
            self.batch_mean = [fill is None for fill in fills]
            for m, fill in enumerate(fills):
                self.register_buffer(f"fill_{m}", torch.zeros(0) if fill is None else fill)
        else:
            self.fusion_model = model

    @property
    def output_names(self) -> list[str]:
        return ["prediction", "weights"] if self.is_i2moe else ["prediction"]

    def forward(self, *inputs: Tensor) -> dict[str, Tensor]:
        """M modality batches [B, ...] then observed [B, M] bool -> ``prediction`` [B, C] (and
        ``weights`` [B, E])."""
        *values, observed = inputs
        batch = dict(zip(self.modality_names, values, strict=True))
        if not self.is_i2moe:
            return {"prediction": self.fusion_model(batch, observed).prediction}
        embeddings = self.replace_missing(self.encoders(batch, observed), observed)
        # I2MoE.forward_embeddings in eval mode, without its len(batch): torch.export would
        # fix the batch size to the example's.
        pooled = torch.cat([emb.mean(dim=1) for emb in embeddings], dim=-1)  # [B, M*D]
        weights = self.reweighting(pooled)  # [B, E]
        outputs = self.experts(embeddings)  # [E, B, C]
        return {"prediction": torch.einsum("be,ebc->bc", weights, outputs), "weights": weights}

    def replace_missing(self, embeddings: Sequence[Tensor], observed: Tensor) -> list[Tensor]:
        """M embeddings [B, T_m, D] with those of missing modalities replaced by the fills."""
        return [
            torch.where(observed[:, m, None, None], emb, self._fill(m, emb))
            for m, emb in enumerate(embeddings)
        ]

    def _fill(self, m: int, embedding: Tensor) -> Tensor:
        if self.batch_mean[m]:
            return embedding.mean(dim=0)  # [T_m, D]
        return getattr(self, f"fill_{m}").to(embedding.dtype)


def missing_fills(model: I2MoE, shapes: Sequence[torch.Size]) -> list[Tensor | None]:
    """What the export puts in place of a missing modality's embedding, per modality.

    ``zero``: zeros; ``mean``: the running mean of the training embeddings (None before any
    training step: the batch mean, as the model does); ``random``: one fixed standard normal
    draw (seed :data:`FIXED_DRAW_SEED`), the same for every sample.

    Args:
        model: the I2MoE model.
        shapes: each modality's embedding shape [T_m, D].
    """
    perturbation = model.perturbation
    if perturbation.strategy == "zero":
        return [torch.zeros(shape) for shape in shapes]
    if perturbation.strategy == "mean":
        means = [perturbation.running_mean(m) for m in range(len(shapes))]
        return [mean.detach().clone() if mean.numel() else None for mean in means]
    generator = torch.Generator().manual_seed(FIXED_DRAW_SEED)
    return [torch.randn(shape, generator=generator) for shape in shapes]


def export_run(
    run: str | Path,
    output: str | Path,
    *,
    format: str = "torchscript",
    overwrite: bool = False,
    batch_size: int = 256,
) -> ExportReport:
    """Export a finished run's eval-mode model and check the file against PyTorch.

    Args:
        run: a run folder written by ``i2moe fit`` (one seed).
        output: the file to write; its folder is created if missing.
        format: "torchscript" or "onnx".
        overwrite: replace an existing ``output``.
        batch_size: test samples per call of the check.

    Returns:
        The file written and the measured difference from the PyTorch model.

    Raises:
        ValueError: an unknown format.
        ImportError: ``onnx``, ``onnxruntime`` or ``onnxscript`` is missing for an ONNX export.
        RunError: a bad run folder or output path, a backbone that does not export, or a file
            that differs from the PyTorch model by :data:`TOLERANCE` or more (nothing is then
            written).
    """
    if format not in FORMATS:
        raise ValueError(f"format: {format!r}; expected one of {', '.join(FORMATS)}")
    if format == "onnx":
        require_onnx()
    output = Path(output)
    check_output_file(output, overwrite=overwrite)
    module, config, info = load_run(run)
    fusion = "vanilla " + config.model.fusion if config.model.vanilla else config.model.fusion
    limit = KNOWN_LIMITS.get((config.model.fusion, format))
    if limit is not None:
        raise RunError(f"{run}: the {fusion!r} backbone does not export to {format}: {limit}")
    model = module.model
    if not isinstance(model, I2MoE | VanillaFusion):
        raise RunError(f"{run}: holds a {type(model).__name__}; expected an I2MoE or vanilla run")
    if OBSERVED in model.modality_names:
        raise RunError(f"{run}: a modality is named {OBSERVED!r}, the name of the mask input")
    test = run_data(config, info, None).test
    example = _example_inputs(test, model.modality_names)
    exportable = ExportableModel(model, _fills(model, example))
    metadata = _metadata(model, info, config.model.fusion, format)
    inputs = [*model.modality_names, OBSERVED]

    with tempfile.TemporaryDirectory(prefix="i2moe-export-") as folder:
        staged = Path(folder) / output.name
        _export_file(exportable, example, staged, format, fusion, inputs, metadata)
        call = _load_exported(staged, format, inputs, exportable.output_names)
        unfaithful = f"the {fusion!r} backbone does not export faithfully to {format}"
        try:
            check = compare_with_model(model, exportable, call, test, batch_size)
        except RunError as error:
            raise RunError(f"{unfaithful}: {error}; nothing written to {output}") from error
        if not check.max_difference < TOLERANCE:
            raise RunError(
                f"{unfaithful}: the file differs from the PyTorch model by up to "
                f"{check.max_difference:.3g} on the test split (tolerance {TOLERANCE:g}); "
                f"nothing written to {output}"
            )
        _place(staged, output)
    report = ExportReport(
        path=output,
        format=format,
        fusion=fusion,
        inputs=inputs,
        outputs=exportable.output_names,
        max_difference=check.max_difference,
        samples=check.samples,
        missing_samples=check.missing_samples,
        keyed_noise_difference=check.keyed_noise_difference,
    )
    log.info(
        "%s (%s, %s): max abs difference from the PyTorch model %.3g on %d test samples "
        "(tolerance %g)",
        output,
        format,
        fusion,
        report.max_difference,
        report.samples,
        TOLERANCE,
    )
    if report.keyed_noise_difference is not None:
        log.warning(
            "%d test samples lack a modality: the export replaces it by a fixed noise draw, not "
            "the per-sample keyed noise of the random masking, so their predictions differ from "
            "'i2moe predict' by up to %.3g (docs/export.md)",
            report.missing_samples,
            report.keyed_noise_difference,
        )
    return report


def require_onnx() -> None:
    """Raise one ImportError naming the install command if an ONNX package is missing, and a
    RunError if PyTorch predates its ``torch.export``-based ONNX exporter."""
    import importlib.util

    if torch.torch_version.TorchVersion(torch.__version__) < ONNX_MIN_TORCH:
        raise RunError(
            f"exporting to ONNX needs PyTorch {ONNX_MIN_TORCH} or newer (its torch.export-based "
            f"exporter); this is PyTorch {torch.__version__}"
        )
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"exporting to ONNX needs {', '.join(missing)}: {ONNX_INSTALL}", name=missing[0]
        )


def check_output_file(output: Path, *, overwrite: bool) -> None:
    """Refuse an output path that is a folder, lies under a file, or exists (without
    ``overwrite``)."""
    if output.is_dir():
        raise RunError(f"{output}: is a folder; expected the path of the file to write")
    if output.exists() and not overwrite:
        raise RunError(f"{output}: exists already; pass --overwrite to replace it")
    blocking = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise RunError(f"{output}: {blocking} is a file; expected a folder (or none) there")


def _example_inputs(test: Dataset, names: Sequence[str]) -> tuple[Tensor, ...]:
    """The first test samples as example inputs, at least two rows (``torch.export`` takes a
    batch of one as a fixed size)."""
    batch = next(iter(DataLoader(test, batch_size=4, shuffle=False)))
    values = [batch["inputs"][name].float() for name in names]
    observed = batch["observed"].to(torch.bool)
    repeats = -(-2 // len(observed))  # ceil(2 / rows)
    return tuple(x.repeat(repeats, *([1] * (x.dim() - 1))) for x in (*values, observed))


def _fills(model: I2MoE | VanillaFusion, example: tuple[Tensor, ...]) -> list[Tensor | None]:
    if not isinstance(model, I2MoE):
        return []
    *values, observed = example
    with torch.no_grad():
        embeddings = model.encoders(dict(zip(model.modality_names, values, strict=True)), observed)
    return missing_fills(model, [emb.shape[1:] for emb in embeddings])


def _metadata(
    model: I2MoE | VanillaFusion, info: dict[str, Any], fusion: str, format: str
) -> dict[str, Any]:
    """What the file carries about itself (TorchScript: extra file ``i2moe.json``; ONNX: the
    ``i2moe`` metadata property), for code that loads it without i2moe."""
    is_i2moe = isinstance(model, I2MoE)
    return {
        "format": format,
        "fusion": fusion,
        "vanilla": not is_i2moe,
        "task": info["task"],
        "class_names": info.get("class_names"),
        "modalities": [
            {"name": m["name"], "shape": list(m["shape"]), "dtype": "float32"}
            for m in info["modalities"]
        ],
        "inputs": [*model.modality_names, OBSERVED],
        "outputs": ["prediction", "weights"] if is_i2moe else ["prediction"],
        "experts": model.expert_names if is_i2moe else [],
        "masking": model.perturbation.strategy if is_i2moe else "zero",
        "standardization": info.get("standardization") or {},
    }


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' tracer and deprecation warnings and progress lines; what they
    warn about (shapes fixed by the example) is caught by the numeric check instead."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in names:
                logging.getLogger(name).setLevel(logging.ERROR)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _export_file(
    model: ExportableModel,
    example: tuple[Tensor, ...],
    path: Path,
    format: str,
    fusion: str,
    inputs: list[str],
    metadata: dict[str, Any],
) -> None:
    try:
        with torch.no_grad(), _quiet_exporters():
            if format == "torchscript":
                traced = torch.jit.trace(model, example, strict=False, check_trace=False)
                extra = {f"{METADATA_KEY}.json": json.dumps(metadata)}
                torch.jit.save(traced, str(path), _extra_files=extra)
            else:
                _export_onnx(model, example, path, inputs, metadata)
    except Exception as error:  # any exporter failure is this backbone's, said in one line
        raise RunError(
            f"the {fusion!r} backbone cannot be exported to {format}: {_summary(error)}"
        ) from error


def _export_onnx(
    model: ExportableModel,
    example: tuple[Tensor, ...],
    path: Path,
    inputs: list[str],
    metadata: dict[str, Any],
) -> None:
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        model,
        example,
        input_names=inputs,
        output_names=model.output_names,
        dynamic_shapes=(tuple({0: batch} for _ in example),),
        dynamo=True,
        verbose=False,
    )
    program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
    program.save(str(path), external_data=False)


def _summary(error: BaseException) -> str:
    """An exporter's or runtime's error in one line: its first, or for the TorchScript
    interpreter (whose first line only says that it failed) its last."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[-1] if "TorchScript interpreter" in lines[0] else lines[0]


def _load_exported(
    path: Path, format: str, inputs: list[str], outputs: list[str]
) -> Callable[[tuple[Tensor, ...]], list[Tensor]]:
    """The file loaded back as a function: inputs in order -> outputs in order."""
    if format == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's deprecation notice
            loaded = torch.jit.load(str(path), map_location="cpu")

        def call_torchscript(values: tuple[Tensor, ...]) -> list[Tensor]:
            with torch.no_grad():
                result = loaded(*values)
            return [result[name] for name in outputs]

        return call_torchscript

    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def call_onnx(values: tuple[Tensor, ...]) -> list[Tensor]:
        feed = {name: value.numpy() for name, value in zip(inputs, values, strict=True)}
        return [torch.from_numpy(np.asarray(out)) for out in session.run(outputs, feed)]

    return call_onnx


@dataclass(frozen=True)
class Comparison:
    """The exported file against the PyTorch model on a split (see :class:`ExportReport`)."""

    max_difference: float
    samples: int
    missing_samples: int
    keyed_noise_difference: float | None


@torch.no_grad()
def compare_with_model(
    model: I2MoE | VanillaFusion,
    exportable: ExportableModel,
    call: Callable[[tuple[Tensor, ...]], list[Tensor]],
    dataset: Dataset,
    batch_size: int = 256,
    single: int = 4,
) -> Comparison:
    """Largest absolute difference between an exported file and the PyTorch model.

    The reference is ``model(inputs, observed)``, what ``i2moe predict`` computes. Under the
    ``random`` masking, a batch with samples lacking a modality is compared with
    ``model.forward_embeddings`` on the embeddings the file sees (the fixed draw in place of
    the missing ones), and the file's distance from the keyed-noise prediction on those
    samples is returned apart.

    Args:
        model: the run's eval-mode model.
        exportable: the module that was exported.
        call: the exported file, loaded back.
        dataset: the samples to compare on, in batches of ``batch_size``.
        batch_size: samples per call.
        single: the first ``single`` samples are compared once more one at a time, a batch
            size other than the example's (a trace fixes what it computed from that size).
    """
    model.eval()
    fixed_draw = isinstance(model, I2MoE) and model.perturbation.strategy == "random"
    largest, keyed_largest = 0.0, 0.0
    samples, missing = 0, 0
    first = Subset(dataset, range(min(single, len(dataset))))
    batches = [
        *((batch, True) for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False)),
        *((batch, False) for batch in DataLoader(first, batch_size=1, shuffle=False)),
    ]
    for batch, counted in batches:
        values = [batch["inputs"][name].float() for name in model.modality_names]
        inputs = dict(zip(model.modality_names, values, strict=True))
        observed = batch["observed"].to(torch.bool)
        try:
            exported = call((*values, observed))
        except Exception as error:  # a file that runs on the example batch only, say
            raise RunError(
                f"the exported file fails on a batch of {len(observed)} test samples: "
                f"{_summary(error)}"
            ) from error
        keyed = _outputs(model(inputs, observed))
        lacking = ~observed.all(dim=1)  # [B]
        reference = keyed
        if fixed_draw and bool(lacking.any()):
            embeddings = model.encoders(inputs, observed)
            replaced = exportable.replace_missing(embeddings, observed)
            reference = _outputs(model.forward_embeddings(replaced))
            for ours, theirs in zip(exported, keyed, strict=True):
                keyed_largest = max(keyed_largest, _largest(ours[lacking], theirs[lacking]))
        for ours, theirs in zip(exported, reference, strict=True):
            largest = max(largest, _largest(ours, theirs))
        if counted:
            samples += len(observed)
            missing += int(lacking.sum())
    keyed_difference = keyed_largest if fixed_draw and missing else None
    return Comparison(largest, samples, missing, keyed_difference)


def _outputs(output: Any) -> list[Tensor]:
    """prediction (and weights) of an I2MoEOutput or FusionOutput, in the file's order."""
    weights = getattr(output, "weights", None)
    return [output.prediction, *([] if weights is None else [weights])]


def _largest(a: Tensor, b: Tensor) -> float:
    """Largest absolute difference; infinite when the shapes differ or a value is NaN."""
    if a.shape != b.shape:
        return float("inf")
    if a.numel() == 0:
        return 0.0
    difference = (a.to(torch.float64) - b.to(torch.float64)).abs().max()
    return float("inf") if torch.isnan(difference) else float(difference)


def _place(staged: Path, output: Path) -> None:
    """Copy the checked file beside ``output`` and rename it into place (atomically)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(staged, temporary)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
