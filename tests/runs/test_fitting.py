"""Tests of ``i2moe.runs.fitting``: one seed trained into a run folder."""

from __future__ import annotations

import csv
import json

from i2moe.runs.files import (
    read_checkpoint,
)
from i2moe.runs.loading import load_run


def test_fit_one_saves_last_after_every_epoch_and_metrics_last(tiny_run):
    run, metrics = tiny_run
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    # last.ckpt is the final epoch even when the best epoch came earlier.
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2
    assert "i2moe_random_state" in last
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    epochs = {row["epoch"] for row in csv.DictReader((run / "logs" / "metrics.csv").open())}
    assert {"0", "1", "2"} <= epochs  # (the final validate and test log one more)


def test_interaction_losses_join_after_the_warmup_epochs(tiny_run):
    run, _ = tiny_run
    config = load_run(run)[1]
    rows = csv.DictReader((run / "logs" / "metrics.csv").open())
    weights = {
        r["epoch"]: float(r["train/interaction_weight"])
        for r in rows
        if r.get("train/interaction_weight")
    }
    assert weights == {"0": 0.0, "1": 0.0, "2": config.loss.interaction_weight}
    assert config.loss.interaction_weight > 0
