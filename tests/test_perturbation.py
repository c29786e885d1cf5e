"""Replacement strategies and the lazily shaped running means."""

import torch

from i2moe.perturbation import Perturbation


def test_mean_tracks_training_embeddings_and_skips_missing_rows():
    p = Perturbation("mean", 2, momentum=0.5)
    a = torch.ones(4, 2, 3)
    b = torch.arange(4.0).view(4, 1, 1).expand(4, 1, 3)
    observed = torch.tensor([[True, True], [True, True], [True, False], [True, False]])
    p.update([a, b], observed)
    torch.testing.assert_close(p.running_mean(0), torch.ones(2, 3))
    torch.testing.assert_close(p.running_mean(1), torch.full((1, 3), 0.5))  # rows 0, 1 only
    p.update([3 * a, b], None)
    torch.testing.assert_close(p.running_mean(0), torch.full((2, 3), 2.0))  # lerp by 0.5


def test_running_means_load_from_a_state_dict_of_any_shape():
    p = Perturbation("mean", 1)
    p.update([torch.randn(5, 4, 6)])
    fresh = Perturbation("mean", 1)
    fresh.load_state_dict(p.state_dict())
    torch.testing.assert_close(fresh.running_mean(0), p.running_mean(0))


def test_random_replacements_differ_per_copy_and_zero_is_zero():
    emb = torch.randn(3, 2, 4)
    noise = Perturbation("random", 1).replacement(0, emb, 5)
    assert noise.shape == (5, 3, 2, 4)
    assert not torch.equal(noise[0], noise[1])
    assert Perturbation("zero", 1).replacement(0, emb, 2).abs().sum() == 0


def test_other_strategies_do_not_track_means():
    p = Perturbation("random", 1)
    p.update([torch.randn(2, 1, 3)])
    assert p.running_mean(0).numel() == 0
