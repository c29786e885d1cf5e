"""Tiny data, tiny trained I2MoE models and their explanations for the interpretation tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2moe.builders import i2moe_model
from i2moe.data.base import ArrayDataset
from i2moe.data.synth import generate, modality_name
from i2moe.losses import total_loss


def tiny_data(
    num_modalities: int,
    *,
    task: str = "classification",
    num_samples: int = 48,
    missing: float = 0.0,
    seed: int = 0,
) -> ArrayDataset:
    """Generated data (mixed interactions, 8 features per modality) with string sample ids.

    Multi-label targets are the label and the first modality's symbol as two labels; regression
    targets are the label plus a little noise. ``missing`` is the share of (sample, modality)
    pairs marked unobserved (modality 0 is always observed).
    """
    arrays = generate(
        "mixed", num_modalities=num_modalities, num_samples=num_samples, dim=8, seed=seed
    )
    y = arrays["y"]
    rng = np.random.default_rng(seed)
    if task == "multilabel":
        targets = np.stack([y, arrays["latent_bits"][:, 0]], axis=1).astype(np.float32)
    elif task == "regression":
        targets = (y + 0.1 * rng.standard_normal(len(y))).astype(np.float32)
    else:
        targets = y
    observed = rng.random((num_samples, num_modalities)) >= missing
    observed[:, 0] = True
    return ArrayDataset(
        {modality_name(m): arrays[modality_name(m)] for m in range(num_modalities)},
        targets,
        task,
        observed,
        sample_ids=[f"s{i:03d}" for i in range(num_samples)],
    )


def tiny_model(dataset: ArrayDataset, task: str = "classification", **config):
    """An I2MoE over the dataset's modalities (early fusion, width 8), not yet trained."""
    shapes = {name: tuple(array.shape[1:]) for name, array in dataset.arrays.items()}
    num_outputs = {"classification": 2, "multilabel": 2, "regression": 1}[task]
    options = {
        "fusion": "ef",
        "fusion_options": {"hidden": 16, "dropout": 0.0},
        "dim": 8,
        "head_hidden": 16,
        "reweighting_hidden": 16,
        **config,
    }
    return i2moe_model(shapes, num_outputs, task=task, **options)


def train(model, dataset: ArrayDataset, steps: int = 12, seed: int = 0):
    """A few full-batch Adam steps; returns the model in eval mode."""
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    model.train()
    for _ in range(steps):
        output = model(batch["inputs"], batch["observed"])
        loss = total_loss(output, batch["target"], model.task, interaction_weight=0.5)
        optimiser.zero_grad()
        loss.total.backward()
        optimiser.step()
    return model.eval()


def trained(num_modalities: int, task: str = "classification", missing: float = 0.0, **config):
    torch.manual_seed(0)
    dataset = tiny_data(num_modalities, task=task, missing=missing)
    return train(tiny_model(dataset, task, **config), dataset), dataset


@pytest.fixture(scope="session", params=[2, 3], ids=["2-modalities", "3-modalities"])
def explained(request, tmp_path_factory):
    """A trained 2- or 3-modality model explained into a folder (figures and report)."""
    from i2moe.interpret import explain

    model, dataset = trained(request.param, missing=0.1)
    output = tmp_path_factory.mktemp(f"explained{request.param}")
    explanation = explain(
        model,
        dataset,
        output,
        num_examples=1,
        class_names=["no", "yes"],
        context={"run": "tiny", "split": "test"},
    )
    return explanation, output
