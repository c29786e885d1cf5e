"""The benchmark over the suite (train, score, summarise, write), and the accuracy cost of the
evidence training on a real data set."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2moe.experiments.faithfulness.datasets import EMBEDDINGS, KINDS, Case, suite, suite_size
from i2moe.experiments.faithfulness.training import TRAININGS

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def evaluate_case(
    case: Case,
    *,
    seed: int,
    num_samples: int,
    epochs: int,
    fusion: str,
    trainings: dict[str, float] = TRAININGS,
) -> list[dict[str, Any]]:
    """Train each kind of model on one suite data set and score every attribution method."""
    import time

    from i2moe.experiments.faithfulness.datasets import make_data, suite_bundle, true_interaction
    from i2moe.experiments.faithfulness.scoring import score_methods
    from i2moe.experiments.faithfulness.training import train_model
    from i2moe.interpret.attribution import METHODS, attribute

    arrays = make_data(case, num_samples=num_samples, seed=seed)
    bundle = suite_bundle(arrays, case.name)
    truth = true_interaction(arrays)
    names = [str(v) for v in arrays["interaction_names"]]
    test_codes = arrays["interaction"][arrays["split"] == 2]
    rows = []
    for training, weight in trainings.items():
        start = time.perf_counter()
        trained = train_model(
            bundle, evidence_weight=weight, fusion=fusion, epochs=epochs, seed=seed
        )
        seconds = round(time.perf_counter() - start, 1)
        results = attribute(trained.model, bundle.test, METHODS, reference=bundle.train, seed=seed)
        rows += score_methods(
            results,
            case,
            seed=seed,
            training=training,
            names=names,
            truth=truth,
            test_codes=test_codes,
            accuracy=trained.test_accuracy,
            train_seconds=seconds,
        )
    return rows


def run_benchmark(
    output: str | Path | None = None,
    *,
    seeds: tuple[int, ...] = (0,),
    modalities: tuple[int, ...] = (2, 3, 4),
    embeddings: tuple[str, ...] = EMBEDDINGS,
    kinds: tuple[str, ...] = KINDS,
    num_samples: int | None = None,
    epochs: int | None = None,
    fusion: str = "transformer",
    check_pid: bool = True,
    trainings: dict[str, float] = TRAININGS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the suite; return (per data set and method results, summary table). ``trainings``:
    name -> ``evidence_weight`` of each training compared. ``num_samples`` / ``epochs``:
    the same for every data set, or by default :data:`SUITE_SIZES` by number of modalities.

    With ``output`` the folder gets ``results.csv`` (rewritten after every data set, so an
    interrupted run keeps what it measured), ``ground_truth.csv``, ``summary.md`` and
    ``scores.json`` (:func:`scores`).
    """
    import json

    import pandas as pd

    from i2moe.experiments.faithfulness.datasets import check_ground_truth, make_data
    from i2moe.experiments.faithfulness.scoring import scores, summarise
    from i2moe.experiments.pid import dit_available
    from i2moe.runs.tables import frame_markdown

    cases = suite(modalities, embeddings, kinds)
    checks = []
    if check_pid and not dit_available():
        log.warning("dit is not installed: ground truth not verified by PID (pip install dit)")
        check_pid = False
    rows: list[dict[str, Any]] = []
    folder = None if output is None else Path(output)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        default_samples, default_epochs = suite_size(case.num_modalities)
        case_samples = num_samples or default_samples
        case_epochs = epochs or default_epochs
        if check_pid and case.embedding == embeddings[0]:  # latents do not depend on it
            for seed in seeds:
                arrays = make_data(case, num_samples=case_samples, seed=seed)
                check = check_ground_truth(arrays)
                checks.append({"dataset": case.name, "seed": seed, **check})
                if not check["pid_matches"]:
                    log.warning(
                        "%s seed %d: PID disagrees with the generator: %s", case.name, seed, check
                    )
        for seed in seeds:
            case_rows = evaluate_case(
                case,
                seed=seed,
                num_samples=case_samples,
                epochs=case_epochs,
                fusion=fusion,
                trainings=trainings,
            )
            rows += case_rows
            log.info(
                "%s seed %d: accuracy %s; %s",
                case.name,
                seed,
                "/".join(f"{r['accuracy']:.3f}" for r in case_rows if r["method"] == "weights"),
                ", ".join(f"{r['training']}/{r['method']}={r['top']}" for r in case_rows),
            )
            if folder is not None:
                pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    results = pd.DataFrame(rows)
    table = summarise(results)
    if folder is not None:
        pd.DataFrame(checks).to_csv(folder / "ground_truth.csv", index=False)
        (folder / "summary.md").write_text(frame_markdown(table))
        (folder / "scores.json").write_text(json.dumps(scores(table), indent=2))
    return results, table


def accuracy_cost(
    data: str = "mfeat",
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    epochs: int = 5,
    dim: int = 32,
    trainings: dict[str, float] = TRAININGS,
) -> pd.DataFrame:
    """Test accuracy of each training on a real single-label data set (the training of
    :func:`~i2moe.experiments.faithfulness.training.train_model`, D = ``dim``): one row per
    (seed, training), data split by the seed."""
    import time

    import pandas as pd

    from i2moe.data.load import load_data
    from i2moe.experiments.faithfulness.training import train_model

    rows = []
    for seed in seeds:
        bundle = load_data(data, seed=seed)
        if bundle.task != "classification":
            raise ValueError(f"{data!r} is {bundle.task}; the accuracy check needs single-label")
        for training, weight in trainings.items():
            start = time.perf_counter()
            trained = train_model(bundle, evidence_weight=weight, dim=dim, epochs=epochs, seed=seed)
            rows.append(
                {
                    "data": data,
                    "seed": seed,
                    "training": training,
                    "test_accuracy": trained.test_accuracy,
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            log.info("%s seed %d %s: %.4f", data, seed, training, rows[-1]["test_accuracy"])
    return pd.DataFrame(rows)
