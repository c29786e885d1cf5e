"""The I2MoE module: shapes, invariants, gradients, fast path = loop path."""

import copy

import pytest
import torch
from torch import nn

from helpers import SHAPES_3, batch_for, expert_output_shapes, no_dropout, tiny_model
from i2moe.builders import vanilla_model
from i2moe.execution import InteractionExpert
from i2moe.fusion.base import Fused
from i2moe.losses import I2MoELoss
from i2moe.model import I2MoE, PredictionHead
from i2moe.perturbation import Perturbation
from i2moe.reweighting import ReweightingMLP


def test_output_shapes_and_invariants():
    torch.manual_seed(0)
    model = tiny_model()
    out = model(batch_for(SHAPES_3))
    assert out.prediction.shape == (4, 4)
    assert out.expert_outputs.shape == (4, 5, 4)
    assert out.weights.shape == (4, 5)
    assert out.interaction_loss.shape == (5,)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(4))
    assert torch.isfinite(out.prediction).all() and torch.isfinite(out.interaction_loss).all()
    assert model.expert_names == ["uni_a", "uni_b", "uni_c", "syn", "red"]
    # The prediction is the weighted sum of the experts' intact outputs.
    torch.testing.assert_close(
        out.prediction, (out.weights.unsqueeze(-1) * out.expert_outputs).sum(1)
    )


def test_every_parameter_gets_a_gradient_after_one_step():
    torch.manual_seed(0)
    model = tiny_model()
    out = model(batch_for(SHAPES_3))
    loss = nn.functional.cross_entropy(out.prediction, torch.tensor([0, 1, 2, 3]))
    (loss + out.interaction_loss.mean()).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not dead


def test_eval_runs_only_the_intact_pass():
    torch.manual_seed(0)
    model = tiny_model().eval()
    calls = []
    model.experts.register_forward_hook(lambda m, args, kwargs_or_out: calls.append(args))
    x = batch_for(SHAPES_3)
    out1, out2 = model(x), model(x)
    assert out1.interaction_loss.abs().sum() == 0
    torch.testing.assert_close(out1.prediction, out2.prediction)  # no noise at inference
    assert all(e.shape[0] == 4 for e in calls[0][0])  # [B, T, D]: no folded passes


FUSION_OPTIONS = {
    "transformer": {"num_heads": 2, "dropout": 0.0},
    "ef": {"dropout": 0.0},
    "lf": {"dropout": 0.0},
    "lrtf": {},
}


