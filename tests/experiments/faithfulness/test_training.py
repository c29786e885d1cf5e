"""The two trainings (i2moe.experiments.faithfulness.training) through the library's training
path, and the evidence-supervised reweighting they compare (i2moe.losses.evidence_targets /
evidence_loss, i2moe.model evidence_weight)."""

import pytest
import torch

from i2moe import i2moe_model, total_loss
from i2moe.experiments.faithfulness import training
from i2moe.experiments.faithfulness.datasets import Case, make_data, suite_bundle
from i2moe.experiments.faithfulness.training import train_model
from i2moe.losses import evidence_targets


def test_train_model_defaults_drop_no_units():
    # dropout 0 by default (it keeps 3-4-modality parity at chance, docs/faithfulness.md)
    arrays = make_data(Case("synergy_parity", 2, "vector"), num_samples=200, seed=0)
    model = train_model(suite_bundle(arrays), evidence_weight=0.0, epochs=2, seed=0).model
    from i2moe.fusion.transformer import TransformerFusion

    parts = [model.encoders, *(m for m in model.modules() if isinstance(m, TransformerFusion))]
    drops = [m for part in parts for m in part.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(parts) > 1 and drops and all(m.p == 0.0 for m in drops)


def test_training_goes_through_train_module_with_the_benchmarks_settings(monkeypatch):
    seen = {}

    def fake_train_module(module, bundle, train_config, output, *, seed, later_ties=False):
        from i2moe.training.loop import TrainingResult

        seen.update(module=module, train=train_config, seed=seed, output=output)
        seen.update(later_ties=later_ties)
        return TrainingResult({"accuracy": 0.9}, {"accuracy": 0.8}, str(output / "best.ckpt"))

    monkeypatch.setattr("i2moe.training.loop.train_module", fake_train_module)
    arrays = make_data(Case("redundancy", 2, "vector"), num_samples=200, seed=0)
    trained = training.train_model(
        suite_bundle(arrays), evidence_weight=1.0, epochs=15, seed=2, interaction_warmup=0.5
    )
    module, train = seen["module"], seen["train"]
    assert seen["later_ties"]  # of tied epochs the later, better-trained reweighter
    assert trained.model is module.model and not trained.model.training
    assert trained.test_accuracy == 0.8
    assert module.hparams.interaction_warmup == round(0.5 * 15) == 8
    assert module.hparams.lr == 2e-3 and module.loss.interaction_weight == 0.5
    assert module.loss.evidence_weight == 1.0 and module.model.evidence
    assert (train.epochs, train.batch_size, seen["seed"]) == (15, 64, 2)
    assert not seen["output"].exists()  # a temporary folder, removed after training


def _passes(fits):
    """Outputs [E, P, B=1, C=2] whose true-class (0) probability per pass is given."""
    probability = torch.tensor(fits, dtype=torch.float).clamp(1e-4, 1 - 1e-4)
    logits = torch.stack([probability.log(), (1 - probability).log()], -1)
    return logits.unsqueeze(2)


def test_evidence_targets_name_the_interaction():
    target = torch.tensor([0])
    # experts uni_0, uni_1, syn, red; passes intact, without 0, without 1. Label = modality 0:
    # every expert is at chance without modality 0 and right without modality 1.
    unique_0 = _passes([[1, 0.5, 1]] * 4)
    synergy = _passes([[1, 0.5, 0.5], [1, 0.5, 0.5], [1, 0.5, 0.5], [1, 0.5, 0.5]])
    redundancy = _passes([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]])
    for outputs, expected in ((unique_0, 0), (synergy, 2), (redundancy, 3)):
        weights = evidence_targets(outputs, target, "classification")
        assert weights.shape == (1, 4)
        assert weights.sum().item() == pytest.approx(1.0)
        assert weights.argmax().item() == expected


def test_evidence_loss_trains_the_reweighter_and_every_expert():
    torch.manual_seed(0)
    model = i2moe_model({"a": (4,), "b": (3,)}, 2, dim=8, evidence_weight=1.0).train()
    batch = {"a": torch.randn(6, 4), "b": torch.randn(6, 3)}
    output = model(batch)
    assert output.evidence is not None and output.evidence.outputs.shape[:2] == (4, 3)
    target = torch.randint(0, 2, (6,))
    total_loss(output, target, "classification", interaction_weight=0.5).total.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
    model.eval()
    assert model(batch).evidence is None


def test_paper_training_is_unchanged_by_default():
    model = i2moe_model({"a": (4,), "b": (3,)}, 2, dim=8).train()
    assert model({"a": torch.randn(3, 4), "b": torch.randn(3, 3)}).evidence is None
