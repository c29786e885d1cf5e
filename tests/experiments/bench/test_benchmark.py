"""A benchmark run (i2moe.experiments.bench.benchmark): JSON layout, the worker subprocess,
the command line.

Timings are never asserted; only structure and the operator counts, which do not depend on
the machine.
"""

import json

import pytest
import torch

from helpers import quick_bench_job
from i2moe.cli import COMMANDS, build_parser, main
from i2moe.cli import bench as bench_command
from i2moe.experiments.bench import benchmark

KEYS = {"train_ms", "infer_ms", "ops_per_step", "peak_mem_mb", "params"}


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    """One tiny size, all variants in this process."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["--quick", "--sizes", "imdb", "--device", "cpu", "--in-process", "--json", str(path)]
    assert main(["bench", *argv]) == 0
    return json.loads(path.read_text())


def test_quick_json_has_exactly_the_documented_keys(quick_result):
    assert len(quick_result) == 1
    entry = quick_result[0]
    assert set(entry) == {"size", "n", "device", "config", "vanilla", "loop", "fast"}
    assert (entry["size"], entry["n"], entry["device"]) == ("imdb", 2, "cpu")
    assert entry["config"]["floor_batch"] == 4 * 3 * entry["config"]["batch"]  # E * P * B
    for variant in ("vanilla", "loop", "fast"):
        extra = {"floor_train_ms"} if variant == "fast" else set()
        assert set(entry[variant]) == KEYS | extra
        for value in entry[variant].values():
            assert isinstance(value, int | float) and value >= 0
    assert entry["loop"]["params"] == entry["fast"]["params"] > entry["vanilla"]["params"]


def test_loop_path_dispatches_more_operators_than_the_fast_path(quick_result):
    entry = quick_result[0]
    assert entry["loop"]["ops_per_step"] > entry["fast"]["ops_per_step"]
    assert entry["fast"]["ops_per_step"] > entry["vanilla"]["ops_per_step"]


def test_config_records_the_model_and_its_loss_apart(quick_result):
    config = quick_result[0]["config"]
    assert config["loss"] == {"interaction_weight": 0.5, "gate_weight": 0.01}
    assert "interaction_weight" not in config["model"]
    assert config["optimizer"] == "Adam(lr=1e-4, foreach=True)"


@pytest.mark.slow
def test_worker_subprocess_measures_one_variant():
    result = benchmark.run_worker(quick_bench_job("imdb", "vanilla", floor=True))
    assert set(result) == KEYS | {"floor_train_ms"}
    assert result["peak_mem_mb"] >= 0 and result["ops_per_step"] > 0


def test_cli_sub_command_writes_json_and_table(tmp_path, capsys):
    path = tmp_path / "out.json"
    argv = ["bench", "--quick", "--sizes", "adni", "--in-process", "--perturb-k", "2"]
    assert main([*argv, "--json", str(path)]) == 0
    entry = json.loads(path.read_text())[0]
    assert entry["config"]["passes"] == 3 and entry["config"]["perturb_k"] == 2
    table = capsys.readouterr().out
    assert "fast/vanilla" in table and "loop/fast" in table and "floor" in table


def test_module_is_registered_as_a_sub_command():
    assert COMMANDS["bench"] is bench_command
    assert "bench" in build_parser().format_help()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_cuda_is_a_user_error(capsys):
    assert main(["bench", "--quick", "--sizes", "imdb", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quick_run_on_cuda(tmp_path):
    path = tmp_path / "cuda.json"
    argv = ["--quick", "--sizes", "imdb", "--device", "cuda", "--in-process", "--json", str(path)]
    assert main(["bench", *argv]) == 0
    entry = json.loads(path.read_text())[0]
    assert entry["device"] == "cuda" and entry["fast"]["peak_mem_mb"] > 0
