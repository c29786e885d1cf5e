"""The expert stack: stacked weights, vmap path and loop path."""

import pytest
import torch
from torch import nn

from i2moe.execution import ExpertStack, InteractionExpert
from i2moe.fusion import build_fusion
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
