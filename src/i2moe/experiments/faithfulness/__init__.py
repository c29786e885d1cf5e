"""Faithfulness benchmark: do the explanations name the interaction that generated the data?
(``docs/faithfulness.md``)

``i2moe faithfulness`` generates a suite of data sets with known interactions, checks each
one's ground truth by an exact partial information decomposition (:mod:`i2moe.experiments.pid`),
trains I2MoE with the paper's training and with evidence-supervised reweighting
(``evidence_weight`` > 0, :func:`i2moe.losses.evidence_loss`) through the library's training
path, and scores every attribution method of :mod:`i2moe.interpret.attribution`.

- :mod:`~i2moe.experiments.faithfulness.datasets`: the data sets and their ground truth;
- :mod:`~i2moe.experiments.faithfulness.training`: the two trainings, one model each;
- :mod:`~i2moe.experiments.faithfulness.scoring`: the methods' scores and their summary;
- :mod:`~i2moe.experiments.faithfulness.run`: the benchmark, and the accuracy cost on real data.

The command line imports this package when it starts: heavy imports stay inside functions.
"""

from i2moe.experiments.faithfulness.datasets import (
    EMBEDDINGS,
    KINDS,
    SUITE_SIZES,
    Case,
    check_ground_truth,
    make_data,
    suite,
    suite_bundle,
    suite_size,
    true_interaction,
)
from i2moe.experiments.faithfulness.run import accuracy_cost, evaluate_case, run_benchmark
from i2moe.experiments.faithfulness.scoring import (
    LEARNED_ACCURACY,
    score_methods,
    scores,
    summarise,
)
from i2moe.experiments.faithfulness.training import TRAININGS, TrainedModel, train_model

__all__ = [
    "EMBEDDINGS",
    "KINDS",
    "LEARNED_ACCURACY",
    "SUITE_SIZES",
    "TRAININGS",
    "Case",
    "TrainedModel",
    "accuracy_cost",
    "check_ground_truth",
    "evaluate_case",
    "make_data",
    "run_benchmark",
    "score_methods",
    "scores",
    "suite",
    "suite_bundle",
    "suite_size",
    "summarise",
    "train_model",
    "true_interaction",
]
