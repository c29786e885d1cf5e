"""Exact PID ground truth (i2moe.experiments.pid): BROJA on small discrete cases and generated
data."""

import numpy as np
import pytest

from i2moe.data.synth import generate
from i2moe.experiments.pid import check_interaction, group_codes, joint_pmf

dit = pytest.importorskip("dit")

from i2moe.experiments.pid import pid_broja  # noqa: E402


def _pmf(rule):
    pmf = np.zeros((2, 2, 2))
    for a in range(2):
        for b in range(2):
            pmf[a, b, rule(a, b)] += 0.25
    return pmf


# dit's optimiser is numerical and not deterministic: atoms agree to about 1e-3.


def test_xor_is_one_bit_of_synergy():
    atoms = pid_broja(_pmf(lambda a, b: a ^ b))
    assert atoms.synergy == pytest.approx(1.0, abs=1e-2)
    assert atoms.redundancy + atoms.unique_0 + atoms.unique_1 == pytest.approx(0.0, abs=1e-2)
    assert atoms.dominant() == "syn"


def test_copied_bit_is_one_bit_of_redundancy():
    pmf = np.zeros((2, 2, 2))
    pmf[0, 0, 0] = pmf[1, 1, 1] = 0.5
    atoms = pid_broja(pmf)
    assert atoms.redundancy == pytest.approx(1.0, abs=1e-2)
    assert atoms.dominant() == "red"


def test_label_equal_to_first_source_is_one_unique_bit():
    atoms = pid_broja(_pmf(lambda a, b: a))
    assert atoms.unique_0 == pytest.approx(1.0, abs=1e-2)
    assert atoms.unique_1 == pytest.approx(0.0, abs=1e-2)
    assert atoms.dominant() == "uni_0"


def test_joint_pmf_and_group_codes():
    pmf = joint_pmf(np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    assert pmf.shape == (2, 2, 2) and pmf.sum() == pytest.approx(1.0)
    assert len(np.unique(group_codes(np.array([[0, 1], [0, 1], [1, 0]])))) == 2


@pytest.mark.parametrize("num_modalities", [2, 3])
@pytest.mark.parametrize(
    ("interaction", "expected"),
    [("uniqueness", "uni_1"), ("redundancy", "red"), ("synergy", "syn")],
)
def test_generated_data_has_the_interaction_it_claims(num_modalities, interaction, expected):
    arrays = generate(
        interaction, num_modalities=num_modalities, num_samples=400, seed=0, unique_modality=1
    )
    check = check_interaction(arrays["latent_bits"], arrays["y"])
    assert check.interaction == expected
    assert check.information == pytest.approx(1.0, abs=0.05)


def test_and_gate_is_mixed_redundancy_and_synergy():
    # BROJA of AND: about 0.311 bits redundancy and 0.5 bits synergy; no atom holds 90%.
    atoms = pid_broja(_pmf(lambda a, b: a & b))
    assert atoms.redundancy == pytest.approx(0.311, abs=0.01)
    assert atoms.synergy == pytest.approx(0.5, abs=0.01)
    latent = np.array([[a, b] for a in range(2) for b in range(2)] * 25)
    assert check_interaction(latent, latent[:, 0] & latent[:, 1]).interaction == "mixed"
