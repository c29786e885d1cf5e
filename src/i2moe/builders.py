"""Builders that fill in the numbers: from modality specs and a ModelConfig to a model.

``build_model`` is what the command line uses; ``i2moe_model`` / ``vanilla_model`` are the
short Python forms.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from i2moe.config import ABLATIONS, ModelConfig
from i2moe.encoders import PatchTokenizer, build_encoder
from i2moe.execution import InteractionExpert
from i2moe.fusion import build_fusion
from i2moe.model import I2MoE, PredictionHead, VanillaFusion
from i2moe.perturbation import Perturbation
from i2moe.reweighting import GlobalWeights, ReweightingMLP
from i2moe.spec import ModalitySpec


def build_encoders(
    specs: Sequence[ModalitySpec], config: ModelConfig
) -> tuple[dict[str, nn.Module], list[int]]:
    """Each modality's encoder and the number of tokens it emits.

    With ``num_patches`` > 1, an encoder that returns a vector [B, D] is followed by a
    :class:`PatchTokenizer` cutting that vector into P tokens (docs/method.md section 9).
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
    """An :class:`I2MoE`, or a :class:`VanillaFusion` with ``config.vanilla``."""
    if config.ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation '{config.ablation}'; valid: {', '.join(ABLATIONS)}")
    encoders, tokens = build_encoders(specs, config)
    if config.vanilla:
        return VanillaFusion(
            encoders=encoders, expert=_expert(specs, tokens, num_outputs, config), task=task
        )

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
    *,
    task: str = "classification",
    **config: Any,
) -> VanillaFusion:
    """The backbone alone (vanilla fusion) for ``{name: per-sample shape}``."""
    config = {**config, "vanilla": True}
    return build_model(_specs(modalities), task, num_outputs, replace(ModelConfig(), **config))
