"""The Lightning wrapper: loss, optimiser and metrics around a plain-PyTorch model."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import lightning as L
import torch
from torch import Tensor

from i2moe.builders import ModelConfig, build_model
from i2moe.data.base import ModalitySpec
from i2moe.losses import total_loss
from i2moe.model import I2MoE
from i2moe.training.metrics import metric_inputs, task_metrics

SPLIT_PREFIX = {"val": "val", "test": "test"}


class FusionTask(L.LightningModule):
    """Trains an I2MoE (or vanilla fusion) model for one task.

    Args:
        modalities: the modalities as ``[{"name", "shape", "kind"}]`` (serialisable, so the
            checkpoint rebuilds the model on its own).
        task: "classification", "multilabel" or "regression".
        num_outputs: C.
        model: ModelConfig fields as a dict.
        lr / weight_decay: Adam.
        class_weights: cross-entropy class weights.
        regression_loss: "mse" or "smooth_l1".
        interaction_warmup: epochs trained with lambda_int 0 before the interaction losses join.
    """

    def __init__(
        self,
        *,
        modalities: list[dict[str, Any]],
        task: str,
        num_outputs: int,
        model: dict[str, Any],
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        class_weights: list[float] | None = None,
        regression_loss: str = "mse",
        interaction_warmup: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.specs = [ModalitySpec(m["name"], tuple(m["shape"]), m["kind"]) for m in modalities]
        self.model_config = ModelConfig(**model)
        self.model = build_model(self.specs, task, num_outputs, self.model_config)
        self.task = task
        self.num_outputs = num_outputs
        self.register_buffer(
            "class_weights",
            torch.tensor(class_weights, dtype=torch.float32) if class_weights else None,
            persistent=False,
        )
        self.metrics = torch.nn.ModuleDict(
            {split: task_metrics(task, num_outputs) for split in SPLIT_PREFIX}
        )
        self._data_wait = 0.0
        self._batch_end = None

    @staticmethod
    def spec_dicts(specs: list[ModalitySpec]) -> list[dict[str, Any]]:
        return [{"name": s.name, "shape": list(s.shape), "kind": s.kind} for s in specs]

    @property
    def is_i2moe(self) -> bool:
        return isinstance(self.model, I2MoE)

    def forward(self, inputs: dict[str, Tensor], observed: Tensor | None = None):
        return self.model(inputs, observed)

    @property
    def interaction_weight(self) -> float:
        """lambda_int now: 0 during the first ``interaction_warmup`` epochs of training."""
        warming_up = self.training and self.current_epoch < self.hparams.interaction_warmup
        return 0.0 if warming_up else self.model_config.interaction_weight

    def _run(self, batch: dict[str, Any]):
        observed = batch["observed"]
        # The all-present case skips the masking work entirely.
        output = self.model(batch["inputs"], None if bool(observed.all()) else observed)
        loss = total_loss(
            output,
            batch["target"],
            self.task,
            interaction_weight=self.interaction_weight,
            aux_weight=self.model_config.aux_weight,
            class_weights=self.class_weights,
            regression_loss=self.hparams.regression_loss,
        )
        return output, loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._batch_end is not None:
            self._data_wait += time.perf_counter() - self._batch_end

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._batch_end = time.perf_counter()

    def on_train_epoch_start(self) -> None:
        self._data_wait = 0.0
        self._batch_end = None
        self._epoch_start = time.perf_counter()
        self._samples = 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        _, loss = self._run(batch)
        size = len(batch["target"])
        self._samples += size
        self.log("train/loss", loss.total, prog_bar=True, batch_size=size)
        self.log("train/task_loss", loss.task, batch_size=size)
        if self.is_i2moe:
            self.log("train/interaction_loss", loss.interaction, batch_size=size)
        return loss.total

    def on_train_epoch_end(self) -> None:
        elapsed = time.perf_counter() - self._epoch_start
        # On several devices: the samples of all devices per second, each device's mean wait.
        rate = self._samples / max(elapsed, 1e-9)
        self.log("train/samples_per_s", rate, sync_dist=True, reduce_fx="sum")
        self.log("train/data_wait_s", self._data_wait, sync_dist=True)
        if self.is_i2moe:
            self.log("train/interaction_weight", self.interaction_weight, sync_dist=True)

    def _evaluate(self, batch: dict[str, Any], split: str) -> None:
        output, loss = self._run(batch)
        size = len(batch["target"])
        # sync_dist: on several devices the loss is the mean over all of them (else rank 0's).
        self.log(
            f"{split}/loss", loss.task, prog_bar=split == "val", batch_size=size, sync_dist=True
        )
        self.metrics[split].update(*metric_inputs(self.task, output.prediction, batch["target"]))

    def _log_metrics(self, split: str) -> None:
        values = self.metrics[split].compute()  # over all devices: torchmetrics syncs them
        self.log_dict(
            {f"{split}/{k}": v for k, v in values.items()}, prog_bar=split == "val", sync_dist=True
        )
        self.metrics[split].reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def configure_optimizers(self):
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )


def task_from_config(
    specs: list[ModalitySpec],
    task: str,
    num_outputs: int,
    model_config: ModelConfig,
    **train_options: Any,
) -> FusionTask:
    return FusionTask(
        modalities=FusionTask.spec_dicts(specs),
        task=task,
        num_outputs=num_outputs,
        model=dataclasses.asdict(model_config),
        **train_options,
    )
