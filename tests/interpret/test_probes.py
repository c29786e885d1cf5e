"""Unimodal probes (i2moe.interpret.probes)."""

import numpy as np
import torch

from i2moe.interpret.probes import fit_probes


def test_probe_of_an_uninformative_modality_stays_at_the_prior():
    generator = torch.Generator().manual_seed(0)
    classes = torch.randint(0, 2, (400,), generator=generator)
    informative = torch.randn(400, 8, generator=generator) + 2.0 * classes[:, None]
    noise = torch.randn(400, 8, generator=generator)
    probes = fit_probes([informative, noise], classes.numpy(), 2, seed=0)
    with torch.no_grad():
        told = probes[0](informative).softmax(-1)[torch.arange(400), classes]
        guessed = probes[1](noise).softmax(-1)[torch.arange(400), classes]
    assert told.mean() > 0.9
    assert (guessed - 0.5).abs().max() < 0.1  # no spurious agreement from fitting noise


def test_probes_are_seeded_and_in_eval_mode():
    features = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))  # < 8: no holdout
    classes = np.array([0, 1, 2, 0, 1, 2])
    first = fit_probes([features], classes, 3, seed=5, steps=20)
    second = fit_probes([features], classes, 3, seed=5, steps=20)
    assert not first[0].training
    with torch.no_grad():
        logits = first[0](features)
        torch.testing.assert_close(logits, second[0](features))
    assert logits.shape == (6, 3)
