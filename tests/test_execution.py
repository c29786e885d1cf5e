"""The expert stack: stacked weights, vmap path and loop path."""

import pytest
import torch
from torch import nn

from i2moe.execution import ExpertStack, InteractionExpert, fold_passes
from i2moe.fusion import FUSIONS, build_fusion
from i2moe.fusion.base import SeparableFusion, as_fused
from i2moe.model import PredictionHead


def _experts(count=3, fusion="transformer"):
    torch.manual_seed(0)
    experts = []
    for _ in range(count):
        backbone = build_fusion(fusion, num_modalities=2, dim=8, tokens=[1, 3], num_heads=2)
        experts.append(InteractionExpert(fusion=backbone, head=PredictionHead(backbone.out_dim, 3)))
    return experts


def test_stacked_weights_keep_each_experts_initialisation():
    experts = _experts()
    stack = ExpertStack(experts)
    for e, expert in enumerate(experts):
        for name, p in expert.named_parameters():
            torch.testing.assert_close(stack.expert_weights(e)[name], p)
    # Independent initialisations differ.
    first = stack.stacked.head.net[0].weight
    assert not torch.equal(first[0], first[1])
    assert first.shape[0] == 3


@pytest.mark.parametrize("per_expert", [False, True])
def test_vmap_equals_loop_and_each_expert_alone(per_expert):
    experts = [e.eval() for e in _experts()]
    fast, slow = ExpertStack(experts, "vmap").eval(), ExpertStack(experts, "loop").eval()
    x = [torch.randn(3, 4, 1, 8), torch.randn(3, 4, 3, 8)]
    inputs = x if per_expert else [t[0] for t in x]
    a, b = fast(inputs, per_expert=per_expert), slow(inputs, per_expert=per_expert)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)
    for e, expert in enumerate(experts):
        alone = expert([t[e] for t in x] if per_expert else inputs)
        torch.testing.assert_close(a.output[e], alone[1])


def test_stack_moves_with_the_module_and_saves_stacked_state():
    stack = ExpertStack(_experts())
    state = stack.state_dict()
    assert state["stacked.head.net.0.weight"].shape[0] == 3
    clone = ExpertStack(_experts())
    clone.load_state_dict(state)
    torch.testing.assert_close(clone.stacked.head.net[0].weight, stack.stacked.head.net[0].weight)
    assert stack.double().stacked.head.net[0].weight.dtype == torch.float64


def test_chunked_vmap_equals_one_call():
    experts = [e.eval() for e in _experts(5)]
    x = [torch.randn(4, 1, 8), torch.randn(4, 3, 8)]
    whole = ExpertStack(experts).eval()(x)
    chunked = ExpertStack(experts, chunk_size=2).eval()(x)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b)


def test_unknown_execution_is_refused():
    with pytest.raises(ValueError, match="vmap, loop"):
        ExpertStack(_experts(), "threads")


