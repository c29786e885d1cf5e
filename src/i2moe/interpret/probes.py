"""Unimodal probes: one small MLP per modality that predicts the model's class from the model's
own pooled embedding of that modality alone (the single-modality predictions of the paper's
per-sample rule, section 3.3).

Shape letters: M modalities (n), N samples, D width, C outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


def fit_probes(
    pooled: Sequence[Tensor],
    classes: np.ndarray,
    num_classes: int,
    *,
    seed: int = 0,
    steps: int = 300,
    hidden: int = 32,
    holdout: float = 0.25,
    check_every: int = 10,
) -> list[nn.Module]:
    """One small MLP per modality mapping its pooled embedding to the model's predicted class.

    Trained full-batch with Adam (lr 1e-2, weight decay 1e-4), seeded, on ``1 - holdout`` of
    the samples; the step with the lowest cross-entropy on the held-out rest is kept (checked
    every ``check_every`` steps). A probe starts at the class prior, so a modality that does
    not tell the model's class stays there instead of fitting noise, which would read as
    agreement on new samples. The embeddings are standardised inside each probe.

    Args:
        pooled: M tensors [N, D], each modality's pooled embedding.
        classes: [N] the model's predicted class of each sample.
        num_classes: C.
        seed: seed of the held-out split and of the initialisation.
        steps: Adam steps.
        hidden: width of the probes' hidden layer.
        holdout: share of the samples held out to choose the step.
        check_every: steps between two checks on the held-out samples.

    Returns:
        M probes (eval mode): pooled embedding [N, D] -> logits [N, C].
    """
    generator = torch.Generator().manual_seed(seed)
    target = torch.as_tensor(classes, dtype=torch.long)
    order = torch.randperm(len(target), generator=generator)
    cut = int(round(len(target) * (1.0 - holdout))) if len(target) >= 8 else len(target)
    fit_rows, held_rows = order[:cut], order[cut:] if cut < len(target) else order
    prior = torch.bincount(target[fit_rows], minlength=num_classes).float() + 1.0
    log_prior = (prior / prior.sum()).log()
    probes = []
    for features in pooled:
        features = features.detach().float()
        mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
        probe = _Probe(mean, std, features.shape[1], hidden, num_classes, generator, log_prior)
        optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
        best, best_state = float("inf"), None
        for step in range(steps + 1):
            if step % check_every == 0 or step == steps:
                with torch.no_grad():
                    held = nn.functional.cross_entropy(
                        probe(features[held_rows]), target[held_rows]
                    ).item()
                if held < best:
                    best, best_state = held, {k: v.clone() for k, v in probe.state_dict().items()}
            if step == steps:
                break
            loss = nn.functional.cross_entropy(probe(features[fit_rows]), target[fit_rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        probe.load_state_dict(best_state)
        probe.eval()
        probes.append(probe)
    return probes


class _Probe(nn.Module):
    def __init__(
        self,
        mean: Tensor,
        std: Tensor,
        width: int,
        hidden: int,
        num_classes: int,
        generator: torch.Generator,
        log_prior: Tensor,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        first, last = self.net[0], self.net[2]
        with torch.no_grad():
            first.weight.uniform_(-(width**-0.5), width**-0.5, generator=generator)
            first.bias.zero_()
            last.weight.zero_()  # starts at the prior: agreement 0 until the data say more
            last.bias.copy_(log_prior)

    def forward(self, features: Tensor) -> Tensor:
        return self.net((features - self.mean) / self.std)
