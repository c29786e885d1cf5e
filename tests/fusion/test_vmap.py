"""Every registered backbone under ``torch.func.vmap`` over 3 stacked experts equals calling
the 3 modules one by one (eval mode): outputs, auxiliary losses and parameter gradients.

This is the contract of the execution engine, which runs the n + 2 interaction experts as one
vmapped ``functional_call`` over their parameters stacked along a leading expert axis
(``i2moe.execution.ExpertStack``); here ``torch.func.stack_module_state`` stacks them.
"""

import copy
import warnings

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from i2moe.fusion import FUSIONS, as_fused

DIM = 8
TOKENS = [2, 1, 3]
EXPERTS = 3


def embeddings(batch: int = 2, seed: int = 0, lead: tuple[int, ...] = ()) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*lead, batch, t, DIM, generator=generator) for t in TOKENS]


def probes(width: int) -> torch.Tensor:
    # A fixed random weighting of the latent: latent.sum() has (almost) no gradient through
    # a final LayerNorm.
    return torch.randn(width, generator=torch.Generator().manual_seed(7))


def objective(result, probe: torch.Tensor) -> torch.Tensor:
    fused = as_fused(result)
    return (fused.latent * probe).sum(dim=(-2, -1)) + fused.aux_loss


@pytest.fixture(autouse=True)
def vmap_fallback_is_an_error():
    """A missing batching rule makes vmap loop silently; turn its warning into a failure."""
    setter = getattr(torch._C._functorch, "_set_vmap_fallback_warning_enabled", None)
    if setter is not None:
        setter(True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*performance drop.*")
        yield
    if setter is not None:
        setter(False)


@pytest.mark.parametrize("stacked_inputs", [False, True], ids=["shared", "stacked"])
@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_vmap_matches_loop(name, stacked_inputs):
    modules = []
    for seed in range(EXPERTS):
        torch.manual_seed(seed)  # independently initialised experts
        modules.append(FUSIONS[name](num_modalities=len(TOKENS), dim=DIM, tokens=TOKENS).eval())
    params, buffers = stack_module_state(modules)
    template = copy.deepcopy(modules[0]).to("meta")
    probe = probes(modules[0].out_dim)

    if stacked_inputs:
        inputs = embeddings(lead=(EXPERTS,))
        per_expert = [[x[k] for x in inputs] for k in range(EXPERTS)]
    else:
        inputs = embeddings()
        per_expert = [inputs] * EXPERTS

    def call(p, b, *x):
        return as_fused(functional_call(template, (p, b), x))

    batched = vmap(call, in_dims=(0, 0, 0 if stacked_inputs else None), randomness="different")(
        params, buffers, inputs
    )
    objective(batched, probe).sum().backward()

    for k, module in enumerate(modules):
        single = as_fused(module(per_expert[k]))
        torch.testing.assert_close(batched.latent[k], single.latent)
        torch.testing.assert_close(batched.aux_loss[k], single.aux_loss)
        objective(single, probe).backward()
        for pname, param in module.named_parameters():
            if param.grad is None:  # e.g. InterpretCC's gating network behind eval hard gates
                stacked = params[pname].grad
                assert stacked is None or not stacked[k].any(), pname
                continue
            torch.testing.assert_close(params[pname].grad[k], param.grad, msg=pname)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_vmap_runs_in_train_mode_with_different_randomness(name):
    modules = []
    for seed in range(EXPERTS):
        torch.manual_seed(seed)
        modules.append(FUSIONS[name](num_modalities=len(TOKENS), dim=DIM, tokens=TOKENS))
    params, buffers = stack_module_state(modules)
    template = copy.deepcopy(modules[0]).to("meta").train()

    def call(p, b, *x):
        return as_fused(functional_call(template, (p, b), x))

    torch.manual_seed(0)
    out = vmap(call, in_dims=(0, 0, None), randomness="different")(params, buffers, embeddings())
    assert out.latent.shape == (EXPERTS, 2, modules[0].out_dim)
    objective(out, probes(modules[0].out_dim)).sum().backward()
    assert all(p.grad is not None for p in params.values())
