"""i2moe: interpretable multimodal interaction-aware mixture-of-experts (I2MoE, ICML 2025)."""

from i2moe.builders import build_model, i2moe_model, vanilla_model
from i2moe.config import ABLATIONS, LossConfig, ModelConfig
from i2moe.execution import ExpertStack, InteractionExpert
from i2moe.fusion import FUSIONS, Fused, build_fusion, register_fusion
from i2moe.losses import I2MoELoss, LossParts, interaction_losses, task_loss, total_loss
from i2moe.model import FusionOutput, I2MoE, I2MoEOutput, PredictionHead, VanillaFusion
from i2moe.perturbation import Perturbation
from i2moe.reweighting import GlobalWeights, ReweightingMLP

__version__ = "0.1.0"


def __getattr__(name: str) -> type:
    # The estimators load Lightning and pandas: imported on first use, not with the package.
    if name in ("I2MoEClassifier", "I2MoERegressor"):
        import i2moe.estimator

        return getattr(i2moe.estimator, name)
    if name == "FusionModel":  # the vanilla model's old name
        import i2moe.model

        return i2moe.model.FusionModel
    raise AttributeError(f"module 'i2moe' has no attribute {name!r}")


__all__ = [
    "ABLATIONS",
    "FUSIONS",
    "ExpertStack",
    "Fused",
    "VanillaFusion",
    "FusionOutput",
    "GlobalWeights",
    "I2MoE",
    "I2MoEClassifier",
    "I2MoELoss",
    "I2MoERegressor",
    "I2MoEOutput",
    "InteractionExpert",
    "LossConfig",
    "LossParts",
    "ModelConfig",
    "Perturbation",
    "PredictionHead",
    "ReweightingMLP",
    "build_fusion",
    "build_model",
    "i2moe_model",
    "interaction_losses",
    "register_fusion",
    "task_loss",
    "total_loss",
    "vanilla_model",
]