def test_buffers_are_stacked_too():
    class WithBuffer(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.register_buffer("scale", torch.tensor(scale))
            self.proj = nn.Linear(4, 2)
            self.out_dim = 2

        def forward(self, embeddings):
            return self.proj(embeddings[0].mean(1)) * self.scale

    experts = [InteractionExpert(fusion=WithBuffer(s), head=nn.Identity()) for s in (1.0, 2.0)]
    x = [torch.randn(5, 1, 4)]
    result = ExpertStack(experts)(x)
    for e, expert in enumerate(experts):
        torch.testing.assert_close(result.output[e], expert(x)[1])
    torch.testing.assert_close(result.output[1], 2 * experts[1].fusion.proj(x[0].mean(1)))


TOKENS_3 = [1, 3, 2]


def _stack_of(fusion: str, count: int = 3, execution: str = "vmap") -> ExpertStack:
    torch.manual_seed(0)
    options = {"num_heads": 2} if fusion == "transformer" else {}
    experts = []
    for _ in range(count):
        backbone = build_fusion(fusion, num_modalities=3, dim=8, tokens=TOKENS_3, **options)
        experts.append(InteractionExpert(fusion=backbone, head=PredictionHead(backbone.out_dim, 3)))
    return ExpertStack(experts, execution).eval()


def _passes(batch=4, experts=3, perturbed=(0, 2)):
    generator = torch.Generator().manual_seed(1)
    embeddings = [torch.randn(batch, t, 8, generator=generator) for t in TOKENS_3]
    replacements = {
        m: torch.randn(experts, batch, TOKENS_3[m], 8, generator=generator) for m in perturbed
    }
    return embeddings, list(perturbed), replacements


def test_fold_passes_replaces_one_modality_per_pass():
    embeddings, perturbed, replacements = _passes()
    own = {m: r[1] for m, r in replacements.items()}  # expert 1's replacements
    folded = fold_passes(embeddings, perturbed, own)
    for m, x in enumerate(folded):
        passes = x.unflatten(0, (3, -1))  # [P, B, T, D]
        torch.testing.assert_close(passes[0], embeddings[m])
        for p, q in enumerate(perturbed, start=1):
            torch.testing.assert_close(passes[p], own[m] if m == q else embeddings[m])


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_run_passes_fast_equals_loop_and_each_expert_on_its_folded_passes(fusion):
    fast, slow = _stack_of(fusion), _stack_of(fusion, execution="loop")
    embeddings, perturbed, replacements = _passes()
    a = fast.run_passes(embeddings, perturbed, replacements)
    b = slow.run_passes(embeddings, perturbed, replacements)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)
    e = 2
    own = {m: r[e] for m, r in replacements.items()}
    expected = _each_pass_alone(slow, e, embeddings, perturbed, own)
    torch.testing.assert_close(a.output[e], expected)
    # Gradients of both paths agree for every stacked parameter.
    probe = torch.randn(a.output.shape, generator=torch.Generator().manual_seed(2))
    for result in (a, b):
        ((result.output * probe).sum() + result.aux_loss.sum()).backward()
    for (name, p), (_, q) in zip(
        fast.stacked.named_parameters(), slow.stacked.named_parameters(), strict=True
    ):
        if p.grad is None:  # e.g. InterpretCC's gate behind eval-mode hard gates
            assert q.grad is None or not q.grad.any(), name
            continue
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def _call_alone(stack: ExpertStack, e: int, inputs):
    return torch.func.functional_call(stack.stacked, stack.expert_weights(e), (inputs,))[1]


def _each_pass_alone(stack: ExpertStack, e: int, embeddings, perturbed, own):
    """Expert e's output [P*B, C] on its passes, each pass in a call of its own, pass-major."""
    passes = fold_passes(embeddings, perturbed, own)
    batch = len(embeddings[0])
    return torch.cat(
        [
            _call_alone(stack, e, [x[p * batch : (p + 1) * batch] for x in passes])
            for p in range(1 + len(perturbed))
        ]
    )


SEPARABLE = sorted(
    name
    for name in FUSIONS
    if isinstance(build_fusion(name, num_modalities=3, dim=8, tokens=TOKENS_3), SeparableFusion)
)


def test_the_dense_backbones_are_separable():
    assert SEPARABLE == ["ef", "interpretcc", "lf", "lrtf", "transformer"]


@pytest.mark.parametrize("fusion", SEPARABLE)
def test_separable_forward_equals_fusing_its_modality_parts(fusion):
    torch.manual_seed(0)
    options = {"num_heads": 2} if fusion == "transformer" else {}
    backbone = build_fusion(fusion, num_modalities=3, dim=8, tokens=TOKENS_3, **options).eval()
    embeddings, _, _ = _passes()
    whole = as_fused(backbone(embeddings))
    one_by_one = [backbone.modality_part(m, x) for m, x in enumerate(embeddings)]
    torch.testing.assert_close(as_fused(backbone.fuse_parts(one_by_one)).latent, whole.latent)


