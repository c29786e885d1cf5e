"""The package i2moe.interpret: ``explain`` and the names it resolves on first use."""

import subprocess
import sys

import pytest

from i2moe import interpret
from i2moe.interpret import explain

from .conftest import trained


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_explain_numbers_for_other_tasks(task):
    model, dataset = trained(2, task=task)
    explanation = explain(model, dataset, None, sample_ids=["s001"], tolerance=0.4)
    assert explanation.files == {}
    assert explanation.chosen == [1]
    assert explanation.agreement.to_numpy().sum() == pytest.approx(100.0)
    assert explanation.expert_outputs.shape == (48, 4, 2 if task == "multilabel" else 1)
    summary = explanation.sensitivity_summary
    assert summary["modality"].tolist() == ["mod0", "mod1"]
    if task == "regression":
        assert summary["flip_share"].isna().all()
    else:
        assert summary["flip_share"].between(0, 1).all()


def test_explain_refuses_an_unknown_option():
    model, dataset = trained(2)
    with pytest.raises(TypeError, match="colour"):
        explain(model, dataset, colour="red")


def test_the_lazy_names_resolve_and_the_package_imports_nothing_heavy():
    for name in interpret.__all__:
        assert callable(getattr(interpret, name)), name
    with pytest.raises(AttributeError, match="write_interpretation"):
        interpret.write_interpretation  # noqa: B018  (run folders belong to i2moe.runs)
    code = (
        "import sys, i2moe.interpret; "
        "assert not {'i2moe.interpret.analysis', 'i2moe.runs', 'matplotlib'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
