"""Builders and the ablations (docs/method.md section 6): each changes exactly what it names."""

import pytest
import torch

from helpers import SHAPES_3, batch_for, expert_output_shapes, tiny_model
from i2moe.builders import ABLATIONS, i2moe_model, vanilla_model
from i2moe.model import I2MoE, VanillaFusion
from i2moe.reweighting import GlobalWeights, ReweightingMLP


def test_full_model_runs_n_plus_one_passes_per_expert():
    model = tiny_model()
    sizes = expert_output_shapes(model)
    model(batch_for(SHAPES_3))
    assert sizes[0][:2] == (5, 4 * 4)  # [E, P*B, C]: 5 experts, 4 passes of 4 samples


def test_no_interaction_runs_one_pass_and_no_interaction_loss():
    model = tiny_model(ablation="no-interaction")
    sizes = expert_output_shapes(model)
    out = model(batch_for(SHAPES_3))
    assert sizes[0][1] == 4  # intact batch only, shared by all experts
    assert out.interaction_loss.abs().sum() == 0
    assert isinstance(model.reweighting, ReweightingMLP) and model.experts.num_experts == 5


def test_syn_red_only_has_two_experts():
    model = tiny_model(ablation="syn-red-only")
    out = model(batch_for(SHAPES_3))
    assert model.expert_names == ["syn", "red"]
    assert out.weights.shape == (4, 2) and out.interaction_loss.shape == (2,)


def test_simple_weight_uses_one_global_weight_vector():
    model = tiny_model(ablation="simple-weight")
    assert isinstance(model.reweighting, GlobalWeights)
    out = model(batch_for(SHAPES_3))
    torch.testing.assert_close(out.weights[0], out.weights[3])


def test_latent_contrastive_loss_reaches_the_experts_through_latents():
    torch.manual_seed(0)
    model = tiny_model(ablation="latent-contrastive")
    assert model.interaction_space == "latent"
    out = model(batch_for(SHAPES_3))
    out.interaction_loss.sum().backward()
    fusion_grads = [p.grad for n, p in model.experts.named_parameters() if ".fusion." in n]
    head_grads = [p.grad for n, p in model.experts.named_parameters() if ".head." in n]
    assert all(g is not None and g.abs().sum() > 0 for g in fusion_grads)
    assert all(g is None for g in head_grads)  # the head is not part of the latent loss


@pytest.mark.parametrize("n, expected_k", [(2, 1), (3, 2)])
def test_less_forward_defaults_to_the_papers_k(n, expected_k):
    shapes = {f"m{i}": (4,) for i in range(n)}
    model = tiny_model(shapes, ablation="less-forward")
    assert model.perturb_k == expected_k


def test_every_ablation_builds_and_trains_one_step():
    for ablation in ABLATIONS:
        model = tiny_model(ablation=ablation)
        out = model(batch_for(SHAPES_3))
        (out.prediction.sum() + out.interaction_loss.sum()).backward()


def test_vanilla_model_and_unknown_names():
    model = vanilla_model(SHAPES_3, 3, dim=8, fusion_options={"num_heads": 2})
    assert isinstance(model, VanillaFusion)
    assert model(batch_for(SHAPES_3)).prediction.shape == (4, 3)
    with pytest.raises(KeyError, match="valid names"):
        i2moe_model(SHAPES_3, 3, fusion="perceiver")
    with pytest.raises(ValueError, match="ablation"):
        i2moe_model(SHAPES_3, 3, ablation="half")


def test_identical_init_starts_every_expert_equal():
    model = tiny_model(identical_init=True)
    assert isinstance(model, I2MoE)
    weight = model.experts.stacked.head.net[0].weight
    assert all(torch.equal(weight[0], weight[e]) for e in range(1, 5))


def test_num_patches_cut_any_vector_encoder_into_tokens():
    shapes = {"v": (12,), "s": (5, 3)}  # an MLP and a GRU, both returning [B, D]
    model = tiny_model(shapes, num_patches=3)
    embeddings = model.encoders(batch_for(shapes))
    assert [e.shape for e in embeddings] == [(4, 3, 8), (4, 3, 8)]
    assert model(batch_for(shapes)).prediction.shape == (4, 4)
