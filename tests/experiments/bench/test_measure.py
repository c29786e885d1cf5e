"""Measuring one variant (i2moe.experiments.bench.measure): the operator counter, the training
step and the variants. Timings are never asserted."""

import pytest
import torch

from helpers import quick_bench_job
from i2moe.experiments.bench import measure
from i2moe.experiments.bench.sizes import QUICK_SIZES
from i2moe.model import I2MoE, VanillaFusion


@pytest.mark.parametrize("size", ["mosi", "adni"])
def test_loop_counts_more_operators_at_every_size(size):
    ops = {
        v: measure.measure_variant(quick_bench_job(size, v))["ops_per_step"]
        for v in ("loop", "fast")
    }
    assert ops["loop"] > ops["fast"]


def test_op_counter_sees_forward_backward_and_optimizer():
    weight = torch.nn.Parameter(torch.randn(3, 3))
    optimizer = torch.optim.Adam([weight], foreach=True)

    def step():
        optimizer.zero_grad()
        (weight @ torch.ones(3)).sum().backward()
        optimizer.step()

    step()
    forward = measure.count_ops(lambda: weight @ torch.ones(3)).count
    counter = measure.count_ops(step)
    assert counter.count > forward > 0
    assert any(name.startswith("aten._foreach") for name in counter.by_name)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="vanilla, loop, fast"):
        measure.build_variant(QUICK_SIZES["imdb"], "threads")


def test_variants_are_the_backbone_alone_and_i2moe_with_each_execution():
    size = QUICK_SIZES["adni"]
    assert isinstance(measure.build_variant(size, "vanilla").model, VanillaFusion)
    loop, fast = measure.build_variant(size, "loop"), measure.build_variant(size, "fast", 2)
    assert isinstance(loop.model, I2MoE) and isinstance(fast.model, I2MoE)
    assert (loop.model.experts.execution, fast.model.experts.execution) == ("loop", "vmap")
    assert fast.model.perturb_k == 2
    assert loop.loss.interaction_weight == size.loss.interaction_weight


def test_training_step_uses_the_training_modules_loss(monkeypatch):
    torch.manual_seed(0)
    size = QUICK_SIZES["imdb"]
    steps = measure.MeasuredSteps(
        measure.build_variant(size, "fast"), size, size.batch, torch.device("cpu"), bf16=False
    )
    calls = []
    forward = steps.module.loss.forward

    def counted(output, target, **options):
        calls.append(options)
        return forward(output, target, **options)

    monkeypatch.setattr(steps.module.loss, "forward", counted)
    before = [p.detach().clone() for p in steps.module.parameters()]
    steps.train()
    assert calls == [{"interaction_weight": size.loss.interaction_weight}]
    after = list(steps.module.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    steps.infer()
    assert len(calls) == 1 and not steps.module.training