@pytest.mark.parametrize("fusion", SEPARABLE)
def test_fast_path_computes_each_modality_part_once_per_version(fusion):
    """Intact parts are computed once per expert, not once per pass: with 2 of 3 modalities
    perturbed the per-modality step sees (3 + 2) * B modality rows, and the backbone's own
    forward (the reference, which computes every pass in full) is not called."""
    batch = 4
    embeddings, perturbed, replacements = _passes(batch=batch)
    for reuse in (True, False):
        stack = _stack_of(fusion)
        stack.reuse_parts = reuse
        backbone = stack.stacked.fusion
        part_rows, forward_rows = [], []
        parts, forward = backbone.modality_parts, backbone.forward

        def counting_parts(inputs, parts=parts, seen=part_rows):
            seen.extend(x.shape[0] for _, x in inputs)
            return parts(inputs)

        def counting_forward(inputs, forward=forward, seen=forward_rows):
            seen.append(inputs[0].shape[0])
            return forward(inputs)

        backbone.modality_parts, backbone.forward = counting_parts, counting_forward
        stack.run_passes(embeddings, perturbed, replacements)
        if reuse:
            assert sum(part_rows) == (3 + len(perturbed)) * batch
            assert forward_rows == []
        else:
            assert forward_rows == [(1 + len(perturbed)) * batch]


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
@pytest.mark.parametrize("execution", ["vmap", "loop"])
def test_a_pass_does_not_depend_on_the_passes_beside_it(fusion, execution):
    """Every pass of run_passes is computed as if it ran alone: the intact pass equals the
    inference call, and the pass replacing modality 2 is the same with or without the others
    (SwitchGate's expert capacity and the load-balancing losses count one pass's tokens)."""
    stack = _stack_of(fusion, execution=execution)
    embeddings, _, replacements = _passes(perturbed=(0, 1, 2))
    batch = len(embeddings[0])
    many = stack.run_passes(embeddings, [0, 1, 2], replacements)
    few = stack.run_passes(embeddings, [2], {2: replacements[2]})
    intact = stack(embeddings)
    torch.testing.assert_close(many.output[:, :batch], intact.output)
    torch.testing.assert_close(few.output[:, :batch], intact.output)
    torch.testing.assert_close(many.output[:, 3 * batch :], few.output[:, batch:])
    torch.testing.assert_close(many.latent[:, 3 * batch :], few.latent[:, batch:])


@pytest.mark.parametrize("fusion", ["transformer", "switchgate", "lrtf"])
def test_expert_module_computes_the_stacked_expert(fusion):
    stack = _stack_of(fusion)
    embeddings, perturbed, replacements = _passes()
    for e in range(stack.num_experts):
        expert = stack.expert(e)
        assert isinstance(expert, InteractionExpert) and not expert.training
        latent, output, aux = expert(embeddings)
        result = stack(embeddings)
        torch.testing.assert_close(output, result.output[e])
        torch.testing.assert_close(latent, result.latent[e])
        torch.testing.assert_close(aux, result.aux_loss[e])
        own = {m: r[e] for m, r in replacements.items()}
        folded = expert(embeddings, perturbed=perturbed, replacements=own)[1]
        torch.testing.assert_close(
            folded, stack.run_passes(embeddings, perturbed, replacements).output[e]
        )


def test_expert_module_shares_storage_but_not_gradients():
    stack = ExpertStack(_experts())
    expert = stack.expert(1)
    stacked = stack.stacked.head.net[0].weight
    view = expert.head.net[0].weight
    assert view.data_ptr() == stacked[1].data_ptr() and view.is_leaf and view.requires_grad
    with torch.no_grad():
        stacked.mul_(2.0)  # an in-place update of the stack (e.g. an optimizer step)
    torch.testing.assert_close(view, stacked[1])
    x = [torch.randn(2, 1, 8), torch.randn(2, 3, 8)]
    expert(x)[1].sum().backward()
    assert view.grad is not None and stacked.grad is None
    assert stack.expert(-1).head.net[0].weight.data_ptr() == stacked[2].data_ptr()
    with pytest.raises(IndexError):
        stack.expert(3)
