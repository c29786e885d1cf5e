"""Running E experts of one architecture: stacked weights, one batched call, or a loop.

The experts' parameters live stacked along a leading [E] axis in one copy of the expert module
(``ExpertStack.stacked``). Two paths compute the same thing:

- ``vmap`` (fast): ``torch.func.vmap`` over the expert axis of ``functional_call``; all experts
  and, during training, all perturbed passes (folded into the batch) in one batched call;
- ``loop`` (reference): a Python loop over experts, each called with its slice of the weights.

Both read the same parameters, so they can be compared on the same inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from i2moe.fusion.base import Fused, as_fused

EXECUTIONS = ("vmap", "loop")


class InteractionExpert(nn.Module):
    """One expert: a fusion backbone and its own prediction head."""

    def __init__(self, *, fusion: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.fusion = fusion
        self.head = head

    def forward(self, embeddings: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """[B, T_m, D] per modality -> (latent [B, H], output [B, C], aux_loss scalar)."""
        fused: Fused = as_fused(self.fusion(list(embeddings)))
        return fused.latent, self.head(fused.latent), fused.aux_loss


class ExpertResult(NamedTuple):
    latent: Tensor  # [E, N, H]
    output: Tensor  # [E, N, C]
    aux_loss: Tensor  # [E]


class ExpertStack(nn.Module):
    """E experts with identical architecture and stacked weights.

    Args:
        experts: E modules of the same architecture, each already initialised (independently,
            or as copies of one). Their weights are copied into stacked parameters.
        execution: "vmap" (fast path) or "loop" (reference path).
        chunk_size: experts per vmap call (None: all at once). Smaller chunks keep the working
            set in cache on CPU at large sizes, for more operator calls (docs/benchmarks.md).
    """

    def __init__(
        self,
        experts: Sequence[nn.Module],
        execution: str = "vmap",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if execution not in EXECUTIONS:
            raise ValueError(f"unknown execution '{execution}'; valid: {', '.join(EXECUTIONS)}")
        self.execution = execution
        self.chunk_size = chunk_size
        self.num_experts = len(experts)
        self.stacked = copy.deepcopy(experts[0])
        per_expert = [dict(e.named_parameters()) for e in experts]
        per_expert_buffers = [dict(e.named_buffers()) for e in experts]
        for name, _ in experts[0].named_parameters():
            data = torch.stack([p[name].detach() for p in per_expert])  # [E, ...]
            self._replace(name, nn.Parameter(data))
        for name, _ in experts[0].named_buffers():
            self._replace(name, torch.stack([b[name] for b in per_expert_buffers]), buffer=True)

    def _replace(self, name: str, value: Tensor, buffer: bool = False) -> None:
        owner_name, _, leaf = name.rpartition(".")
        owner = self.stacked.get_submodule(owner_name) if owner_name else self.stacked
        if buffer:
            owner.register_buffer(leaf, value)
        else:
            delattr(owner, leaf)
            owner.register_parameter(leaf, value)

    def _weights(self) -> dict[str, Tensor]:
        return {
            **dict(self.stacked.named_parameters()),
            **dict(self.stacked.named_buffers()),
        }

    def expert_weights(self, e: int) -> dict[str, Tensor]:
        """Expert ``e``'s slice of the stacked weights (views that carry gradients)."""
        return {name: w[e] for name, w in self._weights().items()}

    def _call_one(self, weights: dict[str, Tensor], embeddings: list[Tensor]):
        return functional_call(self.stacked, weights, (embeddings,))

    def forward(self, embeddings: Sequence[Tensor], *, per_expert: bool = False) -> ExpertResult:
        """Run every expert.

        Args:
            embeddings: M tensors, [N, T_m, D] shared by all experts, or [E, N, T_m, D] with
                ``per_expert=True`` (each expert sees its own input, e.g. its perturbed passes).
        """
        embeddings = list(embeddings)
        if self.execution == "loop":
            results = [
                self._call_one(
                    self.expert_weights(e),
                    [x[e] for x in embeddings] if per_expert else embeddings,
                )
                for e in range(self.num_experts)
            ]
            latent, output, aux = (torch.stack(parts) for parts in zip(*results, strict=True))
            return ExpertResult(latent, output, aux)
        batched = vmap(
            self._call_one,
            in_dims=(0, 0 if per_expert else None),
            randomness="different",
            chunk_size=self.chunk_size,
        )
        return ExpertResult(*batched(self._weights(), embeddings))
