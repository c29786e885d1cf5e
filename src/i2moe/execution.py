"""Running E experts of one architecture: stacked weights, one batched call, or a loop.

The experts' parameters live stacked along a leading [E] axis in one copy of the expert module
(``ExpertStack.stacked``). Two paths compute the same thing:

- ``vmap`` (fast): ``torch.func.vmap`` over the expert axis of ``functional_call``; all experts
  and, during training, all perturbed passes (folded into the batch) in one batched call. For a
  :class:`~i2moe.fusion.base.SeparableFusion` the passes also share the work that sees one
  modality alone (:func:`fuse_passes`);
- ``loop`` (reference): a Python loop over experts, each called with its slice of the weights
  on its passes folded into the batch (:func:`fold_passes`).

Both read the same parameters, so they can be compared on the same inputs.

Folding passes into the batch must not let them interact. A backbone whose rows do interact
(a sparse MoE layer's expert capacity and load-balancing loss count the tokens of a call) sets
the class attribute ``batch_groups = True`` and takes ``forward(embeddings, *, groups)``;
:func:`fuse_passes` then calls it with ``groups=P``, and each pass is computed exactly as if it
ran alone (``i2moe.fusion.switchgate``).

Shape letters: E experts, P passes, M modalities, B batch, T tokens, D width, H fused width,
C outputs; N rows of a call (B, or P*B for folded passes).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from i2moe.fusion.base import Fused, SeparableFusion, as_fused

EXECUTIONS = ("vmap", "loop")


def fold_passes(
    embeddings: Sequence[Tensor], perturbed: Sequence[int], replacements: Mapping[int, Tensor]
) -> list[Tensor]:
    """One expert's P passes folded into the batch, pass-major: M tensors [P*B, T_m, D].

    Pass 0 is intact; pass p replaces modality ``perturbed[p - 1]`` by its replacement.
    """
    return [
        torch.cat([replacements[m] if m == q else x for q in (None, *perturbed)])
        for m, x in enumerate(embeddings)
    ]


def fuse_passes(
    fusion: nn.Module,
    embeddings: Sequence[Tensor],
    perturbed: Sequence[int],
    replacements: Mapping[int, Tensor],
    *,
    reuse_parts: bool = True,
) -> Fused | Tensor:
    """A backbone on all P passes of :func:`fold_passes`, with results [P*B, ...].

    A :class:`SeparableFusion` (with ``reuse_parts``) computes each modality's part on the
    intact embedding [B, T_m, D] once, and on its replacement once if it is perturbed, and
    fuses the assembled passes; other backbones run on the folded embeddings. Both give the
    same result (tests/test_execution.py), the first with less arithmetic: each pass changes
    one of the M modalities, so (P - 1) * (M - 1) of the P * M parts are repeats. A backbone
    with ``batch_groups`` runs on the folded embeddings with ``groups=P``.
    """
    if getattr(fusion, "batch_groups", False):
        return fusion(fold_passes(embeddings, perturbed, replacements), groups=1 + len(perturbed))
    if not (reuse_parts and isinstance(fusion, SeparableFusion)):
        return fusion(fold_passes(embeddings, perturbed, replacements))
    num_modalities = len(embeddings)
    computed = fusion.modality_parts(
        [*enumerate(embeddings), *((m, replacements[m]) for m in perturbed)]
    )
    intact = computed[:num_modalities]
    replaced = dict(zip(perturbed, computed[num_modalities:], strict=True))
    # A part is a tuple of tensors: fold the passes of its i-th tensor like embeddings.
    folded = [
        fold_passes([part[i] for part in intact], perturbed, {m: replaced[m][i] for m in perturbed})
        for i in range(len(intact[0]))
    ]  # per tensor of a part, per modality: [P*B, ...]
    return fusion.fuse_parts(list(zip(*folded, strict=True)))


class InteractionExpert(nn.Module):
    """One expert: a fusion backbone and its own prediction head."""

    def __init__(self, *, fusion: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.fusion = fusion
        self.head = head

    def forward(
        self,
        embeddings: list[Tensor],
        *,
        perturbed: Sequence[int] = (),
        replacements: Mapping[int, Tensor] | None = None,
        reuse_parts: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """[B, T_m, D] per modality -> (latent [B, H], output [B, C], aux_loss scalar).

        With ``replacements`` (modality -> [B, T_m, D]) the expert runs every pass of
        :func:`fold_passes` and the latent and output are [P*B, ...] (:func:`fuse_passes`).
        """
        if replacements is None:
            result = self.fusion(list(embeddings))
        else:
            result = fuse_passes(
                self.fusion, embeddings, perturbed, replacements, reuse_parts=reuse_parts
            )
        fused: Fused = as_fused(result)
        return fused.latent, self.head(fused.latent), fused.aux_loss


class ExpertResult(NamedTuple):
    latent: Tensor  # [E, N, H]
    output: Tensor  # [E, N, C]
    aux_loss: Tensor  # [E]


def _stacked(results: Iterable[tuple[Tensor, Tensor, Tensor]]) -> ExpertResult:
    """The experts' (latent, output, aux_loss), one call each -> stacked along [E]."""
    return ExpertResult(*(torch.stack(parts) for parts in zip(*results, strict=True)))


