"""``I2MoEClassifier`` and ``I2MoERegressor``: their targets, predictions and scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from i2moe.estimator.base import I2MoEEstimator
from i2moe.estimator.compat import ClassifierMixin, RegressorMixin, flatten_column_vector
from i2moe.spec import DataError


def _poor_score_tags(tags: Any) -> Any:
    """scikit-learn's tags: a network trained for a few epochs on a check's toy data does not
    reach the score a check expects of a converged model."""
    for name in ("classifier_tags", "regressor_tags"):
        group = getattr(tags, name, None)
        if group is not None:
            group.poor_score = True
    return tags


class I2MoEClassifier(ClassifierMixin, I2MoEEstimator):
    """I2MoE for class labels (one label per sample) or multi-hot labels (multilabel).

    The constructor takes the names of ``i2moe fit``'s options (``fusion``, ``vanilla``,
    ``dim``, ``epochs``, ``batch_size``, ``lr``, ``seed``, ``interaction_weight``,
    ``evidence_weight``, ``interaction_warmup``, ``early_stopping``, ...) plus ``modalities``
    (how the columns of a table or 2-D array ``X`` form modalities) and
    ``validation_fraction``.

    Fitted attributes: ``classes_``, ``module_`` (the trained Lightning module; ``module_.model``
    the I2MoE), ``attribution_`` (the dataset-level share of each interaction on the
    validation rows, with its method), ``validation_metrics_``, ``statistics_``,
    ``modality_names_``.

    Example:
        >>> model = I2MoEClassifier(epochs=5).fit({"a": xa, "b": xb}, y)  # doctest: +SKIP
        >>> model.predict_proba({"a": xa_new, "b": xb_new})  # doctest: +SKIP
    """

    def __sklearn_tags__(self) -> Any:
        return _poor_score_tags(super().__sklearn_tags__())

    def _encode_targets(self, y: Any, fitting: bool) -> tuple[str, int, np.ndarray]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            if not np.isin(y, (0, 1)).all():
                raise DataError("y: a 2-D y is multi-hot labels; expected 0/1 values only")
            if fitting:
                self.classes_ = np.arange(y.shape[1])
            return "multilabel", y.shape[1], y.astype(np.float32)
        y = flatten_column_vector(y)
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y[np.isfinite(y)], 1) == 0):
            raise ValueError(
                "Unknown label type: continuous. I2MoEClassifier needs class labels; use "
                "I2MoERegressor for numbers"
            )
        if fitting:
            self.classes_, codes = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise DataError(f"y has one class ({self.classes_[0]!r}); expected two or more")
            return "classification", len(self.classes_), codes.astype(np.int64)
        position = {c: i for i, c in enumerate(self.classes_)}
        unknown = sorted({str(v) for v in y if v not in position})
        if unknown:
            raise DataError(f"y holds classes unseen in fit: {unknown[:5]}")
        return "classification", len(self.classes_), np.array([position[v] for v in y])

    def predict_proba(self, X: Any, *, observed: Any = None) -> np.ndarray:
        """Class probabilities [N, C] (per-label probabilities for multilabel)."""
        outputs, _ = self._outputs(X, observed)
        logits = torch.from_numpy(outputs["prediction"])
        if self.module_.task == "multilabel":
            return logits.sigmoid().numpy()
        return logits.softmax(-1).numpy()

    def predict(self, X: Any, *, observed: Any = None) -> np.ndarray:
        """Class labels [N] (a 0/1 matrix [N, C] for multilabel)."""
        probabilities = self.predict_proba(X, observed=observed)
        if self.module_.task == "multilabel":
            return (probabilities > 0.5).astype(np.int64)
        return self.classes_[probabilities.argmax(1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (the share of exactly right label sets for multilabel)."""
        predicted = self.predict(X)
        y = np.asarray(y)
        right = (predicted == y).all(1) if predicted.ndim == 2 else predicted == y.reshape(-1)
        return float(np.average(right, weights=sample_weight))


class I2MoERegressor(RegressorMixin, I2MoEEstimator):
    """I2MoE for one number per sample; parameters and fitted attributes as
    :class:`I2MoEClassifier` (without ``classes_``)."""

    _task_kind = "regression"

    def __sklearn_tags__(self) -> Any:
        return _poor_score_tags(super().__sklearn_tags__())

    def _encode_targets(self, y: Any, fitting: bool) -> tuple[str, int, np.ndarray]:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] != 1:
            raise DataError(f"y: shape {y.shape}; expected one number per sample [N]")
        y = flatten_column_vector(y)
        if not np.isfinite(y).all():
            raise DataError("y holds NaN or infinite values; expected finite numbers")
        return "regression", 1, y.astype(np.float32)

    def predict(self, X: Any, *, observed: Any = None) -> np.ndarray:
        """Predicted values [N]."""
        outputs, _ = self._outputs(X, observed)
        return outputs["prediction"][:, 0].astype(np.float64)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The coefficient of determination R^2."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        residual = np.average((y - self.predict(X)) ** 2, weights=sample_weight)
        total = np.average((y - np.average(y, weights=sample_weight)) ** 2, weights=sample_weight)
        return float(1.0 - residual / total) if total > 0 else 0.0
