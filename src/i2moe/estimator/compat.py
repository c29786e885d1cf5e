"""scikit-learn's estimator base classes, or stand-ins with its contract when it is absent."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

try:
    from sklearn.base import BaseEstimator as EstimatorBase
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.exceptions import DataConversionWarning, NotFittedError
except ModuleNotFoundError:  # scikit-learn is an optional extra
    DataConversionWarning = UserWarning

    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before ``fit`` (scikit-learn's exception when it is installed)."""

    class EstimatorBase:
        """``get_params`` / ``set_params`` from the constructor's keyword arguments."""

        @classmethod
        def _get_param_names(cls) -> list[str]:
            signature = inspect.signature(cls.__init__)
            return sorted(p for p in signature.parameters if p != "self")

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params: Any) -> EstimatorBase:
            valid = self._get_param_names()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(f"invalid parameter {name!r}; valid: {', '.join(valid)}")
                setattr(self, name, value)
            return self

    class ClassifierMixin:
        _estimator_type = "classifier"

    class RegressorMixin:
        _estimator_type = "regressor"


def flatten_column_vector(y: Any) -> Any:
    """A column vector [N, 1] as [N], with scikit-learn's DataConversionWarning."""
    if getattr(y, "ndim", 1) == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; y is flattened",
            DataConversionWarning,
            stacklevel=4,
        )
    return y.reshape(-1)
