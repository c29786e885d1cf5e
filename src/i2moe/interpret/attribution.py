"""Which interaction does a prediction rest on? Attribution methods, side by side
(``docs/faithfulness.md``).

Every method gives each sample a score per interaction, in the experts' order
``[uni_<modality>..., syn, red]``, summing to 1; a data set's share of an interaction is the
mean score.

* ``weights``: the I2MoE reweighting weights, unchanged (the paper's explanation, section 3.3
  and Figure 4). Faithful only if the model was trained so (``evidence_weight`` > 0,
  :func:`i2moe.losses.evidence_loss`); with the paper's training it is not
  (``docs/faithfulness.md``).
* ``rule``: the paper's own per-sample rule (section 3.3), made soft and general. The paper
  compares the prediction from all modalities, y12, with predictions from each modality alone,
  y1, y2: y12 = y1 != y2 is uniqueness of 1, y12 different from all is synergy, all equal is
  redundancy. The single-modality predictions come from light probes (small MLPs,
  :mod:`i2moe.interpret.probes`) on the trained model's own pooled embedding of one modality,
  fitted on a reference split to reproduce the model's predictions. A probe's agreement with
  the model's class c on a sample is
  a_m = clip((p_m(c) - prior(c)) / (1 - prior(c)), 0, 1) (0 at chance, so a probe that cannot
  tell does not "agree" by luck), and with independent agreements::

      uni_m = a_m * prod_{k != m} (1 - a_k),  syn = prod_k (1 - a_k),  red = 1 - the others

  i.e. exactly one modality alone suffices -> uniqueness, none -> synergy, several ->
  redundancy (for two modalities: both -> redundancy, the paper's rule).
* ``rule_hard``: the same rule on hard class predictions, exactly as the paper states it.
* ``sensitivity``: the modality sensitivity of :mod:`i2moe.interpret.sensitivity` read as an
  interaction: modality m's embedding is replaced by the model's own perturbation and
  n_m = chance-normalised share of draws whose predicted class flips (a flip rate of
  1 - prior(c) is what an uninformative replacement gives). Then::

      uni_m = n_m * prod_{k != m} (1 - n_k),  red = prod_k (1 - n_k),  syn = 1 - the others

  i.e. only m is needed -> uniqueness, none is needed -> redundancy, several -> synergy.

Every share comes with a 95 % bootstrap interval over the samples (:func:`bootstrap_intervals`)
and every sample's scores with a confidence: the margin between its top and second score, and
the normalised entropy of its scores (:func:`score_confidence`).

Which method ``i2moe fit`` / ``i2moe explain`` report by default is measured, not chosen:
:func:`default_method` takes the best one in the packaged scores of ``i2moe faithfulness`` for
the model's training (``rule`` for the paper's training, the weights for the evidence training).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from i2moe.interpret.outputs import PooledOutputs, collect, collect_pooled
from i2moe.interpret.probes import fit_probes

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from i2moe.model import I2MoE

METHODS: tuple[str, ...] = ("weights", "rule", "rule_hard", "sensitivity")
PAPER_METHOD = "weights"
DEFAULT_METHOD = "rule"
METHOD_DESCRIPTIONS = {
    "weights": "I2MoE reweighting weights (the paper's explanation, section 3.3 / Figure 4)",
    "rule": "the paper's per-sample rule (section 3.3), soft, with unimodal probes",
    "rule_hard": "the paper's per-sample rule (section 3.3) on hard predictions",
    "sensitivity": "modality sensitivity: which modalities' replacement flips the prediction",
}
SENSITIVITY_DRAWS = 4
BOOTSTRAP_DRAWS = 1000  # resamples of the samples behind each share's interval
INTERVAL_LEVEL = 0.95
BOOTSTRAP_CELLS = 2_000_000  # resampled sample positions held in memory at once
SCORES_FILE = Path(__file__).with_name("faithfulness_scores.json")


def measured_faithfulness(model: I2MoE | None = None) -> dict[str, Any]:
    """The packaged scores of ``i2moe faithfulness`` (``docs/faithfulness.md``): method ->
    measured faithfulness, for the training of ``model`` (``evidence`` when its
    ``evidence_weight`` > 0, else ``paper``); empty when the file is absent."""
    if not SCORES_FILE.exists():
        return {}
    packaged = json.loads(SCORES_FILE.read_text())
    training = "evidence" if getattr(model, "evidence_weight", 0.0) > 0 else "paper"
    return {
        method: {**values, "benchmark": packaged["benchmark"], "training": training}
        for method, values in packaged["trainings"].get(training, {}).items()
    }


def default_method(model: I2MoE) -> str:
    """The best measured method for ``model``: the highest ``top_correct`` (then
    ``mixture_agreement``) in the packaged scores of its training (:func:`measured_faithfulness`);
    ``weights`` for tasks the other methods do not apply to (multilabel, regression);
    :data:`DEFAULT_METHOD` when no scores are packaged."""
    if model.task != "classification":
        return "weights"
    measured = measured_faithfulness(model)
    if not measured:
        return DEFAULT_METHOD
    return max(
        METHODS,
        key=lambda m: (
            measured.get(m, {}).get("top_correct", -1.0),
            measured.get(m, {}).get("mixture_agreement", -1.0),
            m == DEFAULT_METHOD,
        ),
    )


def interaction_names(modality_names: Sequence[str]) -> list[str]:
    """``[uni_<modality>..., syn, red]``, the experts' order."""
    return [f"uni_{name}" for name in modality_names] + ["syn", "red"]


