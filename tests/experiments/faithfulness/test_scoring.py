"""Scoring the attribution methods (i2moe.experiments.faithfulness.scoring): rows per method
and their summary."""

import numpy as np
import pytest

from i2moe.experiments.faithfulness.datasets import Case
from i2moe.experiments.faithfulness.scoring import score_methods, scores, summarise
from i2moe.interpret.attribution import Attribution


def test_summary_counts_learned_data_sets_and_mixture_agreement():
    import pandas as pd

    rows = [
        # dataset, kind, method, top_correct, learned, sample_agreement
        ("a", "redundancy", "rule", True, True, 1.0),
        ("b", "synergy_parity", "rule", False, False, 1.0),
        ("c", "mixed", "rule", True, True, 0.75),
        ("a", "redundancy", "weights", False, True, 0.0),
        ("b", "synergy_parity", "weights", False, False, 1.0),
        ("c", "mixed", "weights", True, True, 0.25),
    ]
    frame = pd.DataFrame(
        rows, columns=["dataset", "kind", "method", "top_correct", "learned", "sample_agreement"]
    ).assign(training="paper", truth_share=0.5, accuracy=0.9)
    table = summarise(frame).set_index("method")
    assert table.loc["rule", "datasets"] == 3
    assert table.loc["rule", "top_correct"] == pytest.approx(2 / 3)
    assert table.loc["rule", "top_correct_learned"] == pytest.approx(1.0)
    assert table.loc["rule", "learned"] == pytest.approx(2 / 3)
    assert table.loc["weights", "mixture_agreement"] == pytest.approx(0.25)
    packaged = scores(summarise(frame))
    assert packaged["paper"]["rule"] == {
        "top_correct": 0.667,
        "top_correct_learned": 1.0,
        "mixture_agreement": 0.75,
        "datasets": 3,
    }


def test_rows_score_the_top_interaction_and_each_mechanism_of_a_mixture():
    names = ["uni_mod0", "uni_mod1", "syn", "red"]
    codes = np.array([0, 2, 2, 3])
    # scores [N, E]: right on the uniqueness and the synergy samples, wrong on the redundant one
    attribution = Attribution("weights", names, np.eye(4)[[0, 2, 2, 1]])
    rows = score_methods(
        {"weights": attribution},
        Case("mixed", 2, "vector"),
        seed=3,
        training="evidence",
        names=names,
        truth="syn",
        test_codes=codes,
        accuracy=0.7,
        train_seconds=1.5,
    )
    (row,) = rows
    assert (row["dataset"], row["seed"], row["training"], row["method"]) == (
        "mixed-2m-vector",
        3,
        "evidence",
        "weights",
    )
    assert row["top"] == "syn" and row["top_correct"]
    assert row["sample_agreement"] == pytest.approx(0.75)
    assert (row["agreement_uni"], row["agreement_syn"], row["agreement_red"]) == (1.0, 1.0, 0.0)
    assert not row["learned"]
