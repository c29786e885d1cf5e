"""Robustness to missing modalities at test time: subsets, masking, rows and their JSON."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from i2moe.data.base import ArrayDataset
from i2moe.data.synth import write_synth
from i2moe.runs.evaluation import WithoutModalities, evaluate_run, missing_mask
from i2moe.runs.loading import load_run, run_data
from i2moe.runs.robustness import (
    ALL_SUBSETS_UP_TO,
    RobustnessRow,
    modality_subsets,
    robustness_run,
    robustness_table,
    split_metrics,
)

NAMES_3 = ["mod0", "mod1", "mod2"]


def tiny_fit(data, run, *flags):
    from i2moe.cli import main

    args = ["--quiet", "fit", "--data", str(data), "--output", str(run), "--epochs", "1"]
    assert main([*args, "--dim", "8", "--seeds", "0", *flags]) == 0
    return run


@pytest.fixture(scope="module")
def three_modality_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "mixed3.npz"
    write_synth(path, "mixed", num_modalities=3, num_samples=90, dim=4, seed=0)
    return path


@pytest.fixture(scope="module")
def i2moe_run(three_modality_npz, tmp_path_factory):
    return tiny_fit(three_modality_npz, tmp_path_factory.mktemp("i2moe") / "run")


@pytest.fixture(scope="module")
def i2moe_rows(i2moe_run):
    """The rows of ``robustness_run`` on the I2MoE run, written to its robustness.json."""
    return robustness_run(i2moe_run)


@pytest.fixture(scope="module")
def vanilla_run(three_modality_npz, tmp_path_factory):
    run = tmp_path_factory.mktemp("vanilla") / "run"
    return tiny_fit(three_modality_npz, run, "--vanilla", "--fusion", "lf")


@pytest.mark.parametrize("count", range(1, ALL_SUBSETS_UP_TO + 1))
def test_every_non_empty_subset_up_to_four_modalities(count):
    names = [f"m{i}" for i in range(count)]
    subsets = modality_subsets(names)
    assert len(subsets) == 2**count - 1
    assert len(set(subsets)) == len(subsets)
    assert subsets[0] == tuple(names)
    assert all(list(s) == sorted(s, key=names.index) for s in subsets)  # the modalities' order
    assert [len(s) for s in subsets] == sorted((len(s) for s in subsets), reverse=True)


@pytest.mark.parametrize("count", [5, 7])
def test_beyond_four_modalities_full_set_each_left_out_and_each_alone(count):
    names = [f"m{i}" for i in range(count)]
    subsets = modality_subsets(names)
    assert len(subsets) == 2 * count + 1
    assert subsets[0] == tuple(names)
    left_out = {tuple(n for n in names if n != name) for name in names}
    assert set(subsets[1 : count + 1]) == left_out
    assert subsets[count + 1 :] == [(name,) for name in names]


def test_missing_mask_marks_the_dropped_modalities():
    assert missing_mask(NAMES_3, ["mod2", "mod0"]).tolist() == [True, False, True]
    assert missing_mask(NAMES_3, []).tolist() == [False, False, False]


def test_an_unknown_modality_is_one_error_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"'nope'.*expected names from: mod0, mod1, mod2"):
        missing_mask(NAMES_3, ["mod0", "nope"])


def test_dropping_every_modality_is_refused():
    with pytest.raises(ValueError, match=r"every modality.*at most 2 of: mod0, mod1, mod2"):
        missing_mask(NAMES_3, NAMES_3)


def test_without_modalities_marks_them_missing_and_keeps_the_rest():
    observed = torch.tensor([[True, True, True], [True, False, True]])
    dataset = ArrayDataset(
        {"mod0": torch.ones(2, 3).numpy(), "mod1": torch.ones(2, 2).numpy(), "mod2": [[1], [2]]},
        [0, 1],
        "classification",
        observed=observed.numpy(),
        sample_ids=["a", "b"],
    )
    wrapped = WithoutModalities(dataset, torch.tensor([True, False, False]))
    assert len(wrapped) == 2
    assert wrapped.sample_ids == ["a", "b"]
    assert wrapped[0]["observed"].tolist() == [False, True, True]
    assert wrapped[1]["observed"].tolist() == [False, False, True]  # already missing stays so
    assert torch.equal(wrapped[1]["inputs"]["mod2"], dataset[1]["inputs"]["mod2"])
    assert wrapped[1]["index"] == 1


def test_undefined_metrics_are_null_in_json_and_n_a_in_the_table():
    row = RobustnessRow(["a"], ["b"], {"pearson": math.nan, "mse": 0.5}, None)
    assert row.to_json() == {
        "present": ["a"],
        "absent": ["b"],
        "metrics": {"pearson": None, "mse": 0.5},
        "attribution": None,
    }
    table = robustness_table([row])
    assert "| a | b | n/a | 0.5000 |" in table
    assert "No attribution: a vanilla run" in table


@pytest.mark.slow
def test_one_row_per_subset_written_as_json(i2moe_run, i2moe_rows):
    rows = i2moe_rows
    written = json.loads((i2moe_run / "robustness.json").read_text())
    assert written == [row.to_json() for row in rows]
    assert len(written) == 2**3 - 1
    assert [r["present"] for r in written][:4] == [
        NAMES_3,
        ["mod0", "mod1"],
        ["mod0", "mod2"],
        ["mod1", "mod2"],
    ]
    for entry in written:
        assert set(entry) == {"present", "absent", "metrics", "attribution"}
        assert sorted(entry["present"] + entry["absent"]) == NAMES_3
        assert set(entry["metrics"]) == {"accuracy", "auroc", "f1_macro", "f1_micro"}
        shares = {k: v for k, v in entry["attribution"].items() if k != "method"}
        assert list(shares) == ["uni_mod0", "uni_mod1", "uni_mod2", "syn", "red"]
        assert sum(shares.values()) == pytest.approx(1.0)
    table = robustness_table(rows)
    assert len([line for line in table.splitlines() if line.startswith("| mod")]) == 7
    assert f"method '{written[0]['attribution']['method']}'" in table


@pytest.mark.slow
def test_the_full_set_row_is_the_run_s_test_metrics_and_attribution(i2moe_run, i2moe_rows):
    full = i2moe_rows[0]
    assert full.absent == []
    assert full.metrics == evaluate_run(i2moe_run)
    interpretation = i2moe_run / "interpretation"
    attribution = json.loads((interpretation / "attribution.json").read_text())
    shares = {k: v for k, v in attribution.items() if k not in ("intervals", "distinguishable")}
    method = json.loads((interpretation / "attribution_methods.json").read_text())["method"]
    assert full.attribution == pytest.approx({"method": method, **shares}, abs=1e-6)


@pytest.mark.slow
def test_dropping_a_modality_is_its_observed_mask_set_false(i2moe_run, i2moe_rows):
    module, config, info = load_run(i2moe_run)
    masked = copy.deepcopy(run_data(config, info, None).test)
    masked.observed[:, 1] = False
    by_mask = split_metrics(module, masked)
    assert evaluate_run(i2moe_run, drop=["mod1"]) == by_mask
    row = next(r for r in i2moe_rows if r.absent == ["mod1"])
    assert row.metrics == by_mask


@pytest.mark.slow
def test_a_vanilla_run_has_metrics_and_no_attribution(vanilla_run):
    rows = robustness_run(vanilla_run)
    assert len(rows) == 7
    assert all(row.attribution is None for row in rows)
    assert rows[0].metrics == evaluate_run(vanilla_run)
    written = json.loads((vanilla_run / "robustness.json").read_text())
    assert all(entry["attribution"] is None for entry in written)
    assert "No attribution: a vanilla run" in robustness_table(rows)


@pytest.mark.slow
def test_another_split_has_its_own_default_file(i2moe_run):
    rows = robustness_run(i2moe_run, split="val")
    assert (i2moe_run / "robustness_val.json").exists()
    assert rows[0].metrics == evaluate_run(i2moe_run, split="val")
