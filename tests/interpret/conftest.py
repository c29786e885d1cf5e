"""Tiny data, tiny trained I2MoE models, hand-made model outputs and explanations for the
interpretation tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2moe.builders import i2moe_model
from i2moe.data.base import ArrayDataset
from i2moe.data.synth import generate, modality_name
from i2moe.interpret.analysis import analyse
from i2moe.interpret.outputs import SplitOutputs
from i2moe.losses import total_loss

EXPERTS = ["uni_a", "uni_b", "syn", "red"]
MODALITIES = ["a", "b"]

# Five samples, four experts, two classes (see the expected counts in the tests).
OUTPUTS = torch.tensor(
    [
        [[2.0, 0.0], [1.0, 0.0], [3.0, 0.0], [1.0, -1.0]],  # all say 0; target 0
        [[0.0, 1.0], [0.0, 2.0], [-1.0, 1.0], [0.0, 3.0]],  # all say 1; target 0
        [[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 1.0]],  # mixed; target 0
        [[0.0, 2.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],  # mixed; target 1
        [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],  # mixed; target 1
    ]
)
WEIGHTS = torch.tensor(
    [
        [0.25, 0.25, 0.25, 0.25],
        [0.1, 0.2, 0.3, 0.4],
        [0.5, 0.1, 0.3, 0.1],
        [0.1, 0.6, 0.2, 0.1],
        [0.25, 0.25, 0.25, 0.25],
    ]
)
TARGETS = torch.tensor([0, 0, 0, 1, 1])

# Three samples, two experts, two labels: label sets that agree, differ, and are both empty.
LABEL_SET_OUTPUTS = torch.tensor(
    [
        [[1.0, -1.0], [2.0, -3.0]],  # {0} and {0}: agree
        [[1.0, 1.0], [1.0, -1.0]],  # {0, 1} and {0}: disagree
        [[-1.0, -1.0], [-2.0, -1.0]],  # {} and {}: agree
    ]
)
LABEL_SET_WEIGHTS = torch.full((3, 2), 0.5)
LABEL_SET_TARGETS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def hand_outputs(
    outputs=OUTPUTS,
    weights=WEIGHTS,
    targets=TARGETS,
    observed=None,
    *,
    task="classification",
    expert_names=EXPERTS,
) -> SplitOutputs:
    """Model outputs made by hand: expert outputs [N, E, C] and weights [N, E] given, the
    prediction their weighted sum, random sensitivity changes and no flips."""
    n, _, _ = outputs.shape
    return SplitOutputs(
        task=task,
        expert_names=list(expert_names),
        modality_names=MODALITIES,
        sample_ids=[f"id{i}" for i in range(n)],
        prediction=torch.einsum("ne,nec->nc", weights, outputs),
        expert_outputs=outputs,
        weights=weights,
        target=targets,
        observed=torch.ones(n, 2, dtype=torch.bool) if observed is None else observed,
        change=torch.rand(n, 2, generator=torch.Generator().manual_seed(0)),
        flip=torch.zeros(n, 2),
    )


def hand_explanation(**options):
    """The explanation of :func:`hand_outputs` (classes ``neg`` and ``pos``)."""
    return analyse(hand_outputs(**options), class_names=["neg", "pos"])


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
