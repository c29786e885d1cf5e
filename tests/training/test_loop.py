"""Tests of ``i2moe.training.loop``: the epoch shuffle and the Trainer it builds."""

from __future__ import annotations

import pytest
import torch

from i2moe.config import RunConfig
from i2moe.training.callbacks import RunCSVLogger
from i2moe.training.loop import EpochShuffleSampler, build_trainer


def test_epoch_shuffle_depends_only_on_seed_and_epoch():
    first, second = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    torch.manual_seed(0)
    first.set_epoch(4)
    order = list(first)
    torch.manual_seed(1)  # the global generator plays no part
    second.set_epoch(4)
    assert list(second) == order and sorted(order) == list(range(20))
    second.set_epoch(5)
    assert list(second) != order


def test_gradient_clip_reaches_the_trainer(tmp_path):
    config = RunConfig()
    trainer, _ = build_trainer(config.train, tmp_path, "val/loss", "min", progress=False)
    assert trainer.gradient_clip_val is None
    config.train.gradient_clip = 0.5
    trainer, _ = build_trainer(config.train, tmp_path, "val/loss", "min", progress=False)
    assert (trainer.gradient_clip_val, trainer.gradient_clip_algorithm) == (0.5, "norm")


def test_the_csv_log_is_always_written_and_tensorboard_on_request(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from i2moe.training.loop import build_loggers

    only_csv = build_loggers(["csv"], tmp_path, None)
    assert [type(logger) for logger in only_csv] == [RunCSVLogger]
    both = build_loggers(["tensorboard"], tmp_path, None)
    assert isinstance(both[0], CSVLogger) and isinstance(both[1], TensorBoardLogger)


def test_unknown_or_uninstalled_loggers_are_one_clear_error(monkeypatch):
    import importlib.util

    from i2moe.training.loop import check_loggers

    with pytest.raises(ValueError, match="unknown logger 'neptune'; expected some of csv"):
        check_loggers(["csv", "neptune"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == "mlflow" else real(n))
    with pytest.raises(ValueError, match="needs the package mlflow: pip install mlflow"):
        check_loggers(["mlflow"])


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_wandb_offline_and_mlflow_file_store_log_into_the_run_folder(name, tmp_path):
    pytest.importorskip(name)
    from i2moe.training.loop import build_loggers

    logger = build_loggers([name], tmp_path, None)[1]
    logger.log_metrics({"train/loss": 0.5}, step=0)
    logger.finalize("success")
    written = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    assert written, f"{name} wrote nothing under logs/"


def test_later_ties_keep_the_later_of_two_equally_good_epochs(tmp_path):
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint

    from i2moe.training.loop import LaterTiesCheckpoint

    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=lambda b: b))
    for cls, keeps_tie in ((ModelCheckpoint, False), (LaterTiesCheckpoint, True)):
        callback = cls(dirpath=tmp_path, monitor="val/accuracy", mode="max")
        callback.best_k_models = {"best.ckpt": torch.tensor(0.8)}
        callback.kth_best_model_path = "best.ckpt"
        assert callback.check_monitor_top_k(trainer, torch.tensor(0.8)) is keeps_tie
        assert callback.check_monitor_top_k(trainer, torch.tensor(0.9))
        assert not callback.check_monitor_top_k(trainer, torch.tensor(0.7))
