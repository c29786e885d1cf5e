"""Estimators with scikit-learn's contract: ``I2MoEClassifier`` and ``I2MoERegressor``.

They train in memory on ``X`` (a ``dict`` of modality arrays, a pandas DataFrame or a 2-D array
with a ``modalities`` column mapping) through the library's one training path, and save to and
load from the run folder format, so ``i2moe predict --run`` reads a saved estimator and
``I2MoEClassifier.load`` reads a folder written by ``i2moe fit``. scikit-learn is optional: with
it installed the classes are ``BaseEstimator`` subclasses (``clone``, pipelines,
``cross_val_score``); without it they keep ``get_params`` / ``set_params`` and ``score``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from i2moe.config import ConfigError, LossConfig, ModelConfig, RunConfig, TrainConfig
from i2moe.data.base import ArrayDataset, DataBundle
from i2moe.data.scaling import standardize_modalities
from i2moe.data.splits import random_split, stratified_split
from i2moe.interpret.attribution import attribute, default_method
from i2moe.model import I2MoE
from i2moe.runs.checks import check_settings
from i2moe.runs.files import RunError, config_text, write_atomic
from i2moe.runs.inference import load_run, run_info
from i2moe.spec import DataError, ModalitySpec
from i2moe.training.loop import quiet_lightning, train_module
from i2moe.training.module import FusionLightningModule

log = logging.getLogger(__name__)

ESTIMATOR_FILE = "estimator.json"
REFERENCE_FILE = "reference.npz"
PREDICT_BATCH = 256
# Training rows kept (and saved) for the attribution probes of :meth:`explain`.
REFERENCE_ROWS = 1000

try:
    from sklearn.base import BaseEstimator as _Base
    from sklearn.base import ClassifierMixin as _ClassifierMixin
    from sklearn.base import RegressorMixin as _RegressorMixin
    from sklearn.exceptions import DataConversionWarning as _DataConversionWarning
    from sklearn.exceptions import NotFittedError
except ModuleNotFoundError:  # scikit-learn is an optional extra
    _DataConversionWarning = UserWarning

    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before ``fit`` (scikit-learn's exception when it is installed)."""

    class _Base:
        """``get_params`` / ``set_params`` from the constructor's keyword arguments."""

        @classmethod
        def _get_param_names(cls) -> list[str]:
            signature = inspect.signature(cls.__init__)
            return sorted(p for p in signature.parameters if p != "self")

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params: Any) -> _Base:
            valid = self._get_param_names()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(f"invalid parameter {name!r}; valid: {', '.join(valid)}")
                setattr(self, name, value)
            return self

    class _ClassifierMixin:
        _estimator_type = "classifier"

    class _RegressorMixin:
        _estimator_type = "regressor"


class _Modalities:
    """``X`` as modality arrays in the fitted order, with the observed mask [N, M]."""

    def __init__(self, arrays: dict[str, np.ndarray], observed: np.ndarray) -> None:
        self.arrays = arrays
        self.observed = observed

    def __len__(self) -> int:
        return len(self.observed)


def _column_groups(X: Any, modalities: Any) -> dict[str, list[Any]]:
    """The modality -> columns mapping for a table or 2-D array ``X``."""
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else list(range(X.shape[1]))
    if isinstance(modalities, int) and not isinstance(modalities, bool):
        if modalities < 1 or modalities > len(columns):
            raise DataError(
                f"X has n_features={len(columns)}: modalities={modalities} contiguous column "
                f"groups need 1 to {len(columns)} groups"
            )
        groups = np.array_split(np.arange(len(columns)), modalities)
        return {f"m{i}": [columns[j] for j in group] for i, group in enumerate(groups)}
    if not isinstance(modalities, Mapping) or not modalities:
        raise DataError(
            "X is a table or a 2-D array: expected modalities={name: [columns, ...]} (or an "
            "int, the number of contiguous column groups); or pass X as {name: array}"
        )
    groups = {}
    for name, names in modalities.items():
        names = [names] if isinstance(names, (str, int)) else list(names)
        missing = [c for c in names if c not in columns]
        if missing or not names:
            raise DataError(
                f"modalities[{name!r}]: columns {missing or names} are not in X; expected "
                f"names among {columns[:8]}{' ...' if len(columns) > 8 else ''}"
            )
        groups[str(name)] = names
    return groups


