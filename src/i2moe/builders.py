"""Builders that fill in the numbers: from modality specs and a :class:`ModelConfig` to a model.

``build_model`` is what the command line uses; ``i2moe_model`` / ``vanilla_model`` are the
short Python forms.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from i2moe.data.base import ModalitySpec
from i2moe.encoders import PatchTokenizer, build_encoder
from i2moe.execution import InteractionExpert
from i2moe.fusion import build_fusion
from i2moe.model import FusionModel, I2MoE, PredictionHead
from i2moe.perturbation import Perturbation
from i2moe.reweighting import GlobalWeights, ReweightingMLP

ABLATIONS = (
    "none",
    "no-interaction",
    "latent-contrastive",
    "simple-weight",
    "less-forward",
    "syn-red-only",
)


@dataclass
class ModelConfig:
    """Everything that decides the model's architecture and its interaction training.

    Attributes:
        fusion: registered backbone name (``i2moe.fusion.FUSIONS``).
        fusion_options: keyword options of that backbone's builder.
        vanilla: the backbone alone (no experts, no reweighting).
        dim: embedding width D shared by all modalities.
        num_patches: tokens per vector modality (1 = one vector token).
        encoders: modality name -> encoder name (default by the modality's kind).
        encoder_options: modality name -> encoder keyword options.
        head_hidden / head_layers: each expert's prediction head.
        reweighting_hidden / reweighting_layers / temperature: the reweighting MLP.
        masking: "random", "zero" or "mean" replacement in perturbed passes.
        interaction_weight: lambda_int.
        aux_weight: lambda_gate for the sparse backbones' load-balancing loss.
        ablation: one of ABLATIONS (METHOD.md section 6).
        perturb_k: modalities perturbed per step for "less-forward" (or as a speed option).
        execution: "vmap" (fast) or "loop" (reference).
        expert_chunk_size: experts per vmap call; None runs all at once (best on GPU; chunks
            of 2-3 can be faster on CPU at large sizes, docs/benchmarks.md).
        identical_init: start every expert from one initialisation (the authors' code) rather
            than independent initialisations (our default).
        evidence_weight: 0 (default) is the paper's training; above 0 trains the reweighter on
            interaction evidence from the perturbed passes instead of the task loss, so its
            weights name the interaction (our change; ``docs/faithfulness.md``).
    """

    fusion: str = "transformer"
    fusion_options: dict[str, Any] = field(default_factory=dict)
    vanilla: bool = False
    dim: int = 32
    num_patches: int = 1
    encoders: dict[str, str] = field(default_factory=dict)
    encoder_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_hidden: int = 64
    head_layers: int = 2
    reweighting_hidden: int = 128
    reweighting_layers: int = 2
    temperature: float = 1.0
    masking: str = "random"
    interaction_weight: float = 0.5
    aux_weight: float = 0.01
    ablation: str = "none"
    perturb_k: int | None = None
    execution: str = "vmap"
    expert_chunk_size: int | None = None
    identical_init: bool = False
    evidence_weight: float = 0.0


def build_encoders(
    specs: Sequence[ModalitySpec], config: ModelConfig
) -> tuple[dict[str, nn.Module], list[int]]:
    """Each modality's encoder and the number of tokens it emits.

    With ``num_patches`` > 1, an encoder that returns a vector [B, D] is followed by a
    :class:`PatchTokenizer` cutting that vector into P tokens (METHOD.md section 9).
    """
    encoders, tokens = {}, []
    for spec in specs:
        encoder = build_encoder(
            spec,
            config.dim,
            config.encoders.get(spec.name),
            **config.encoder_options.get(spec.name, {}),
        )
        emitted = _tokens_emitted(encoder, spec)
        if emitted is None and config.num_patches > 1:
            encoder = nn.Sequential(
                encoder, PatchTokenizer(config.dim, config.num_patches, config.dim)
            )
            emitted = config.num_patches
        encoders[spec.name] = encoder
        tokens.append(emitted or 1)
    return encoders, tokens


def _tokens_emitted(encoder: nn.Module, spec: ModalitySpec) -> int | None:
    """Tokens of a [B, T, D] output, None for a vector [B, D]; found by one tiny forward."""
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        out = encoder(torch.zeros(2, *spec.shape))
    encoder.train(was_training)
    return None if out.dim() == 2 else out.shape[1]


def _expert(specs, tokens, num_outputs: int, config: ModelConfig) -> InteractionExpert:
    fusion = build_fusion(
        config.fusion,
        num_modalities=len(specs),
        dim=config.dim,
        tokens=tokens,
        **config.fusion_options,
    )
    head = PredictionHead(
        fusion.out_dim, num_outputs, hidden=config.head_hidden, num_layers=config.head_layers
    )
    return InteractionExpert(fusion=fusion, head=head)


def build_model(
    specs: Sequence[ModalitySpec], task: str, num_outputs: int, config: ModelConfig
) -> nn.Module:
    """An :class:`I2MoE`, or a :class:`FusionModel` with ``config.vanilla``."""
    if config.ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation '{config.ablation}'; valid: {', '.join(ABLATIONS)}")
    encoders, tokens = build_encoders(specs, config)
    if config.vanilla:
        return FusionModel(encoders=encoders, expert=_expert(specs, tokens, num_outputs, config))

    num_modalities = len(specs)
    roles = ["syn", "red"] if config.ablation == "syn-red-only" else None
    num_experts = 2 if roles else num_modalities + 2
    if config.identical_init:
        first = _expert(specs, tokens, num_outputs, config)
        experts = [copy.deepcopy(first) for _ in range(num_experts)]
    else:
        experts = [_expert(specs, tokens, num_outputs, config) for _ in range(num_experts)]
    if config.ablation == "simple-weight":
        reweighting: nn.Module = GlobalWeights(num_experts, temperature=config.temperature)
    else:
        reweighting = ReweightingMLP(
            num_modalities * config.dim,
            num_experts,
            hidden=config.reweighting_hidden,
            num_layers=config.reweighting_layers,
            temperature=config.temperature,
        )
    perturb_k = config.perturb_k
    if config.ablation == "less-forward" and perturb_k is None:
        perturb_k = min(2, num_modalities - 1)  # the paper's k = 2; k = 1 when n = 2
    return I2MoE(
        encoders=encoders,
        experts=experts,
        reweighting=reweighting,
        task=task,
        perturbation=Perturbation(config.masking, num_modalities),
        roles=roles,
        interaction=config.ablation != "no-interaction",
        interaction_space="latent" if config.ablation == "latent-contrastive" else "output",
        perturb_k=perturb_k,
        execution=config.execution,
        expert_chunk_size=config.expert_chunk_size,
        evidence_weight=config.evidence_weight,
    )


def _specs(modalities: Mapping[str, Sequence[int] | ModalitySpec]) -> list[ModalitySpec]:
    return [
        m if isinstance(m, ModalitySpec) else ModalitySpec.from_shape(name, m)
        for name, m in modalities.items()
    ]


def i2moe_model(
    modalities: Mapping[str, Sequence[int] | ModalitySpec],
    num_outputs: int,
    *,
    task: str = "classification",
    **config: Any,
) -> I2MoE:
    """I2MoE for modalities given as ``{name: per-sample shape}``; options as in ModelConfig."""
    return build_model(_specs(modalities), task, num_outputs, replace(ModelConfig(), **config))


def vanilla_model(
    modalities: Mapping[str, Sequence[int] | ModalitySpec],
    num_outputs: int,
    **config: Any,
) -> FusionModel:
    """The backbone alone (vanilla fusion) for ``{name: per-sample shape}``."""
    config = {**config, "vanilla": True}
    return build_model(
        _specs(modalities), "classification", num_outputs, replace(ModelConfig(), **config)
    )
