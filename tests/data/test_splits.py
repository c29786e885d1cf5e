import numpy as np
import pytest

from i2moe.data.base import DataError
from i2moe.data.splits import (
    check_split_sizes,
    class_split,
    multilabel_holdout,
    random_split,
    split_codes_from_array,
    stratified_split,
)


def test_sizes_follow_fractions():
    codes = stratified_split(np.zeros(100, dtype=int), seed=0)
    assert codes.dtype == np.int8
    assert np.bincount(codes).tolist() == [70, 15, 15]


def test_class_proportions_are_kept_in_every_split():
    labels = np.repeat([0, 1, 2], [200, 100, 40])
    codes = stratified_split(labels, seed=3)
    for code, share in enumerate((0.7, 0.15, 0.15)):
        counts = np.bincount(labels[codes == code], minlength=3)
        np.testing.assert_allclose(counts, np.array([200, 100, 40]) * share, atol=1)
    assert np.bincount(codes).tolist() == [238, 51, 51]


def test_rare_classes_go_to_train_first():
    labels = np.array([0] * 30 + [1, 2, 2])
    codes = stratified_split(labels, seed=1)
    assert {1, 2} <= set(labels[codes == 0].tolist())
    assert set(codes.tolist()) == {0, 1, 2}


def test_tiny_data_still_fills_every_split():
    assert sorted(stratified_split(["a", "a", "a"], seed=0).tolist()) == [0, 1, 2]


def test_deterministic_for_a_seed_and_different_across_seeds():
    labels = np.random.default_rng(0).integers(0, 3, 200)
    first = stratified_split(labels, seed=5)
    np.testing.assert_array_equal(first, stratified_split(labels, seed=5))
    assert not np.array_equal(first, stratified_split(labels, seed=6))


def test_custom_fractions_and_random_split():
    codes = random_split(40, fractions=(2, 1, 1), seed=0)
    assert np.bincount(codes).tolist() == [20, 10, 10]


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        stratified_split(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        stratified_split(np.zeros(4), fractions=(1.0, -0.5, 0.5))


def test_user_codes_are_validated():
    codes = split_codes_from_array(np.array([0.0, 1.0, 2.0]), source="f.npz", field="array 'split'")
    assert codes.tolist() == [0, 1, 2]
    with pytest.raises(DataError, match=r"f\.npz: array 'split': holds the values 3"):
        split_codes_from_array(np.array([0, 1, 3]), source="f.npz", field="array 'split'")
    with pytest.raises(DataError, match="val split is empty"):
        check_split_sizes(np.array([0, 0, 2]), source="f.npz", field="array 'split'")


def test_class_split_gives_sorted_disjoint_indices_with_class_proportions():
    labels = np.repeat([0, 1, 2], [100, 40, 20])
    train, val, test = class_split(labels, 0.15, 0.15, seed=5)
    assert np.bincount(labels[val]).tolist() == [15, 6, 3]
    assert np.bincount(labels[test]).tolist() == [15, 6, 3]
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    assert all(np.array_equal(np.sort(part), part) for part in (train, val, test))
    again = class_split(labels, 0.15, 0.15, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))


def test_multilabel_holdout_keeps_label_proportions():
    rng = np.random.default_rng(0)
    rates = np.array([0.02, 0.05, 0.2, 0.5])
    labels = rng.random((400, 4)) < rates
    held_out = multilabel_holdout(labels, 0.25, seed=0)
    assert abs(held_out.sum() - 100) <= 2
    for column in range(4):
        positives = labels[:, column].sum()
        assert abs(labels[held_out, column].sum() - 0.25 * positives) <= 1
    assert np.array_equal(held_out, multilabel_holdout(labels, 0.25, seed=0))
    assert not np.array_equal(held_out, multilabel_holdout(labels, 0.25, seed=1))
