"""``FusionLightningModule``: any model with a loss object, and the recipe a checkpoint holds."""

import dataclasses

import numpy as np
import torch

from helpers import tiny_model
from i2moe.builders import vanilla_model
from i2moe.config import LossConfig, ModelConfig, TrainConfig
from i2moe.data.base import ArrayDataset, DataBundle
from i2moe.losses import I2MoELoss
from i2moe.spec import ModalitySpec
from i2moe.training.loop import train_module
from i2moe.training.module import FusionLightningModule


def _bundle(num_samples: int = 48) -> DataBundle:
    rng = np.random.default_rng(0)
    y = np.arange(num_samples) % 4
    arrays = {
        "a": rng.normal(size=(num_samples, 10)).astype(np.float32) + y[:, None],
        "b": rng.normal(size=(num_samples, 5, 3)).astype(np.float32),
        "c": rng.normal(size=(num_samples, 7)).astype(np.float32),
    }
    split = ArrayDataset(arrays, y, "classification")
    specs = [ModalitySpec.from_shape(k, v.shape[1:]) for k, v in arrays.items()]
    return DataBundle("tiny", "classification", specs, 4, split, split, split)


def test_a_model_built_in_python_trains_through_the_one_training_path(tmp_path):
    torch.manual_seed(0)
    model = tiny_model()
    loss = I2MoELoss(task="classification", interaction_weight=0.3)
    module = FusionLightningModule(model, loss, lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    result = train_module(module, _bundle(), TrainConfig(epochs=2, batch_size=16), tmp_path, seed=0)
    assert set(result.test) == {"loss", "accuracy", "auroc", "f1_macro", "f1_micro"}
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert module.loss.interaction_weight == 0.3
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_default_loss_takes_the_model_s_task():
    module = FusionLightningModule(vanilla_model({"a": (4,), "b": (3,)}, 1, task="regression"))
    assert module.loss.task == "regression" and module.task == "regression"
    assert module.num_outputs == 1


def test_the_recipe_rebuilds_the_module_and_reads_old_loss_keys():
    specs = [ModalitySpec.from_shape("a", (4,)), ModalitySpec.from_shape("b", (3,))]
    model_config = ModelConfig(dim=8, fusion_options={"num_heads": 2})
    module = FusionLightningModule.from_config(
        specs, "classification", 3, model_config, LossConfig(interaction_weight=0.2)
    )
    rebuilt = FusionLightningModule.from_checkpoint_state(dict(module.hparams))
    rebuilt.load_state_dict(module.state_dict())
    assert rebuilt.loss.interaction_weight == 0.2
    # Checkpoints whose model settings hold the loss weights (the older layout).
    old = dict(module.hparams)
    old.pop("loss")
    old["model"] = {
        **dataclasses.asdict(model_config),
        "interaction_weight": 0.7,
        "aux_weight": 0.1,
    }
    restored = FusionLightningModule.from_checkpoint_state(old)
    assert (restored.loss.interaction_weight, restored.loss.gate_weight) == (0.7, 0.1)
    restored.load_state_dict(module.state_dict())
