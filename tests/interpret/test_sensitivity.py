"""Modality sensitivity (i2moe.interpret.sensitivity) on tiny real models."""

import pytest
import torch

from i2moe.interpret.outputs import collect
from i2moe.interpret.sensitivity import batch_sensitivity, replacement_draws

from .conftest import tiny_data, tiny_model, trained


def test_sensitivity_equals_the_model_run_with_the_modality_missing():
    # With zero masking, replacing a modality is exactly what the model does when it is missing.
    dataset = tiny_data(3, num_samples=20)
    model = tiny_model(dataset, masking="zero").eval()
    collected = collect(model, dataset)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(20)])
    with torch.no_grad():
        base = model(batch["inputs"]).prediction.softmax(-1)
        for m in range(3):
            observed = torch.ones(20, 3, dtype=torch.bool)
            observed[:, m] = False
            without = model(batch["inputs"], observed).prediction.softmax(-1)
            expected = 0.5 * (base - without).abs().sum(-1)
            torch.testing.assert_close(collected.change[:, m], expected)


def test_sensitivity_leaves_out_missing_modalities():
    model, dataset = trained(3, missing=0.3)
    collected = collect(model, dataset)
    missing = ~dataset.observed
    assert missing.any()
    assert torch.isnan(collected.change[missing]).all()
    assert not torch.isnan(collected.change[~missing]).any()
    assert torch.equal(collected.observed, dataset.observed)


@pytest.mark.parametrize(("masking", "copies"), [("random", 3), ("zero", 1), ("mean", 1)])
def test_only_random_replacements_are_drawn_more_than_once(masking, copies):
    dataset = tiny_data(2, num_samples=20)
    model = tiny_model(dataset, masking=masking).eval()
    embedding = torch.ones(4, 1, 8)
    replacements = replacement_draws(model, 0, embedding, draws=3)
    assert replacements.shape == (copies, 4, 1, 8)


def test_a_batch_flips_where_the_prediction_changes_class():
    dataset = tiny_data(2, num_samples=20)
    model = tiny_model(dataset, masking="zero").eval()
    batch = torch.utils.data.default_collate([dataset[i] for i in range(12)])
    observed = torch.ones(12, 2, dtype=torch.bool)
    observed[0, 1] = False
    with torch.no_grad():
        embeddings = model.embed(batch["inputs"])
        prediction = model.forward_embeddings(embeddings).prediction
        change, flip = batch_sensitivity(model, embeddings, prediction, observed, draws=2)
        zeroed = model.forward_embeddings([torch.zeros_like(embeddings[0]), embeddings[1]])
    assert change.shape == flip.shape == (12, 2)
    assert torch.isnan(change[0, 1]) and torch.isnan(flip[0, 1])
    expected = (prediction.argmax(-1) != zeroed.prediction.argmax(-1)).float()
    torch.testing.assert_close(flip[:, 0], expected)
    assert ((change[1:] >= 0) & (change[1:] <= 1)).all()
