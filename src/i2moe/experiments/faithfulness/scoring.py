"""How faithful each attribution method is: its scores on one trained model of one data set,
and their summary over the suite (the layout of the packaged ``faithfulness_scores.json``).

* top: the data set's top interaction (largest share) is the true one (for a mixture: its
  most frequent mechanism);
* per-sample agreement: share of test samples whose top interaction is the one that generated
  them (reported for the mixtures, where samples differ);
* test accuracy of the model: a method is only judged on a model that learned its data set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from i2moe.experiments.faithfulness.datasets import Case

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from i2moe.interpret.attribution import Attribution

LEARNED_ACCURACY = 0.8  # a model below this test accuracy did not learn its data set


def score_methods(
    results: dict[str, Attribution],
    case: Case,
    *,
    seed: int,
    training: str,
    names: list[str],
    truth: str,
    test_codes: np.ndarray,
    accuracy: float,
    train_seconds: float,
) -> list[dict[str, Any]]:
    """The rows of ``results.csv`` of one model on one suite data set: one per method.

    Args:
        results: method -> its attribution of the test split.
        case: the data set.
        seed: its seed.
        training: the model's training (a name of ``TRAININGS``).
        names: ``interaction_names`` of the data set.
        truth: its true interaction (:func:`.datasets.true_interaction`).
        test_codes: [N] the generating mechanism of every test sample (index into ``names``).
        accuracy: the model's test accuracy.
        train_seconds: how long the model trained.
    """
    import numpy as np

    mechanisms = {"uni": 0, "syn": names.index("syn"), "red": names.index("red")}  # uni_mod0
    rows = []
    for method, result in results.items():
        right = result.labels() == test_codes
        row = {
            "dataset": case.name,
            "kind": case.kind,
            "modalities": case.num_modalities,
            "embedding": case.embedding,
            "seed": seed,
            "training": training,
            "method": method,
            "truth": truth,
            "top": result.top,
            "top_correct": result.top == truth,
            "truth_share": result.shares[truth],
            "sample_agreement": float(np.mean(right)),
            "accuracy": accuracy,
            "learned": accuracy >= LEARNED_ACCURACY,
            "train_seconds": train_seconds,
        }
        for mechanism, code in mechanisms.items():  # per-mechanism agreement, mixtures only
            mine = test_codes == code
            row[f"agreement_{mechanism}"] = (
                float(np.mean(right[mine])) if case.kind == "mixed" and mine.any() else None
            )
        rows.append(row)
    return rows


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (training, method): data sets, share of them whose model learned the task
    (test accuracy >= ``LEARNED_ACCURACY``), top-1 rate over all data sets and over the learned
    ones, per-sample agreement on mixtures, mean share of the true interaction, mean test
    accuracy."""
    keys = ["training", "method"]
    results = results.assign(
        learned_correct=results["top_correct"].where(results["learned"].astype(bool))
    )
    grouped = results.groupby(keys, sort=False)
    mixtures = results[results["kind"] == "mixed"].groupby(keys, sort=False)
    table = grouped.agg(
        datasets=("top_correct", "size"),
        learned=("learned", "mean"),
        top_correct=("top_correct", "mean"),
        top_correct_learned=("learned_correct", "mean"),
        truth_share=("truth_share", "mean"),
        accuracy=("accuracy", "mean"),
    )
    table["mixture_agreement"] = mixtures["sample_agreement"].mean()
    return table.reset_index()


def _rounded(value: Any) -> float | None:
    return None if value is None or value != value else round(float(value), 3)  # NaN -> None


def scores(table: pd.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """The summary as training -> method -> measured faithfulness (the layout of the packaged
    ``i2moe/interpret/faithfulness_scores.json`` that :func:`write_attribution` reads)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in table.to_dict(orient="records"):
        out.setdefault(row["training"], {})[row["method"]] = {
            "top_correct": round(float(row["top_correct"]), 3),
            "top_correct_learned": _rounded(row["top_correct_learned"]),
            "mixture_agreement": _rounded(row["mixture_agreement"]),
            "datasets": int(row["datasets"]),
        }
    return out
