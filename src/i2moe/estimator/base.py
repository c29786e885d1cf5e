"""What the classifier and the regressor share: training through the one training path,
batched prediction, ``explain``, and saving to and loading from the run folder format."""

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
from i2moe.estimator.compat import EstimatorBase, NotFittedError
from i2moe.estimator.inputs import ModalityRows, column_groups, prepare_rows, refuse_unusable
from i2moe.interpret.attribution import attribute, default_method
from i2moe.model import I2MoE
from i2moe.runs.checks import check_settings
from i2moe.runs.files import RunError, config_text, write_atomic
from i2moe.runs.loading import load_run, reference_rows, run_info, write_reference_rows
from i2moe.spec import DataError, ModalitySpec
from i2moe.training.loop import quiet_lightning, train_module
from i2moe.training.module import FusionLightningModule

log = logging.getLogger(__name__)

ESTIMATOR_FILE = "estimator.json"
PREDICT_BATCH = 256
# Training rows kept (and saved) for the attribution probes of :meth:`explain`.
REFERENCE_ROWS = 1000


class I2MoEEstimator(EstimatorBase):
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
    ) -> I2MoEEstimator:
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
        X = refuse_unusable(X)
        data = prepare_rows(X, self.modalities, observed, None)
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
            val_data = prepare_rows(eval_set[0], self.modalities, None, specs)
            val_targets = self._encode_targets(eval_set[1], fitting=False)[2]
            train_rows = np.arange(len(data))
        else:
            val_data, val_targets = None, None
            codes = self._validation_split(targets, task)
            train_rows, val_rows = np.flatnonzero(codes == 0), np.flatnonzero(codes == 1)
        self.statistics_ = self._fit_statistics(data, specs, train_rows)
        self._scale(data)
        if val_data is None:
            val_data = ModalityRows(
                {k: v[val_rows] for k, v in data.arrays.items()}, data.observed[val_rows]
            )
            val_targets = targets[val_rows]
            data = ModalityRows(
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
            self.n_features_in_ = sum(len(c) for c in column_groups(X, self.modalities).values())
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
        data: ModalityRows, specs: Sequence[ModalitySpec], train_rows: np.ndarray
    ) -> dict[str, dict[str, np.ndarray]]:
        """Feature statistics of the training rows, per vector modality (as the readers)."""
        train = np.zeros(len(data), dtype=bool)
        train[train_rows] = True
        vectors = {spec.name: None for spec in specs if spec.kind == "vector"}
        copies = {name: data.arrays[name].copy() for name in vectors}
        observed = data.observed[:, [i for i, s in enumerate(specs) if s.kind == "vector"]]
        return standardize_modalities(copies, observed, train, vectors)

    def _scale(self, data: ModalityRows) -> None:
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

    def _outputs(self, X: Any, observed: Any = None) -> tuple[dict[str, np.ndarray], ModalityRows]:
        """Prediction [N, C] and, for I2MoE, weights [N, E] in eval mode, in batches."""
        self._check_is_fitted()
        specs = [
            ModalitySpec(m["name"], tuple(m["shape"]), m["kind"]) for m in self.info_["modalities"]
        ]
        X = refuse_unusable(X)
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and not isinstance(X, Mapping) and X.shape[1] != expected:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{expected} features as input"
            )
        data = prepare_rows(X, self.modalities, observed, specs)
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
        write_reference_rows(path, self.reference_)
        return path

    @classmethod
    def load(cls, path: str | Path) -> I2MoEEstimator:
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
        method = default_method(module.model) if isinstance(module.model, I2MoE) else None
        estimator.reference_ = reference_rows(path, config, info, method)
        if cls._task_kind != "regression":
            classes = state.get("classes") or info.get("class_names") or range(module.num_outputs)
            estimator.classes_ = np.asarray(list(classes))
        return estimator


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
