"""Tests of ``i2moe.training.callbacks``: random states in checkpoints, continued CSV logs."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import torch

from i2moe.training.callbacks import RandomStateCheckpoint, RunCSVLogger


def test_random_state_checkpoint_restores_every_generator():
    callback, checkpoint = RandomStateCheckpoint(), {}
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    callback.on_save_checkpoint(None, None, checkpoint)
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    # The saved state must survive a weights-only load (what --resume reads).
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=True)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    callback.on_load_checkpoint(None, None, restored)
    assert torch.equal(torch.rand(3), drawn[0])
    np.testing.assert_array_equal(np.random.rand(3), drawn[1])
    assert random.random() == drawn[2]


def test_run_csv_logger_continues_the_log_of_a_resumed_run(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with (logs / "metrics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", "step", "val/loss"])
        writer.writeheader()
        writer.writerows({"epoch": e, "step": 2 * e, "val/loss": 1.0 / (e + 1)} for e in range(4))
    logger = RunCSVLogger(tmp_path, resume_epoch=1)  # the checkpoint had finished epoch 1
    logger.log_metrics({"epoch": 2, "train/loss": 0.5}, step=4)
    logger.save()
    with (logs / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["val/loss"] == "1.0" and rows[2]["train/loss"] == "0.5"


def test_a_new_run_starts_a_fresh_log(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text("epoch,step\n7,7\n")
    logger = RunCSVLogger(tmp_path)
    logger.log_metrics({"epoch": 0}, step=0)
    logger.save()
    assert "7,7" not in (tmp_path / "logs" / "metrics.csv").read_text()
