"""Which samples are shown in detail (i2moe.interpret.samples)."""

import pytest
import torch

from i2moe.interpret.samples import choose_samples, resolve_samples

from .conftest import hand_explanation


def test_default_samples_are_correct_and_wrong_predictions():
    correct = torch.tensor([True] * 10 + [False] * 4)
    assert choose_samples(correct, count=3) == [0, 4, 9, 10, 12, 13]  # spread over each group
    assert choose_samples(torch.tensor([True, True]), count=3) == [0, 1]
    assert choose_samples(correct, count=0) == []


def test_samples_by_position_and_by_id():
    ids = ["a", "b", 7, "d"]
    assert resolve_samples(4, ids) is None
    assert resolve_samples(4, ids, samples=[2, -1]) == [2, 3]
    assert resolve_samples(4, ids, ids=["7", "a"]) == [2, 0]
    assert resolve_samples(4, ids, samples=[1], ids=["b"]) == [1]
    with pytest.raises(ValueError, match="out of range"):
        resolve_samples(4, ids, samples=[4])
    with pytest.raises(ValueError, match="unknown sample id"):
        resolve_samples(4, ids, ids=["zz"])
    assert hand_explanation(observed=None).chosen  # defaults: correct and wrong ones
