"""The benchmark's sizes and options (i2moe.experiments.bench.sizes)."""

import pytest

from i2moe.config import ModelConfig
from i2moe.experiments.bench.sizes import QUICK_SIZES, SIZES, passes, size_spec


def test_every_size_has_a_quick_twin_with_the_same_modalities_and_task():
    assert set(QUICK_SIZES) == set(SIZES)
    for name, size in SIZES.items():
        tiny = QUICK_SIZES[name]
        assert list(tiny.modalities) == list(size.modalities)
        assert (tiny.task, tiny.batch) == (size.task, 4)


@pytest.mark.parametrize("size", [*SIZES.values(), *QUICK_SIZES.values()])
def test_model_fields_are_model_config_fields_and_the_loss_its_own(size):
    ModelConfig(**size.model)  # architecture only: no loss weight among them
    assert "interaction_weight" not in size.model
    assert 0 < size.loss.interaction_weight <= 0.5


def test_passes_count_the_intact_pass_and_the_perturbed_modalities():
    adni = SIZES["adni"]
    assert passes(adni, None) == 1 + 4
    assert passes(adni, 2) == 3
    assert passes(adni, 9) == 5


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="mosi, adni, imdb"):
        size_spec("cifar", quick=False)
