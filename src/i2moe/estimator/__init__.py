"""Estimators with scikit-learn's contract: ``I2MoEClassifier`` and ``I2MoERegressor``.

They train in memory on ``X`` (a ``dict`` of modality arrays, a pandas DataFrame or a 2-D array
with a ``modalities`` column mapping) through the library's one training path, and save to and
load from the run folder format, so ``i2moe predict --run`` reads a saved estimator and
``I2MoEClassifier.load`` reads a folder written by ``i2moe fit``. scikit-learn is optional: with
it installed the classes are ``BaseEstimator`` subclasses (``clone``, pipelines,
``cross_val_score``); without it they keep ``get_params`` / ``set_params`` and ``score``.
"""

from i2moe.estimator.compat import NotFittedError
from i2moe.estimator.estimators import I2MoEClassifier, I2MoERegressor

__all__ = ["I2MoEClassifier", "I2MoERegressor", "NotFittedError"]