def _refuse_unusable(X: Any) -> Any:
    """X as a DataFrame, a dict, or a numeric 2-D array; refuse what cannot be one."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("sparse input is not supported: pass a dense array (X.toarray())")
    if isinstance(X, (Mapping, pd.DataFrame)):
        return X
    values = np.asarray(X)
    if np.iscomplexobj(values):
        raise ValueError("Complex data not supported: X holds complex numbers")
    if values.ndim == 1:
        raise ValueError(
            f"X: a 1-D array of shape {values.shape}; Reshape your data: a 2-D array "
            "[N, F] with modalities=, a DataFrame, or a dict of modality arrays"
        )
    if values.ndim == 2 and values.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={values.shape}) while a minimum of 1 is required.")
    return values


def _as_arrays(X: Any, modalities: Any) -> dict[str, np.ndarray]:
    X = _refuse_unusable(X)
    if isinstance(X, Mapping):
        if not X:
            raise DataError("X: expected a dict {modality name: array [N, ...]} with entries")
        arrays = {}
        for name, values in X.items():
            values = np.asarray(values)
            if values.ndim < 2 or not (
                np.issubdtype(values.dtype, np.number) or values.dtype == bool
            ):
                raise DataError(
                    f"X[{name!r}]: array of shape {values.shape} and dtype {values.dtype}; "
                    "expected numbers [N, F] (or [N, L, F], [N, C, H, W], ...)"
                )
            arrays[str(name)] = values
        sizes = {name: len(values) for name, values in arrays.items()}
        if len(set(sizes.values())) > 1:
            raise DataError(f"X: the modalities have different numbers of samples {sizes}")
        return arrays
    if isinstance(X, pd.DataFrame):
        groups = _column_groups(X, modalities)
        arrays = {}
        for name, columns in groups.items():
            frame = X[columns]
            numeric = frame.apply(pd.to_numeric, errors="coerce")
            bad = frame.notna() & numeric.isna()
            if bad.to_numpy().any():
                column = bad.any().idxmax()
                row = bad[column].to_numpy().argmax()
                raise DataError(
                    f"X column {column!r} (modality {name!r}): row {row} holds "
                    f"{frame[column].iloc[row]!r}; expected numbers (NaN for missing)"
                )
            arrays[name] = numeric.to_numpy(dtype=np.float64)
        return arrays
    values = X
    if values.ndim != 2:
        raise DataError(
            f"X: array of shape {values.shape}; expected a dict of modality arrays, a "
            "DataFrame, or a 2-D array [N, F] with modalities= naming its column groups"
        )
    groups = _column_groups(values, modalities)
    return {name: values[:, columns] for name, columns in groups.items()}


def _prepare(
    X: Any, modalities: Any, observed: Any, expected: Sequence[ModalitySpec] | None
) -> _Modalities:
    """Arrays as float32 in the expected order; rows that are NaN throughout a modality are
    missing; other NaN or infinite values are refused."""
    arrays = _as_arrays(X, modalities)
    if expected is not None:
        names = [spec.name for spec in expected]
        if sorted(arrays) != sorted(names):
            raise DataError(f"X has the modalities {sorted(arrays)}; expected {sorted(names)}")
        arrays = {name: arrays[name] for name in names}
        for spec in expected:
            if tuple(arrays[spec.name].shape[1:]) != spec.shape:
                raise DataError(
                    f"X[{spec.name!r}]: per-sample shape {arrays[spec.name].shape[1:]}; "
                    f"expected {spec.shape} as in fit"
                )
    num_samples = len(next(iter(arrays.values())))
    mask = np.ones((num_samples, len(arrays)), dtype=bool)
    prepared = {}
    for m, (name, values) in enumerate(arrays.items()):
        values = values.astype(np.float32)
        flat = values.reshape(num_samples, -1)
        finite = np.isfinite(flat)
        absent = np.isnan(flat).all(1)
        broken = ~finite.all(1) & ~absent
        if broken.any():
            raise DataError(
                f"X[{name!r}]: {int(broken.sum())} rows (first: {int(np.argmax(broken))}) hold "
                "NaN or infinite values in some features; expected finite numbers, or NaN in "
                "every feature of a missing modality"
            )
        values[absent] = 0.0
        mask[:, m] = ~absent
        prepared[name] = values
    if observed is not None:
        given = np.asarray(observed, dtype=bool)
        if given.shape != mask.shape:
            raise DataError(
                f"observed: shape {given.shape}; expected {mask.shape} (samples x modalities, "
                f"in the order {list(prepared)})"
            )
        mask &= given
    return _Modalities(prepared, mask)


class _I2MoEEstimator(_Base):
    """What the classifier and the regressor share; see :class:`I2MoEClassifier`."""

    _task_kind = "classification"

    def __init__(
        self,
        *,
        fusion: str = "transformer",
        vanilla: bool = False,
        dim: int = 32,
        num_patches: int = 1,
        masking: str = "random",
        ablation: str = "none",
        perturb_k: int | None = None,
        interaction_weight: float = 0.5,
        temperature: float = 1.0,
        evidence_weight: float = 0.0,
        execution: str = "vmap",
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        early_stopping: int | None = None,
        interaction_warmup: int = 0,
        gradient_clip: float | None = None,
        accelerator: str = "cpu",
        devices: Any = 1,
        precision: str = "32-true",
        modalities: Mapping[str, Sequence[Any]] | int | None = None,
        validation_fraction: float = 0.15,
        verbose: bool = False,
    ) -> None:
        self.fusion = fusion
        self.vanilla = vanilla
        self.dim = dim
        self.num_patches = num_patches
        self.masking = masking
        self.ablation = ablation
        self.perturb_k = perturb_k
        self.interaction_weight = interaction_weight
        self.temperature = temperature
        self.evidence_weight = evidence_weight
        self.execution = execution
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.early_stopping = early_stopping
        self.interaction_warmup = interaction_warmup
        self.gradient_clip = gradient_clip
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.modalities = modalities
        self.validation_fraction = validation_fraction
        self.verbose = verbose

    # The configuration ``i2moe fit`` would use for these parameters.
    def _run_config(self) -> RunConfig:
        config = RunConfig()
        config.data.name = "in-memory"
        config.model = ModelConfig(
            fusion=self.fusion,
            vanilla=self.vanilla,
            dim=self.dim,
            num_patches=self.num_patches,
            masking=self.masking,
            ablation=self.ablation,
            perturb_k=self.perturb_k,
            temperature=self.temperature,
            evidence_weight=self.evidence_weight,
            execution=self.execution,
        )
        config.loss = LossConfig(interaction_weight=self.interaction_weight)
        config.train = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seeds=[self.seed],
            early_stopping=self.early_stopping,
            interaction_warmup=self.interaction_warmup,
            gradient_clip=self.gradient_clip,
            accelerator=self.accelerator,
            devices=self.devices,
            precision=self.precision,
            loggers=["csv"],
        )
        return config

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) first"
            )

    # Subclasses: targets -> (task, num_outputs, encoded targets); outputs -> predictions.
    def _encode_targets(self, y: Any, fitting: bool) -> tuple[str, int, np.ndarray]:
        raise NotImplementedError

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        observed: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> _I2MoEEstimator:
        """Train on ``X`` and ``y``; keep the model that is best on the validation rows.

        Args:
            X: ``{modality: array [N, ...]}``, a DataFrame, or a 2-D array (with
                ``modalities``). A row that is NaN in every feature of a modality marks that
                modality missing for that sample.
            y: class labels [N] (any values), a multi-hot [N, C] matrix, or [N] numbers.
            observed: optional [N, M] bool, False where a modality is missing.
            eval_set: ``(X_val, y_val)`` for model selection; default: ``validation_fraction``
                of the training rows (stratified for classes).

        Returns:
            self.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        config = self._run_config()
        check_settings(config)
        X = _refuse_unusable(X)
        data = _prepare(X, self.modalities, observed, None)
        if len(data) < 2:
            raise ValueError(
                f"n_samples = {len(data)}: I2MoE needs at least 2 samples (training and "
                "validation rows)"
            )
        if len(data.arrays) < 2 and not self.vanilla:
            raise DataError(
                f"X has one modality ({next(iter(data.arrays))}); I2MoE's experts explain how "
                "several modalities interact: pass two or more, or vanilla=True"
            )
        task, num_outputs, targets = self._encode_targets(y, fitting=True)
        if len(targets) != len(data):
            raise DataError(f"y has {len(targets)} rows; X has {len(data)}")
        specs = [ModalitySpec.from_shape(n, v.shape[1:]) for n, v in data.arrays.items()]
        if eval_set is not None:
            val_data = _prepare(eval_set[0], self.modalities, None, specs)
            val_targets = self._encode_targets(eval_set[1], fitting=False)[2]
            train_rows = np.arange(len(data))
        else:
            val_data, val_targets = None, None
            codes = self._validation_split(targets, task)
            train_rows, val_rows = np.flatnonzero(codes == 0), np.flatnonzero(codes == 1)
        self.statistics_ = self._fit_statistics(data, specs, train_rows)
        self._scale(data)
        if val_data is None:
            val_data = _Modalities(
                {k: v[val_rows] for k, v in data.arrays.items()}, data.observed[val_rows]
            )
            val_targets = targets[val_rows]
            data = _Modalities(
                {k: v[train_rows] for k, v in data.arrays.items()}, data.observed[train_rows]
            )
            targets = targets[train_rows]
        else:
            self._scale(val_data)
        train = ArrayDataset(data.arrays, targets, task, data.observed)
        val = ArrayDataset(val_data.arrays, val_targets, task, val_data.observed)
        bundle = DataBundle(
            name="in-memory",
            task=task,
            modalities=specs,
            num_outputs=num_outputs,
            train=train,
            val=val,
            test=val,
            class_names=[str(c) for c in self.classes_] if hasattr(self, "classes_") else None,
            meta={"standardization": self.statistics_},
        )
        L.seed_everything(self.seed, workers=True, verbose=False)
        module = FusionLightningModule.from_config(
            specs,
            task,
            num_outputs,
            config.model,
            config.loss,
            lr=self.lr,
            weight_decay=self.weight_decay,
            interaction_warmup=self.interaction_warmup,
        )
        with tempfile.TemporaryDirectory(prefix="i2moe-estimator-") as folder:
            with quiet_lightning(), warnings.catch_warnings():
                if not self.verbose:
                    warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
                result = train_module(
                    module, bundle, config.train, folder, seed=self.seed, progress=self.verbose
                )
        module.eval()
        self.module_ = module
        self.config_ = config
        self.info_ = run_info(bundle)
        self.validation_metrics_ = result.val
        self.modality_names_ = [spec.name for spec in specs]
        if not isinstance(X, Mapping):
            self.n_features_in_ = sum(len(c) for c in _column_groups(X, self.modalities).values())
        self.reference_ = self._reference_rows(train)
        self._validation_rows = val
        self._attribution_cache: dict[str, Any] | None = None
        return self

    @property
    def attribution_(self) -> dict[str, Any] | None:
        """The dataset-level share of each interaction on the validation rows, with the
        method (``{"method": ..., "shares": {interaction: share}}``); None for vanilla fusion.
        Computed on first use."""
        self._check_is_fitted()
        if self._attribution_cache is None and self._validation_rows is not None:
            self._attribution_cache = self._attribution(self._validation_rows, self.reference_)
            self._validation_rows = None
        return self._attribution_cache

    def _reference_rows(self, train: ArrayDataset) -> ArrayDataset:
        """Up to REFERENCE_ROWS training rows (a seeded draw), scaled, with their targets."""
        rows = np.arange(len(train))
        if len(rows) > REFERENCE_ROWS:
            rows = np.sort(np.random.default_rng(self.seed).choice(rows, REFERENCE_ROWS, False))
        arrays = {k: v[rows].numpy() for k, v in train.arrays.items()}
        return ArrayDataset(
            arrays, train.targets[rows].numpy(), self.module_.task, train.observed[rows].numpy()
        )

    def _validation_split(self, targets: np.ndarray, task: str) -> np.ndarray:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(
                f"validation_fraction: {self.validation_fraction!r}; expected a number between "
                "0 and 1 (or pass eval_set)"
            )
        fractions = (1.0 - self.validation_fraction, self.validation_fraction, 0.0)
        if task == "classification":
            return stratified_split(targets, fractions, seed=self.seed)
        return random_split(len(targets), fractions, seed=self.seed)

    @staticmethod
    def _fit_statistics(
        data: _Modalities, specs: Sequence[ModalitySpec], train_rows: np.ndarray
    ) -> dict[str, dict[str, np.ndarray]]:
        """Feature statistics of the training rows, per vector modality (as the readers)."""
        train = np.zeros(len(data), dtype=bool)
        train[train_rows] = True
        vectors = {spec.name: None for spec in specs if spec.kind == "vector"}
        copies = {name: data.arrays[name].copy() for name in vectors}
        observed = data.observed[:, [i for i, s in enumerate(specs) if s.kind == "vector"]]
        return standardize_modalities(copies, observed, train, vectors)

    def _scale(self, data: _Modalities) -> None:
        for m, (name, values) in enumerate(data.arrays.items()):
            stats = self.statistics_.get(name)
            if stats is None:
                continue
            present = data.observed[:, m]
            mean = np.asarray(stats["mean"], dtype=np.float32)
            std = np.asarray(stats["std"], dtype=np.float32)
            values[present] = (values[present] - mean) / std

    def _attribution(self, dataset: ArrayDataset, reference: ArrayDataset) -> dict[str, Any] | None:
        model = self.module_.model
        if not isinstance(model, I2MoE) or len(dataset) == 0:
            return None
        method = default_method(model)
        result = attribute(model, dataset, [method], reference=reference, seed=self.seed)[method]
        return {"method": method, "shares": result.shares}

    def _outputs(self, X: Any, observed: Any = None) -> tuple[dict[str, np.ndarray], _Modalities]:
        """Prediction [N, C] and, for I2MoE, weights [N, E] in eval mode, in batches."""
        self._check_is_fitted()
        specs = [
            ModalitySpec(m["name"], tuple(m["shape"]), m["kind"]) for m in self.info_["modalities"]
        ]
        X = _refuse_unusable(X)
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and not isinstance(X, Mapping) and X.shape[1] != expected:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{expected} features as input"
            )
        data = _prepare(X, self.modalities, observed, specs)
        self._scale(data)
        model = self.module_.model
        parts: dict[str, list[torch.Tensor]] = {"prediction": [], "weights": []}
        with torch.no_grad():
            for start in range(0, len(data), PREDICT_BATCH):
                rows = slice(start, start + PREDICT_BATCH)
                inputs = {k: torch.from_numpy(v[rows]) for k, v in data.arrays.items()}
                mask = torch.from_numpy(data.observed[rows])
                output = model(inputs, None if bool(mask.all()) else mask)
                parts["prediction"].append(output.prediction)
                if isinstance(model, I2MoE):
                    parts["weights"].append(output.weights)
        outputs = {k: torch.cat(v).numpy() for k, v in parts.items() if v}
        return outputs, data

    def explain(self, X: Any, *, observed: Any = None) -> pd.DataFrame:
        """Per-sample attribution (the default method's shares, ``attr_<interaction>``) and the
        paper's reweighting weights (``weight_<expert>``), one row per sample of ``X``."""
        outputs, data = self._outputs(X, observed)
        model = self.module_.model
        if not isinstance(model, I2MoE):
            raise RunError("a vanilla model (vanilla=True) has no experts to explain")
        dataset = ArrayDataset(
            data.arrays, np.zeros(len(data), dtype=np.int64), "classification", data.observed
        )
        method = self.attribution_["method"] if self.attribution_ else default_method(model)
        reference = getattr(self, "reference_", None)
        result = attribute(model, dataset, [method], reference=reference, seed=self.seed)[method]
        frame = pd.DataFrame(result.scores, columns=[f"attr_{n}" for n in result.names])
        for e, name in enumerate(model.expert_names):
            frame[f"weight_{name}"] = outputs["weights"][:, e]
        if isinstance(X, pd.DataFrame):
            frame.index = X.index
        return frame

    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator as a run folder (``run.json``, ``config.yaml``,
        ``checkpoints/best.ckpt``, ``metrics.json``, ``estimator.json``).

        Raises:
            RunError: ``path`` exists and is not empty.
        """
        self._check_is_fitted()
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunError(f"{path}: exists and is not an empty folder; expected a new folder")
        module = self.module_
        checkpoint = {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "epoch": -1,
        }
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, path / "checkpoints" / "best.ckpt")
        write_atomic(path / "run.json", json.dumps(self.info_, indent=2))
        write_atomic(path / "config.yaml", config_text(self.config_))
        metrics = {"val": self.validation_metrics_, "best_checkpoint": "checkpoints/best.ckpt"}
        write_atomic(path / "metrics.json", json.dumps(metrics, indent=2))
        params = self.get_params()
        if not isinstance(params.get("modalities"), (int, type(None))):
            params["modalities"] = {k: list(v) for k, v in params["modalities"].items()}
        state = {
            "estimator": type(self).__name__,
            "params": params,
            "classes": [_plain(c) for c in getattr(self, "classes_", [])],
            "attribution": self.attribution_,
            "n_features_in": getattr(self, "n_features_in_", None),
        }
        write_atomic(path / ESTIMATOR_FILE, json.dumps(state, indent=2))
        reference = self.reference_
        np.savez(
            path / REFERENCE_FILE,
            targets=reference.targets.numpy(),
            observed=reference.observed.numpy(),
            **{f"modality_{k}": v.numpy() for k, v in reference.arrays.items()},
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> _I2MoEEstimator:
        """An estimator from a run folder written by :meth:`save` or by ``i2moe fit``."""
        module, config, info = load_run(path)
        state_file = Path(path) / ESTIMATOR_FILE
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        params = state.get("params") or _params_from_config(config)
        valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
        estimator = cls(**{k: v for k, v in params.items() if k in valid})
        if (module.task == "regression") != (cls._task_kind == "regression"):
            raise RunError(f"{path}: a {module.task} run; load it with the matching estimator")
        estimator.module_ = module
        estimator.config_ = config
        estimator.info_ = info
        estimator.modality_names_ = [m["name"] for m in info["modalities"]]
        estimator.statistics_ = {
            name: {
                "mean": np.asarray(s["mean"], np.float32),
                "std": np.asarray(s["std"], np.float32),
            }
            for name, s in (info.get("standardization") or {}).items()
        }
        estimator.validation_metrics_ = {}
        estimator._attribution_cache = state.get("attribution")
        estimator._validation_rows = None
        if state.get("n_features_in") is not None:
            estimator.n_features_in_ = state["n_features_in"]
        estimator.reference_ = _load_reference(Path(path), module, config, info)
        if cls._task_kind != "regression":
            classes = state.get("classes") or info.get("class_names") or range(module.num_outputs)
            estimator.classes_ = np.asarray(list(classes))
        return estimator


def _load_reference(
    path: Path, module: FusionLightningModule, config: RunConfig, info: dict[str, Any]
) -> ArrayDataset | None:
    """The saved reference rows, or for a run written by ``i2moe fit`` its training split."""
    file = path / REFERENCE_FILE
    if file.is_file():
        with np.load(file) as saved:
            names = [m["name"] for m in info["modalities"]]
            arrays = {name: saved[f"modality_{name}"] for name in names}
            return ArrayDataset(arrays, saved["targets"], module.task, saved["observed"])
    try:
        from i2moe.runs.inference import run_data

        return run_data(config, info, None).train
    except (DataError, RunError, OSError, ValueError) as error:
        log.warning("%s: no reference rows for explain (%s); the explained rows serve", path, error)
        return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _params_from_config(config: RunConfig) -> dict[str, Any]:
    """Estimator parameters of a run written by ``i2moe fit``."""
    model, train = config.model, config.train
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    params = {k: getattr(model, k) for k in fields}
    params |= {
        "interaction_weight": config.loss.interaction_weight,
        "epochs": train.epochs,
        "batch_size": train.batch_size,
        "lr": train.lr,
        "weight_decay": train.weight_decay,
        "seed": train.seeds[0],
        "early_stopping": train.early_stopping,
        "interaction_warmup": train.interaction_warmup,
        "gradient_clip": train.gradient_clip,
    }
    return params


def _poor_score_tags(tags: Any) -> Any:
    """scikit-learn's tags: a network trained for a few epochs on a check's toy data does not
    reach the score a check expects of a converged model."""
    for name in ("classifier_tags", "regressor_tags"):
        group = getattr(tags, name, None)
        if group is not None:
            group.poor_score = True
    return tags


class I2MoEClassifier(_ClassifierMixin, _I2MoEEstimator):
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
        if y.ndim == 2:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; y is flattened",
                _DataConversionWarning,
                stacklevel=3,
            )
        y = y.reshape(-1)
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


class I2MoERegressor(_RegressorMixin, _I2MoEEstimator):
    """I2MoE for one number per sample; parameters and fitted attributes as
    :class:`I2MoEClassifier` (without ``classes_``)."""

    _task_kind = "regression"

    def __sklearn_tags__(self) -> Any:
        return _poor_score_tags(super().__sklearn_tags__())

    def _encode_targets(self, y: Any, fitting: bool) -> tuple[str, int, np.ndarray]:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] != 1:
            raise DataError(f"y: shape {y.shape}; expected one number per sample [N]")
        if y.ndim == 2:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; y is flattened",
                _DataConversionWarning,
                stacklevel=3,
            )
        y = y.reshape(-1)
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