class ExpertStack(nn.Module):
    """E experts with identical architecture and stacked weights.

    Args:
        experts: E modules of the same architecture, each already initialised (independently,
            or as copies of one). Their weights are copied into stacked parameters.
        execution: "vmap" (fast path) or "loop" (reference path).
        chunk_size: experts per vmap call (None: all at once). Smaller chunks keep the working
            set in cache on CPU at large sizes, for more operator calls (docs/benchmarks.md).
        reuse_parts: on the vmap path, let a separable backbone share the intact modalities'
            parts across passes (:func:`fuse_passes`); False only to measure what that saves.
    """

    def __init__(
        self,
        experts: Sequence[nn.Module],
        execution: str = "vmap",
        chunk_size: int | None = None,
        reuse_parts: bool = True,
    ) -> None:
        super().__init__()
        if execution not in EXECUTIONS:
            raise ValueError(f"unknown execution '{execution}'; valid: {', '.join(EXECUTIONS)}")
        self.execution = execution
        self.chunk_size = chunk_size
        self.reuse_parts = reuse_parts
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

    def expert(self, e: int) -> nn.Module:
        """Expert ``e`` as a module of its own, of the experts' architecture.

        Its parameters and buffers are views of slice ``e`` of the stacked tensors: they share
        storage, so the module computes what expert e computes in the stack (on either path),
        now and after in-place updates of the stack (optimizer steps, ``load_state_dict``),
        and writing into them (a BatchNorm's running statistics in training mode included)
        changes the stack. The parameters are leaves of their own: gradients through the
        module reach its parameters' ``.grad``, not the stack's. Moving or casting the stack
        (``.to(device)``, ``.double()``) gives it new storage; take the module again after.
        """
        if not -self.num_experts <= e < self.num_experts:
            raise IndexError(f"expert {e} out of range for {self.num_experts} experts")
        views = {}
        for stacked in self._weights().values():
            view = stacked.detach()[e]
            if isinstance(stacked, nn.Parameter):
                view = nn.Parameter(view, requires_grad=stacked.requires_grad)
            views[id(stacked)] = view
        # deepcopy takes a tensor found in its memo as is: the copy holds the views.
        return copy.deepcopy(self.stacked, memo=views)

    def _call_one(self, weights: dict[str, Tensor], embeddings: list[Tensor], **options):
        return functional_call(self.stacked, weights, (embeddings,), options)

    def forward(self, embeddings: Sequence[Tensor], *, per_expert: bool = False) -> ExpertResult:
        """Run every expert.

        Args:
            embeddings: M tensors, [N, T_m, D] shared by all experts, or [E, N, T_m, D] with
                ``per_expert=True`` (each expert sees its own input, e.g. its perturbed passes).
        """
        embeddings = list(embeddings)
        if self.execution == "loop":
            return _stacked(
                self._call_one(
                    self.expert_weights(e),
                    [x[e] for x in embeddings] if per_expert else embeddings,
                )
                for e in range(self.num_experts)
            )
        batched = vmap(
            self._call_one,
            in_dims=(0, 0 if per_expert else None),
            randomness="different",
            chunk_size=self.chunk_size,
        )
        return ExpertResult(*batched(self._weights(), embeddings))

    def run_passes(
        self,
        embeddings: Sequence[Tensor],
        perturbed: Sequence[int],
        replacements: Mapping[int, Tensor],
    ) -> ExpertResult:
        """Every expert on its training passes (the experts must be :class:`InteractionExpert`).

        Args:
            embeddings: M intact embeddings [B, T_m, D], shared by all experts.
            perturbed: the modalities replaced in passes 1 .. P-1, in pass order.
            replacements: perturbed modality -> [E, B, T_m, D], each expert's own replacement.

        Returns:
            latent [E, P*B, H] and output [E, P*B, C], pass-major (:func:`fold_passes`), and
            aux_loss [E].
        """
        embeddings, perturbed = list(embeddings), list(perturbed)
        replacements = {m: replacements[m] for m in perturbed}
        if self.execution == "loop":
            return _stacked(
                self._call_one(
                    self.expert_weights(e),
                    embeddings,
                    perturbed=perturbed,
                    replacements={m: r[e] for m, r in replacements.items()},
                    reuse_parts=False,
                )
                for e in range(self.num_experts)
            )

        def call(weights: dict[str, Tensor], own: dict[int, Tensor]):
            return self._call_one(
                weights,
                embeddings,
                perturbed=perturbed,
                replacements=own,
                reuse_parts=self.reuse_parts,
            )

        batched = vmap(call, randomness="different", chunk_size=self.chunk_size)
        return ExpertResult(*batched(self._weights(), replacements))
