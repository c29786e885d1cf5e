"""Task metrics from torchmetrics, under the names every run file uses.

classification: accuracy, auroc, f1_macro, f1_micro; multilabel: f1_micro, f1_macro, auroc,
accuracy; regression: mse, mae, pearson. ``selection_metric`` is what picks the best checkpoint
(docs/method.md section 9): accuracy, macro-F1 for multi-label, loss for regression.
"""

from __future__ import annotations

from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics import classification as tmc
from torchmetrics import regression as tmr


def task_metrics(task: str, num_outputs: int, *, sync: bool = True) -> MetricCollection:
    """A fresh MetricCollection for the task, fed with (prediction [B, C], target).

    ``sync=False`` for metrics of one process's own data outside the Trainer: otherwise, while
    a distributed run's process group is up, computing them waits for the other processes.
    """
    c, options = num_outputs, {"sync_on_compute": sync}
    if task == "classification":
        return MetricCollection(
            {
                "accuracy": tmc.MulticlassAccuracy(c, average="micro", **options),
                "auroc": tmc.MulticlassAUROC(c, **options),
                "f1_macro": tmc.MulticlassF1Score(c, average="macro", **options),
                "f1_micro": tmc.MulticlassF1Score(c, average="micro", **options),
            }
        )
    if task == "multilabel":
        return MetricCollection(
            {
                "f1_micro": tmc.MultilabelF1Score(c, average="micro", **options),
                "f1_macro": tmc.MultilabelF1Score(c, average="macro", **options),
                "auroc": tmc.MultilabelAUROC(c, average="macro", **options),
                "accuracy": tmc.MultilabelAccuracy(c, average="micro", **options),
            }
        )
    return MetricCollection(
        {
            "mse": tmr.MeanSquaredError(**options),
            "mae": tmr.MeanAbsoluteError(**options),
            "pearson": tmr.PearsonCorrCoef(**options),
        }
    )


def metric_inputs(task: str, prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """What the task's metrics take: probabilities and integer targets, or flat values."""
    if task == "classification":
        return prediction.softmax(-1), target
    if task == "multilabel":
        return prediction.sigmoid(), target.long()
    return prediction.reshape(-1), target.reshape(-1).to(prediction.dtype)


def selection_metric(task: str) -> tuple[str, str]:
    """(metric name, "max" | "min") that selects the best epoch."""
    if task == "classification":
        return "accuracy", "max"
    if task == "multilabel":
        return "f1_macro", "max"
    return "loss", "min"
