"""``i2moe.training``: public names, the moved names' deprecation, a light metrics import."""

import subprocess
import sys

import pytest

import i2moe.training as training


def test_every_public_name_resolves_to_its_module():
    for name in training.__all__:
        value = getattr(training, name)
        assert value.__name__ == name and value.__module__.startswith("i2moe.training.")


@pytest.mark.parametrize("name", sorted(training._MOVED))
def test_moved_names_still_resolve_with_a_deprecation_warning(name):
    module, new_name = training._MOVED[name]
    with pytest.warns(DeprecationWarning, match=f"use {module}.{new_name}"):
        value = getattr(training, name)
    assert value is getattr(sys.modules[module], new_name)


def test_metrics_import_does_not_load_the_run_machinery():
    code = "import sys, i2moe.metrics; print('i2moe.runs.fitting' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
