"""The suite's data sets (i2moe.experiments.faithfulness.datasets): cases, generated arrays,
bundles and their PID-checked ground truth."""

import numpy as np
import pytest

from i2moe.data.synth import generate
from i2moe.experiments.faithfulness.datasets import (
    Case,
    check_ground_truth,
    make_data,
    suite,
    suite_bundle,
    true_interaction,
)


def test_suite_covers_kinds_modalities_and_embeddings():
    cases = suite()
    assert len(cases) == 6 * 3 * 2
    assert {c.num_modalities for c in cases} == {2, 3, 4}
    assert {c.embedding for c in cases} == {"vector", "tokens"}


def test_mixture_carries_its_mechanism_as_a_cue():
    arrays = make_data(Case("mixed", 2, "tokens"), num_samples=400, seed=0)
    assert arrays["mod0"].shape == (400, 4, 16 + 4)
    cue = arrays["mod0"][:, 0, 16:].argmax(1)
    assert (cue == arrays["interaction"]).mean() > 0.95
    assert true_interaction(arrays) == "syn"


def test_circular_synergy_is_balanced_and_curved():
    arrays = make_data(Case("synergy_circular", 3, "vector"), num_samples=2000, seed=0)
    assert 0.4 < arrays["y"].mean() < 0.6
    assert true_interaction(arrays) == "syn"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("uniqueness_last", "uni_mod1"),
        ("redundancy", "red"),
        ("synergy_parity", "syn"),
        ("synergy_circular", "syn"),
        ("mixed", "syn"),
    ],
)
def test_ground_truth_is_verified_by_pid(kind, expected):
    pytest.importorskip("dit")
    check = check_ground_truth(make_data(Case(kind, 2, "vector"), num_samples=800, seed=0))
    assert check["pid"] == expected
    assert check["pid_matches"]


def test_pure_kinds_are_the_generators_data_sets():
    arrays = make_data(Case("uniqueness_last", 3, "tokens"), num_samples=200, seed=4)
    expected = generate(
        "uniqueness", num_modalities=3, num_samples=200, num_tokens=4, seed=4, unique_modality=2
    )
    assert arrays.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(arrays[key], value)


def test_bundle_keeps_the_generated_split_and_scale():
    arrays = make_data(Case("redundancy", 2, "vector"), num_samples=200, seed=0)
    bundle = suite_bundle(arrays, "redundancy-2m-vector")
    assert bundle.task == "classification" and bundle.num_outputs == 2
    assert bundle.modality_names == ["mod0", "mod1"]
    assert [len(bundle.split(s)) for s in ("train", "val", "test")] == [
        int((arrays["split"] == code).sum()) for code in range(3)
    ]
    np.testing.assert_array_equal(
        bundle.test.arrays["mod1"].numpy(), arrays["mod1"][arrays["split"] == 2]
    )