def paper_rule(prediction: np.ndarray, single_predictions: np.ndarray) -> np.ndarray:
    """The paper's per-sample rule (section 3.3) on hard predictions, for n modalities.

    Args:
        prediction: [B] the class predicted from all modalities.
        single_predictions: [M, B] the class predicted from each modality alone.

    Returns:
        [B] interaction codes into ``[uni_0 .. uni_{M-1}, syn, red]``: the one modality whose
        prediction equals the full one (uniqueness), none (synergy), or several (redundancy).
    """
    agree = np.asarray(single_predictions) == np.asarray(prediction)[None]  # [M, B]
    count = agree.sum(0)
    num_modalities = agree.shape[0]
    codes = np.where(count == 0, num_modalities, num_modalities + 1)
    return np.where(count == 1, agree.argmax(0), codes)


def soft_rule(agreement: np.ndarray) -> np.ndarray:
    """Soft form of :func:`paper_rule`: agreements [M, B] in [0, 1] -> scores [B, M+2]."""
    agreement = np.clip(np.asarray(agreement, dtype=np.float64), 0.0, 1.0)
    disagreement = 1.0 - agreement
    num_modalities = agreement.shape[0]
    unique = np.stack(
        [
            agreement[m] * np.prod(np.delete(disagreement, m, axis=0), axis=0)
            for m in range(num_modalities)
        ]
    )  # [M, B]
    synergy = np.prod(disagreement, axis=0)
    redundancy = np.clip(1.0 - unique.sum(0) - synergy, 0.0, 1.0)
    scores = np.concatenate([unique, synergy[None], redundancy[None]]).T
    return scores / scores.sum(1, keepdims=True)


def sensitivity_rule(necessity: np.ndarray) -> np.ndarray:
    """Necessities [M, B] in [0, 1] (replacing modality m changes the prediction) -> scores
    [B, M+2]: only m needed -> uni_m, none -> red, several -> syn."""
    necessity = np.clip(np.asarray(necessity, dtype=np.float64), 0.0, 1.0)
    kept = 1.0 - necessity
    num_modalities = necessity.shape[0]
    unique = np.stack(
        [necessity[m] * np.prod(np.delete(kept, m, axis=0), axis=0) for m in range(num_modalities)]
    )  # [M, B]
    redundancy = np.prod(kept, axis=0)
    synergy = np.clip(1.0 - unique.sum(0) - redundancy, 0.0, 1.0)
    scores = np.concatenate([unique, synergy[None], redundancy[None]]).T
    return scores / scores.sum(1, keepdims=True)


