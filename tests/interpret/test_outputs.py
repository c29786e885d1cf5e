"""Running the model over a split (i2moe.interpret.outputs) on tiny real models."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from i2moe.builders import vanilla_model
from i2moe.interpret.outputs import collect, collect_pooled, dataset_sample_ids

from .conftest import tiny_data, tiny_model, trained


def test_collect_equals_the_model_in_eval_mode():
    dataset = tiny_data(3, num_samples=20)
    model = tiny_model(dataset).eval()
    batch = torch.utils.data.default_collate([dataset[i] for i in range(20)])
    with torch.no_grad():
        expected = model(batch["inputs"])
    collected = collect(model, dataset, batch_size=8)
    prediction, outputs, weights = collected.prediction, collected.expert_outputs, collected.weights
    torch.testing.assert_close(prediction, expected.prediction)
    torch.testing.assert_close(outputs, expected.expert_outputs)
    torch.testing.assert_close(weights, expected.weights)
    assert collected.task == "classification"
    assert collected.expert_names == model.expert_names
    assert collected.modality_names == model.modality_names


def test_collect_is_deterministic_and_leaves_state_alone():
    dataset = tiny_data(2, num_samples=24)
    model = tiny_model(dataset).train()
    rng = torch.get_rng_state()
    first = collect(model, DataLoader(dataset, batch_size=10), seed=3)
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng)
    second = collect(model, DataLoader(dataset, batch_size=10), seed=3)
    torch.testing.assert_close(first.change, second.change)
    other_seed = collect(model, DataLoader(dataset, batch_size=10), seed=4)
    assert not torch.allclose(first.change, other_seed.change)
    whole = collect(model, dataset, seed=3)  # batching changes the draws, not the outputs
    torch.testing.assert_close(first.prediction, whole.prediction)
    torch.testing.assert_close(first.weights.sum(-1), torch.ones(24))
    assert first.sample_ids[:2] == ["s000", "s001"]
    assert first.change.shape == (24, 2) and not torch.isnan(first.change).any()
    assert ((first.flip >= 0) & (first.flip <= 1)).all()


def test_collect_pooled_matches_collect_and_the_embeddings():
    model, dataset = trained(3, missing=0.3)
    model.train()
    pooled = collect_pooled(model, dataset, batch_size=16)
    assert model.training
    model.eval()
    collected = collect(model, dataset)
    np.testing.assert_allclose(
        pooled.probabilities, collected.prediction.softmax(-1).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(pooled.weights, collected.weights.numpy(), atol=1e-6)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        embeddings = model.embed(batch["inputs"], batch["observed"])
    assert len(pooled.pooled) == 3
    for mine, embedding in zip(pooled.pooled, embeddings, strict=True):
        torch.testing.assert_close(mine, embedding.mean(dim=1))


def test_collect_pooled_of_regression_keeps_the_raw_outputs():
    model, dataset = trained(2, task="regression")
    pooled = collect_pooled(model, dataset)
    np.testing.assert_allclose(pooled.probabilities, collect(model, dataset).prediction.numpy())


def test_a_model_without_experts_is_refused():
    dataset = tiny_data(2, num_samples=20)
    shapes = {name: tuple(array.shape[1:]) for name, array in dataset.arrays.items()}
    model = vanilla_model(shapes, 2, fusion="ef", dim=8)
    with pytest.raises(ValueError, match="no experts"):
        collect(model, dataset)
    with pytest.raises(ValueError, match="no experts"):
        collect_pooled(model, dataset)


def test_a_shuffled_loader_is_refused():
    dataset = tiny_data(2, num_samples=20)
    with pytest.raises(ValueError, match="shuffles"):
        collect(tiny_model(dataset), DataLoader(dataset, shuffle=True))


def test_batches_that_are_not_i2moe_items_are_refused():
    dataset = tiny_data(2, num_samples=20)
    pairs = [(dataset[i]["inputs"], dataset[i]["target"]) for i in range(4)]
    with pytest.raises(ValueError, match="each batch must be a dict"):
        collect(tiny_model(dataset), pairs)


def test_sample_ids_fall_back_to_positions():
    dataset = tiny_data(2, num_samples=20)
    loader = DataLoader(dataset)
    assert dataset_sample_ids(loader, 20)[:2] == ["s000", "s001"]
    assert dataset_sample_ids(loader, 5) == [0, 1, 2, 3, 4]  # not one id per sample