@pytest.mark.parametrize("fusion", sorted(FUSION_OPTIONS))
@pytest.mark.parametrize("train", [False, True])
def test_fast_path_equals_loop_path(train, fusion):
    torch.manual_seed(0)
    fast = no_dropout(
        tiny_model(reweighting_layers=1, fusion=fusion, fusion_options=FUSION_OPTIONS[fusion])
    )
    slow = copy.deepcopy(fast)
    slow.experts.execution = "loop"
    fast.train(train)
    slow.train(train)
    x = batch_for(SHAPES_3)
    replacements = fast.replacements(fast.encoders(x), [0, 1, 2]) if train else None
    out_fast = fast(x, replacements=replacements)
    out_slow = slow(x, replacements=replacements)
    for a, b in zip(out_fast, out_slow, strict=True):
        torch.testing.assert_close(a, b)
    target = torch.tensor([0, 1, 2, 3])
    for out in (out_fast, out_slow):
        loss = nn.functional.cross_entropy(out.prediction, target) + out.interaction_loss.sum()
        loss.backward()
    for (name, p), (_, q) in zip(fast.named_parameters(), slow.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_path_equals_loop_path_on_cuda():
    torch.manual_seed(0)
    fast = no_dropout(tiny_model(reweighting_layers=1)).cuda().train()
    slow = copy.deepcopy(fast)
    slow.experts.execution = "loop"
    x = {k: v.cuda() for k, v in batch_for(SHAPES_3).items()}
    replacements = fast.replacements(fast.encoders(x), [0, 1, 2])
    out_fast, out_slow = fast(x, replacements=replacements), slow(x, replacements=replacements)
    for a, b in zip(out_fast, out_slow, strict=True):
        torch.testing.assert_close(a, b)


def test_fresh_replacements_for_every_expert():
    torch.manual_seed(0)
    model = tiny_model()
    repl = model.replacements(model.encoders(batch_for(SHAPES_3)), [0, 1, 2])
    assert repl[0].shape[0] == model.experts.num_experts
    assert not torch.equal(repl[0][0], repl[0][1])


@pytest.mark.parametrize(
    "shapes", [{"x": (6,), "y": (4,)}, {"a": (3,), "b": (4,), "c": (5,), "d": (2, 6)}]
)
def test_two_and_four_modalities(shapes):
    torch.manual_seed(0)
    model = tiny_model(shapes, num_outputs=3)
    out = model(batch_for(shapes))
    n = len(shapes)
    assert out.expert_outputs.shape == (4, n + 2, 3)
    assert out.interaction_loss.shape == (n + 2,)
    out.prediction.sum().backward()


class MeanFusion(nn.Module):
    """A user-defined fusion module: mean over all tokens, then a linear map."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, 6)
        self.out_dim = 6

    def forward(self, embeddings):
        return self.proj(torch.cat(embeddings, dim=1).mean(dim=1))  # a plain tensor is fine


class UserEncoder(nn.Module):
    """A user-defined encoder returning tokens [B, 3, D]."""

    def __init__(self, features, dim):
        super().__init__()
        self.proj = nn.Linear(features, 3 * dim)
        self.dim = dim

    def forward(self, x):
        return self.proj(x).view(len(x), 3, self.dim)


def test_user_defined_encoder_and_fusion():
    torch.manual_seed(0)
    dim = 8
    experts = [
        InteractionExpert(fusion=MeanFusion(dim), head=PredictionHead(6, 2, num_layers=1))
        for _ in range(4)
    ]
    model = I2MoE(
        encoders={"u": UserEncoder(5, dim), "v": nn.Linear(7, dim)},
        experts=experts,
        reweighting=ReweightingMLP(2 * dim, 4),
        task="classification",
    )
    x = {"u": torch.randn(3, 5), "v": torch.randn(3, 7)}
    out = model(x)
    assert out.prediction.shape == (3, 2)
    (out.prediction.sum() + out.interaction_loss.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fused_output_with_aux_loss_is_averaged():
    class AuxFusion(MeanFusion):
        def forward(self, embeddings):
            latent = super().forward(embeddings)
            return Fused(latent, latent.pow(2).mean())

    experts = [
        InteractionExpert(fusion=AuxFusion(4), head=PredictionHead(6, 2, num_layers=1))
        for _ in range(4)
    ]
    model = I2MoE(
        encoders={"u": nn.Linear(5, 4), "v": nn.Linear(7, 4)},
        experts=experts,
        reweighting=ReweightingMLP(8, 4),
        task="classification",
    ).eval()
    out = model({"u": torch.randn(3, 5), "v": torch.randn(3, 7)})
    assert out.aux_loss > 0 and out.aux_loss.requires_grad


@pytest.mark.parametrize("strategy", ["random", "zero", "mean"])
def test_masking_strategies(strategy):
    torch.manual_seed(0)
    model = tiny_model(masking=strategy)
    x = batch_for(SHAPES_3)
    emb = model.encoders(x)
    out = model(x)  # one training step fills the running mean
    assert torch.isfinite(out.interaction_loss).all()
    repl = model.replacements(emb, [1])[1]
    assert repl.shape == (5, *emb[1].shape)
    if strategy == "zero":
        assert repl.abs().sum() == 0
    elif strategy == "mean":
        running = model.perturbation.running_mean(1)
        assert running.shape == emb[1].shape[1:]
        torch.testing.assert_close(repl[0, 0], running)
    else:
        assert repl.std() > 0.5


def test_missing_modality_is_replaced_and_left_out_of_losses():
    torch.manual_seed(0)
    model = no_dropout(tiny_model(masking="zero")).eval()
    x = batch_for(SHAPES_3)
    observed = torch.ones(4, 3, dtype=torch.bool)
    observed[0, 1] = False
    out_missing = model(x, observed)
    x_changed = {k: v.clone() for k, v in x.items()}
    x_changed["b"][0] += 100.0  # whatever sample 0 holds in modality b is ignored
    torch.testing.assert_close(model(x_changed, observed).prediction, out_missing.prediction)
    # Sample 0 predicted as if modality b were zero-replaced.
    emb = model.encoders(x)
    emb[1] = torch.where(observed[:, 1, None, None], emb[1], torch.zeros_like(emb[1]))
    expected = torch.einsum(
        "be,ebc->bc",
        model.reweighting(torch.cat([e.mean(1) for e in emb], -1)),
        model.experts(emb).output,
    )
    torch.testing.assert_close(out_missing.prediction, expected)


def test_less_forward_perturbs_k_modalities():
    torch.manual_seed(0)
    model = tiny_model(perturb_k=1)
    sizes = expert_output_shapes(model)
    model(batch_for(SHAPES_3))
    assert sizes == [(5, 2 * 4, 4)]  # (1 + k) passes of B = 4 folded
    assert len(model.choose_perturbed()) == 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="perturb_k"):
        tiny_model(perturb_k=5)
    with pytest.raises(ValueError, match="masking"):
        Perturbation("blur", 2)


@pytest.mark.parametrize("fusion", ["switchgate", "moepp"])
def test_training_passes_leave_the_intact_outputs_as_at_inference(fusion):
    """The folded perturbed passes do not share the sparse layers' capacity with the intact
    pass: without dropout, training's intact outputs are the inference outputs."""
    torch.manual_seed(0)
    options = {"num_heads": 2, "dropout": 0.0}
    if fusion == "switchgate":
        options["capacity_factor"] = 1.0
    model = no_dropout(tiny_model(fusion=fusion, fusion_options=options))
    x = batch_for(SHAPES_3, size=16)
    trained = model.train()(x)
    inferred = model.eval()(x)
    torch.testing.assert_close(trained.expert_outputs, inferred.expert_outputs)
    torch.testing.assert_close(trained.prediction, inferred.prediction)


MISSING = torch.tensor(
    [[True, True, True], [False, True, True], [True, False, False], [True, True, False]]
)


def _with_missing_rows(value: float) -> dict[str, torch.Tensor]:
    x = batch_for(SHAPES_3)
    for m, name in enumerate(SHAPES_3):
        x[name][~MISSING[:, m]] = value
    return x


def _outputs_and_encoder_gradients(model, inputs, seed=1):
    torch.manual_seed(seed)  # the same replacement draws for every call
    out = model(inputs, MISSING)
    loss = nn.functional.cross_entropy(out.prediction, torch.tensor([0, 1, 2, 3]))
    loss = loss + getattr(out, "interaction_loss", out.prediction.new_zeros(2)).mean()
    encoders = [p for p in model.encoders.parameters()]
    return out, torch.autograd.grad(loss, encoders)


@pytest.mark.parametrize("vanilla", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_nan_in_a_missing_modality_reaches_no_output_or_gradient(train, vanilla):
    torch.manual_seed(0)
    if vanilla:
        model = vanilla_model(SHAPES_3, 4, dim=8, fusion_options={"num_heads": 2})
    else:
        model = tiny_model()
    model = no_dropout(model).train(train)
    out, grads = _outputs_and_encoder_gradients(model, _with_missing_rows(float("nan")))
    reference, reference_grads = _outputs_and_encoder_gradients(model, _with_missing_rows(0.0))
    assert torch.isfinite(out.prediction).all()
    assert all(torch.isfinite(g).all() for g in grads)
    for a, b in zip(out, reference, strict=True):
        if a is not None:
            torch.testing.assert_close(a, b)
    for a, b in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_forward_embeddings_is_the_forward_after_the_encoders():
    torch.manual_seed(0)
    model = no_dropout(tiny_model()).eval()
    x = batch_for(SHAPES_3)
    embeddings = model.embed(x, MISSING)
    out = model.forward_embeddings(embeddings)
    by_name = model.forward_embeddings(dict(zip(model.modality_names, embeddings, strict=True)))
    for a, b, c in zip(out, by_name, model(x, MISSING), strict=True):
        if a is not None:
            torch.testing.assert_close(a, b)
            torch.testing.assert_close(a, c)
    # Replace one modality's embedding and run again, as interpretation code does.
    changed = list(embeddings)
    changed[1] = torch.zeros_like(changed[1])
    weights = model.reweighting(torch.cat([e.mean(1) for e in changed], -1))
    expected = torch.einsum("be,ebc->bc", weights, model.experts(changed).output)
    torch.testing.assert_close(model.forward_embeddings(changed).prediction, expected)
    with pytest.raises(KeyError, match="lack"):
        model.forward_embeddings({"a": embeddings[0]})
    with pytest.raises(ValueError, match="embeddings"):
        model.forward_embeddings(embeddings[:2])


def test_forward_embeddings_in_training_runs_the_perturbed_passes():
    torch.manual_seed(0)
    model = no_dropout(tiny_model()).train()
    x = batch_for(SHAPES_3)
    embeddings = model.embed(x)
    replacements = model.replacements(embeddings, [0, 1, 2])
    a = model(x, replacements=replacements)
    b = model.forward_embeddings(embeddings, replacements=replacements)
    assert a.interaction_loss.abs().sum() > 0
    for u, v in zip(a, b, strict=True):
        if u is not None:
            torch.testing.assert_close(u, v)


def test_expert_by_index_or_name_is_its_share_of_the_forward():
    torch.manual_seed(0)
    model = no_dropout(tiny_model()).eval()
    x = batch_for(SHAPES_3)
    out, embeddings = model(x), model.embed(x)
    for e, name in enumerate(model.expert_names):
        for key in (e, name):
            expert = model.expert(key)
            assert isinstance(expert, InteractionExpert)
            torch.testing.assert_close(expert(embeddings)[1], out.expert_outputs[:, e])
    with pytest.raises(KeyError, match="uni_z"):
        model.expert("uni_z")


def test_num_outputs():
    assert tiny_model(num_outputs=3).num_outputs == 3
    assert vanilla_model(SHAPES_3, 5, dim=8, fusion_options={"num_heads": 2}).num_outputs == 5
    experts = [InteractionExpert(fusion=MeanFusion(4), head=nn.Linear(6, 2)) for _ in range(4)]
    model = I2MoE(
        encoders={"u": nn.Linear(5, 4), "v": nn.Linear(7, 4)},
        experts=experts,
        reweighting=ReweightingMLP(8, 4),
        task="classification",
    )
    assert model.num_outputs == 2


def test_evidence_flag_computes_evidence_that_the_loss_weights():
    torch.manual_seed(0)
    model = tiny_model()
    assert not model.evidence and model(batch_for(SHAPES_3)).evidence is None
    model = I2MoE(
        encoders=dict(model.encoders.encoders),
        experts=[model.experts.expert(e) for e in range(5)],
        reweighting=model.reweighting,
        task="classification",
        evidence=True,
    )
    out = model(batch_for(SHAPES_3))
    assert out.evidence is not None and out.evidence.outputs.shape[:2] == (5, 4)
    assert out.prediction.grad_fn is not None
    loss = I2MoELoss.for_model(model, evidence_weight=0.5)
    loss(out, torch.tensor([0, 1, 2, 3])).total.backward()
    assert all(p.grad is not None for p in model.reweighting.parameters())
    with pytest.raises(ValueError, match="evidence_weight"):
        I2MoELoss.for_model(model)
    assert model.eval()(batch_for(SHAPES_3)).evidence is None


def test_the_vanilla_model_s_old_name_resolves_with_a_deprecation_warning():
    import i2moe
    import i2moe.model

    with pytest.warns(DeprecationWarning, match="use i2moe.model.VanillaFusion"):
        assert i2moe.model.FusionModel is i2moe.model.VanillaFusion
    with pytest.warns(DeprecationWarning):
        assert i2moe.FusionModel is i2moe.VanillaFusion