def bootstrap_intervals(
    scores: np.ndarray,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = INTERVAL_LEVEL,
    seed: int = 0,
) -> np.ndarray:
    """Percentile bootstrap intervals of the dataset-level shares (the mean scores).

    The samples are resampled with replacement ``draws`` times (seeded); each resample's
    shares are its mean scores, normalised to sum to 1. Each interval is widened, where needed,
    to contain the share itself. With fewer than two samples nothing is known: [0, 1].

    Args:
        scores: [N, E] per-sample scores, rows summing to 1.
        draws: bootstrap resamples.
        level: the intervals' coverage.
        seed: seed of the resampling.

    Returns:
        [E, 2] low and high per interaction.
    """
    scores = np.asarray(scores, dtype=np.float64)
    num_samples, num_interactions = scores.shape
    if num_samples < 2:
        return np.tile([0.0, 1.0], (num_interactions, 1))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(draws, BOOTSTRAP_CELLS // num_samples))
    resampled = []
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        picks = rng.integers(0, num_samples, (size, num_samples))
        picks += np.arange(size)[:, None] * num_samples  # one block of counts per resample
        counts = np.bincount(picks.ravel(), minlength=size * num_samples)
        resampled.append(counts.reshape(size, num_samples) @ scores / num_samples)  # [size, E]
    means = np.concatenate(resampled)
    means = means / means.sum(1, keepdims=True)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    share = scores.mean(0) / scores.mean(0).sum()
    return np.stack([np.minimum(low, share), np.maximum(high, share)], axis=1)


def score_confidence(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How clearly each sample's scores name one interaction.

    Args:
        scores: [N, E] per-sample scores, rows summing to 1.

    Returns:
        ``margin`` [N]: the top score minus the second (0: a tie, 1: one interaction only);
        ``entropy`` [N]: the scores' entropy over log(E) (0: one interaction, 1: all alike).
    """
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    ordered = np.sort(scores, axis=1)
    margin = ordered[:, -1] - (ordered[:, -2] if scores.shape[1] > 1 else 0.0)
    terms = np.where(scores > 0, scores * np.log(np.where(scores > 0, scores, 1.0)), 0.0)
    entropy = -terms.sum(1) / np.log(scores.shape[1]) if scores.shape[1] > 1 else terms[:, 0]
    return margin, np.clip(entropy, 0.0, 1.0)


@dataclass
class Attribution:
    """Per-sample interaction scores of one method over a split."""

    method: str
    names: list[str]  # [uni_<modality>..., syn, red]
    scores: np.ndarray  # [N, E], rows sum to 1

    @property
    def shares(self) -> dict[str, float]:
        """Dataset-level share of each interaction (mean score), summing to 1."""
        mean = self.scores.mean(0) if len(self.scores) else np.full(len(self.names), np.nan)
        mean = mean / mean.sum()
        return {name: float(value) for name, value in zip(self.names, mean, strict=True)}

    @property
    def top(self) -> str:
        """The interaction with the largest share."""
        shares = self.shares
        return max(shares, key=shares.__getitem__)

    @property
    def runner_up(self) -> str:
        """The interaction with the second largest share."""
        shares = self.shares
        return sorted(shares, key=shares.__getitem__, reverse=True)[min(1, len(shares) - 1)]

    def labels(self) -> np.ndarray:
        """[N] the top interaction code of each sample."""
        return self.scores.argmax(1)

    def intervals(
        self, *, draws: int = BOOTSTRAP_DRAWS, level: float = INTERVAL_LEVEL, seed: int = 0
    ) -> dict[str, list[float]]:
        """Interaction -> [low, high], the share's bootstrap interval
        (:func:`bootstrap_intervals`)."""
        bounds = bootstrap_intervals(self.scores, draws=draws, level=level, seed=seed)
        return {
            name: [float(lo), float(hi)] for name, (lo, hi) in zip(self.names, bounds, strict=True)
        }

    def distinguishable(self, intervals: dict[str, list[float]] | None = None) -> bool:
        """Whether the top interaction's interval lies above the second's (``intervals``:
        :meth:`intervals`, computed when not given)."""
        intervals = self.intervals() if intervals is None else intervals
        if len(self.names) < 2:
            return True
        return intervals[self.top][0] > intervals[self.runner_up][1]


def attribute(
    model: I2MoE,
    dataset: Dataset,
    methods: Sequence[str] = METHODS,
    *,
    reference: Dataset | None = None,
    seed: int = 0,
    pooled: PooledOutputs | None = None,
) -> dict[str, Attribution]:
    """Attribute every sample of ``dataset`` to interactions, by each of ``methods``.

    Args:
        model: a trained I2MoE (classification for the rule methods).
        dataset: the split to explain.
        methods: names from :data:`METHODS`.
        reference: the split the rule's probes are fitted on (the training split); default
            ``dataset`` itself.
        seed: seed of the probes.
        pooled: ``collect_pooled(model, dataset)`` when already computed.

    Returns:
        method -> :class:`Attribution`.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown attribution methods {unknown}; valid: {', '.join(METHODS)}")
    if model.task != "classification" and any(m != "weights" for m in methods):
        raise ValueError(
            f"the methods {[m for m in methods if m != 'weights']} need a classification model, "
            f"not {model.task!r}; use method 'weights'"
        )
    names = interaction_names(model.modality_names)
    pooled = pooled or collect_pooled(model, dataset)
    results = {}
    if "weights" in methods:
        weights = pooled.weights
        if weights.shape[1] != len(names):  # e.g. the syn-red-only ablation
            full = np.zeros((len(weights), len(names)))
            for e, role in enumerate(model.expert_names):
                full[:, names.index(role)] = weights[:, e]
            weights = full
        results["weights"] = Attribution("weights", names, weights)
    rule_methods = [m for m in methods if m.startswith("rule")]
    if rule_methods:
        fitted = pooled if reference is None else collect_pooled(model, reference)
        num_classes = fitted.probabilities.shape[1]
        reference_classes = fitted.probabilities.argmax(1)
        probes = fit_probes(fitted.pooled, reference_classes, num_classes, seed=seed)
        prior = np.bincount(reference_classes, minlength=num_classes) / len(reference_classes)
        with torch.no_grad():
            single = np.stack(
                [
                    probe(embedding).softmax(-1).numpy()
                    for probe, embedding in zip(probes, pooled.pooled, strict=True)
                ]
            )  # [M, N, C]
        predicted = pooled.probabilities.argmax(1)
        if "rule" in methods:
            support = single[:, np.arange(len(predicted)), predicted]  # [M, N]
            chance = prior[predicted][None]
            agreement = (support - chance) / np.clip(1.0 - chance, 1e-6, None)
            results["rule"] = Attribution("rule", names, soft_rule(agreement))
        if "rule_hard" in methods:
            codes = paper_rule(predicted, single.argmax(-1))
            results["rule_hard"] = Attribution("rule_hard", names, np.eye(len(names))[codes])
    if "sensitivity" in methods:
        results["sensitivity"] = Attribution(
            "sensitivity", names, _sensitivity_scores(model, dataset, pooled, seed)
        )
    return {m: results[m] for m in methods}


def _sensitivity_scores(
    model: I2MoE, dataset: Dataset, pooled: PooledOutputs, seed: int
) -> np.ndarray:
    measured = collect(model, dataset, draws=SENSITIVITY_DRAWS, seed=seed)
    predicted = pooled.probabilities.argmax(1)
    prior = np.bincount(predicted, minlength=pooled.probabilities.shape[1]) / len(predicted)
    chance = np.clip(1.0 - prior[predicted], 1e-6, None)  # flip rate of a useless replacement
    flip = np.nan_to_num(measured.flip.numpy().T, nan=0.0)  # [M, N]; missing: not needed
    return sensitivity_rule(flip / chance[None])


def method_summary(
    result: Attribution, *, seed: int = 0, draws: int = BOOTSTRAP_DRAWS
) -> dict[str, Any]:
    """One method's entry of ``attribution_methods.json`` (without its description and
    faithfulness): ``shares``, ``intervals``, ``top``, ``second``, ``distinguishable`` and the
    samples' ``median_confidence`` and ``median_entropy``."""
    intervals = result.intervals(draws=draws, seed=seed)
    margin, entropy = score_confidence(result.scores)
    return {
        "shares": result.shares,
        "intervals": intervals,
        "top": result.top,
        "second": result.runner_up,
        "distinguishable": result.distinguishable(intervals),
        "median_confidence": float(np.median(margin)) if len(margin) else None,
        "median_entropy": float(np.median(entropy)) if len(entropy) else None,
    }


def write_attribution(
    model: I2MoE,
    dataset: Dataset,
    output_dir: str | Path,
    method: str | None = None,
    *,
    reference: Dataset | None = None,
    sample_ids: Sequence[Any] | None = None,
    faithfulness: dict[str, Any] | None = None,
    seed: int = 0,
    draws: int = BOOTSTRAP_DRAWS,
) -> dict[str, Attribution]:
    """Write ``attribution.json`` and ``attribution.csv`` for a split into ``output_dir``.

    ``attribution.json``: the chosen method's dataset-level share per interaction, keys
    ``uni_<modality>``, ``syn``, ``red``, summing to 1, then ``intervals`` (interaction ->
    [low, high], the 95 % bootstrap interval of its share over the samples) and
    ``distinguishable`` (whether the top interaction's interval lies above the second's).
    ``attribution_methods.json``: ``method`` (the chosen one), ``description``,
    ``paper_method``, ``bootstrap`` (``draws``, ``level``, ``seed`` of the intervals) and
    ``methods`` (per method: :func:`method_summary`, its description and, when given, its
    measured faithfulness). ``attribution.csv``: one row per sample, ``sample``, the default
    method's score per interaction, ``top`` (its top interaction), ``confidence`` (the top
    score minus the second), ``entropy`` (normalised entropy of the scores), then the top
    interaction of every other method (``top_<method>``).

    Args:
        model: a trained I2MoE.
        dataset: the split to explain.
        output_dir: folder to write (created).
        method: the default method, from :data:`METHODS` (default: :func:`default_method`,
            the best measured one for the model's training).
        reference: the split the rule's probes are fitted on (default ``dataset``).
        sample_ids: one id per sample (default ``dataset.sample_ids`` or the position).
        faithfulness: method -> measured faithfulness, shown beside it; default the packaged
            scores of ``i2moe faithfulness`` for the model's training
            (:func:`measured_faithfulness`).
        seed: seed of the probes and of the bootstrap.
        draws: bootstrap resamples behind each interval.

    Returns:
        method -> :class:`Attribution` for every method that applies to the model.
    """
    methods = list(METHODS) if model.task == "classification" else ["weights"]
    method = default_method(model) if method is None else method
    if method not in methods:
        raise ValueError(f"attribution method {method!r} does not apply; valid: {methods}")
    results = attribute(model, dataset, methods, reference=reference, seed=seed)
    chosen = results[method]
    if faithfulness is None:
        faithfulness = measured_faithfulness(model)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    summaries = {name: method_summary(r, seed=seed, draws=draws) for name, r in results.items()}
    # The top level of attribution.json stays interaction -> share; the two further keys are
    # not interactions, so readers that sum the shares skip them.
    default = summaries[method]
    shares = {
        **default["shares"],
        "intervals": default["intervals"],
        "distinguishable": default["distinguishable"],
    }
    (output / "attribution.json").write_text(json.dumps(shares, indent=2))
    details = {
        "method": method,
        "description": METHOD_DESCRIPTIONS[method],
        "paper_method": PAPER_METHOD,
        "bootstrap": {"draws": draws, "level": INTERVAL_LEVEL, "seed": seed},
        "methods": {
            name: {
                "description": METHOD_DESCRIPTIONS[name],
                **summaries[name],
                "faithfulness": faithfulness.get(name),
            }
            for name in results
        },
    }
    (output / "attribution_methods.json").write_text(json.dumps(details, indent=2))
    if sample_ids is None:
        sample_ids = getattr(dataset, "sample_ids", None) or list(range(len(chosen.scores)))
    frame = pd.DataFrame(chosen.scores, columns=chosen.names)
    frame.insert(0, "sample", list(sample_ids))
    frame["top"] = [chosen.names[c] for c in chosen.labels()]
    frame["confidence"], frame["entropy"] = score_confidence(chosen.scores)
    for name, result in results.items():
        if name != method:
            frame[f"top_{name}"] = [result.names[c] for c in result.labels()]
    frame.to_csv(output / "attribution.csv", index=False)
    return results
