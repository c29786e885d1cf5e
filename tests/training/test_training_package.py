"""``i2moe.training``: the public names resolve, and importing its metrics stays light."""

import subprocess
import sys

import i2moe.training as training


def test_every_public_name_resolves_to_its_module():
    for name in training.__all__:
        value = getattr(training, name)
        assert value.__name__ == name and value.__module__.startswith("i2moe.training.")


def test_metrics_import_does_not_load_the_run_machinery():
    code = "import sys, i2moe.training.metrics; print('i2moe.training.run' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
