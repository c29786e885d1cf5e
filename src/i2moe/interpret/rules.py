"""Per-task rules for reading a model's outputs: what they predict, whether that is correct,
whether the experts agree, and how far a prediction moved.

Shape letters: N samples, E experts (n+2), C outputs.

- correct: classification, the arg-max class is the target; multi-label, the whole predicted
  label set (logit > 0) equals the target set; regression, ``|prediction - target| <= tolerance``.
- experts agree: classification, every expert has the same arg-max class; multi-label, every
  expert predicts the same label set; regression, ``max - min`` of the experts' outputs is at most
  ``tolerance``.
- prediction change: classification, total-variation distance between the class probabilities;
  multi-label, mean over labels of the absolute change of the label probability; regression, the
  absolute change of the prediction. A flip is a change of the predicted class (label set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def output_names(
    task: str, num_outputs: int, class_names: Sequence[str] | None = None
) -> list[str]:
    """Names of the C outputs: the class (label) names, ``0..C-1``, or ``value`` (regression)."""
    if task == "regression":
        return ["value"]
    if class_names is not None and len(class_names) == num_outputs:
        return [str(name) for name in class_names]
    return [str(c) for c in range(num_outputs)]


def predicted_labels(task: str, outputs: Tensor) -> Tensor:
    """What outputs [..., C] predict: class ids [...], label sets [..., C] (bool), or values."""
    if task == "classification":
        return outputs.argmax(-1)
    if task == "multilabel":
        return outputs > 0  # sigmoid > 0.5
    return outputs[..., 0]


def prediction_correct(task: str, prediction: Tensor, target: Tensor, tolerance: float) -> Tensor:
    """[N] bool: is the final prediction [N, C] right (see the module docstring)?"""
    if task == "classification":
        return prediction.argmax(-1) == target.long()
    if task == "multilabel":
        return ((prediction > 0) == target.bool()).all(-1)
    return (prediction[:, 0] - target.reshape(-1).to(prediction.dtype)).abs() <= tolerance


def experts_agree(task: str, expert_outputs: Tensor, tolerance: float) -> Tensor:
    """[N] bool: do all experts predict the same (within ``tolerance`` for regression)?

    Args:
        task: the task.
        expert_outputs: [N, E, C].
        tolerance: largest spread (max - min) of the experts' outputs that counts as agreement
            (regression only).
    """
    labels = predicted_labels(task, expert_outputs)  # [N, E] or [N, E, C]
    if task == "regression":
        return labels.amax(1) - labels.amin(1) <= tolerance
    same = labels == labels[:, :1]
    return same.flatten(1).all(1)


def expert_contributions(weights: Tensor, expert_outputs: Tensor) -> Tensor:
    """Weighted contributions [N, E, C] = w [N, E] x outputs [N, E, C]; they sum to the output."""
    return weights.unsqueeze(-1) * expert_outputs


def prediction_change(task: str, base: Tensor, changed: Tensor) -> tuple[Tensor, Tensor]:
    """How far ``changed`` [N, C] moved from ``base`` [N, C], and whether the label flipped.

    Returns:
        (change [N], flip [N] float: 1.0 where the predicted class or label set changed; NaN for
        regression, where nothing flips).
    """
    if task == "classification":
        p, q = base.softmax(-1), changed.softmax(-1)
        change = 0.5 * (p - q).abs().sum(-1)
        flip = (base.argmax(-1) != changed.argmax(-1)).to(base.dtype)
    elif task == "multilabel":
        change = (base.sigmoid() - changed.sigmoid()).abs().mean(-1)
        flip = ((base > 0) != (changed > 0)).any(-1).to(base.dtype)
    else:
        change = (base[:, 0] - changed[:, 0]).abs()
        flip = torch.full_like(change, math.nan)
    return change, flip
