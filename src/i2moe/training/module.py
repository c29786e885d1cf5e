"""The Lightning module: optimiser, loss object and metrics around any I2MoE or vanilla model."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from i2moe.builders import build_model
from i2moe.config import MOVED_KEYS, LossConfig, ModelConfig
from i2moe.losses import I2MoELoss
from i2moe.metrics import metric_inputs, task_metrics
from i2moe.model import I2MoE
from i2moe.spec import ModalitySpec

EVALUATION_SPLITS: tuple[str, ...] = ("val", "test")


class FusionLightningModule(L.LightningModule):
    """Trains an I2MoE (or vanilla fusion) model for one task.

    Built from a model and a loss (``FusionLightningModule(model, loss)``), it trains any
    module the user composed in Python; built with :meth:`from_config`, it also records the
    recipe (modalities, task, model and loss settings) in its hyperparameters, so a checkpoint
    rebuilds the model on its own (:meth:`from_checkpoint_state`).

    Args:
        model: an :class:`~i2moe.model.I2MoE` or :class:`~i2moe.model.VanillaFusion`.
        loss: the training loss; the default is :class:`~i2moe.losses.I2MoELoss` for the
            model's task with the paper's weights.
        lr / weight_decay: Adam.
        interaction_warmup: epochs trained with lambda_int 0 before the interaction losses join.
        recipe: what :meth:`from_config` built the model from (stored in the checkpoint).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: I2MoELoss | None = None,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        interaction_warmup: int = 0,
        recipe: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss if loss is not None else I2MoELoss.for_model(model)
        self.task = self.loss.task
        self.num_outputs = model.num_outputs
        hparams = {"lr": lr, "weight_decay": weight_decay, "interaction_warmup": interaction_warmup}
        self.save_hyperparameters({**dict(recipe or {}), **hparams})
        self.metrics = nn.ModuleDict(
            {split: task_metrics(self.task, self.num_outputs) for split in EVALUATION_SPLITS}
        )
        self._data_wait = 0.0
        self._batch_end: float | None = None

    @classmethod
    def from_config(
        cls,
        specs: Sequence[ModalitySpec],
        task: str,
        num_outputs: int,
        model_config: ModelConfig,
        loss_config: LossConfig | None = None,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        class_weights: Sequence[float] | None = None,
        regression_loss: str = "mse",
        interaction_warmup: int = 0,
    ) -> FusionLightningModule:
        """Build the model and the loss from their configurations."""
        loss_config = loss_config or LossConfig()
        model = build_model(list(specs), task, num_outputs, model_config)
        loss = I2MoELoss(
            task=task,
            interaction_weight=loss_config.interaction_weight,
            gate_weight=loss_config.gate_weight,
            evidence_weight=model_config.evidence_weight,
            class_weights=class_weights,
            regression_loss=regression_loss,
        )
        recipe = {
            "modalities": spec_dicts(specs),
            "task": task,
            "num_outputs": num_outputs,
            "model": dataclasses.asdict(model_config),
            "loss": dataclasses.asdict(loss_config),
            "class_weights": list(class_weights) if class_weights else None,
            "regression_loss": regression_loss,
        }
        return cls(
            model,
            loss,
            lr=lr,
            weight_decay=weight_decay,
            interaction_warmup=interaction_warmup,
            recipe=recipe,
        )

    @classmethod
    def from_checkpoint_state(cls, hparams: Mapping[str, Any]) -> FusionLightningModule:
        """Rebuild the module a checkpoint's ``hyper_parameters`` describe (weights not loaded).

        Checkpoints whose model settings still hold the loss weights (``interaction_weight``,
        ``aux_weight``) are read with those weights as the loss settings.
        """
        model = dict(hparams["model"])
        loss = dict(hparams.get("loss") or {})
        for (section, key), (_, new_key) in MOVED_KEYS.items():
            if section == "model" and key in model:
                loss.setdefault(new_key, model.pop(key))
        specs = [
            ModalitySpec(m["name"], tuple(m["shape"]), m["kind"]) for m in hparams["modalities"]
        ]
        return cls.from_config(
            specs,
            hparams["task"],
            hparams["num_outputs"],
            ModelConfig(**model),
            LossConfig(**loss),
            lr=hparams.get("lr", 1e-3),
            weight_decay=hparams.get("weight_decay", 0.0),
            class_weights=hparams.get("class_weights"),
            regression_loss=hparams.get("regression_loss", "mse"),
            interaction_warmup=hparams.get("interaction_warmup", 0),
        )

    @property
    def is_i2moe(self) -> bool:
        return isinstance(self.model, I2MoE)

    def forward(self, inputs: dict[str, Tensor], observed: Tensor | None = None):
        return self.model(inputs, observed)

    @property
    def interaction_weight(self) -> float:
        """lambda_int now: 0 during the first ``interaction_warmup`` epochs of training."""
        warming_up = self.training and self.current_epoch < self.hparams.interaction_warmup
        return 0.0 if warming_up else self.loss.interaction_weight

    def _run(self, batch: dict[str, Any]):
        observed = batch["observed"]
        # The all-present case skips the masking work entirely.
        output = self.model(batch["inputs"], None if bool(observed.all()) else observed)
        loss = self.loss(output, batch["target"], interaction_weight=self.interaction_weight)
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


def spec_dicts(specs: Sequence[ModalitySpec]) -> list[dict[str, Any]]:
    """Modality specs as plain dicts (for checkpoints and ``run.json``)."""
    return [{"name": s.name, "shape": list(s.shape), "kind": s.kind} for s in specs]
