"""Faithfulness benchmark: do the explanations name the interaction that generated the data?
(``docs/faithfulness.md``)

``i2moe faithfulness`` generates a suite of data sets with known interactions, checks each
one's ground truth by an exact partial information decomposition (:mod:`i2moe.experiments.pid`), trains
I2MoE with the paper's training and with evidence-supervised reweighting
(``evidence_weight`` > 0, :func:`i2moe.losses.evidence_loss`), and scores every attribution
method of :mod:`i2moe.interpret.attribution`:

* top: the data set's top interaction (largest share) is the true one (for a mixture: its
  most frequent mechanism);
* per-sample agreement: share of test samples whose top interaction is the one that generated
  them (reported for the mixtures, where samples differ);
* test accuracy of the model.

Training is a lean plain-PyTorch loop (Adam, minibatches, best validation accuracy kept) over
the same model (:func:`i2moe.builders.build_model`) and losses (:func:`i2moe.losses.total_loss`)
as ``i2moe fit``, without Lightning's overhead.

This module is imported when the command line starts: heavy imports stay inside functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = (
    "uniqueness_first",
    "uniqueness_last",
    "redundancy",
    "synergy_parity",
    "synergy_circular",
    "mixed",
)
EMBEDDINGS: tuple[str, ...] = ("vector", "tokens")
TRAININGS: dict[str, float] = {"paper": 0.0, "evidence": 1.0}  # name -> evidence_weight
MIXTURE = {"uniqueness": 0.25, "synergy": 0.5, "redundancy": 0.25}
NUM_TOKENS = 4
CUE_SCALE = 2.0
CIRCULAR_BINS = 4
LEARNED_ACCURACY = 0.8  # a model below this test accuracy did not learn its data set


@dataclass(frozen=True)
class Case:
    """One data set of the suite."""

    kind: str
    num_modalities: int
    embedding: str

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.num_modalities}m-{self.embedding}"


def suite(
    modalities: tuple[int, ...] = (2, 3, 4),
    embeddings: tuple[str, ...] = EMBEDDINGS,
    kinds: tuple[str, ...] = KINDS,
) -> list[Case]:
    """Every combination of interaction kind, number of modalities and embedding kind."""
    return [Case(k, n, e) for n in modalities for e in embeddings for k in kinds]


def _circular(
    num_modalities: int, num_samples: int, dim: int, num_tokens: int | None, seed: int
) -> dict[str, np.ndarray]:
    """Non-linear synergy: angles theta_m uniform on the circle, y = 1 when theta_0 lies within a
    quarter turn of the sum of the others (mod 2 pi). Any proper subset of the angles is
    independent of y; the decision boundary is curved, not a parity of bits."""
    import numpy as np

    from i2moe.data.splits import stratified_split
    from i2moe.data.synth import interaction_names, modality_name

    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, size=(num_samples, num_modalities))
    difference = np.angle(np.exp(1j * (angles[:, 0] - angles[:, 1:].sum(1))))
    labels = (np.abs(difference) < np.pi / 2).astype(np.int64)
    arrays: dict[str, np.ndarray] = {}
    for m in range(num_modalities):
        basis, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
        circle = np.stack([np.cos(angles[:, m]), np.sin(angles[:, m])], 1) @ basis.T * 2.0
        shape = (num_samples, dim) if not num_tokens else (num_samples, num_tokens, dim)
        values = (circle if not num_tokens else circle[:, None, :]) + 0.1 * rng.standard_normal(
            shape
        )
        arrays[modality_name(m)] = values.astype(np.float32)
    names = interaction_names(num_modalities)
    arrays["y"] = labels
    arrays["split"] = stratified_split(labels, seed=seed)
    arrays["interaction"] = np.full(num_samples, names.index("syn"), dtype=np.int64)
    arrays["interaction_names"] = np.array(names)
    bins = np.floor(angles / (2 * np.pi / CIRCULAR_BINS)).astype(np.int64)
    arrays["latent_bits"] = np.clip(bins, 0, CIRCULAR_BINS - 1)
    return arrays


def make_data(case: Case, *, num_samples: int = 2000, dim: int = 16, seed: int = 0) -> dict:
    """Arrays of one suite data set (the layout of :func:`i2moe.data.synth.generate`).

    Mixtures (a quarter uniqueness of modality 0, half synergy, a quarter redundancy) carry the
    mechanism as a cue, a one-hot over the mechanisms appended to every modality: without it a
    sample's mechanism cannot be told from its inputs even knowing the label (for two
    modalities at most 2/3 of the samples can be attributed right, whatever the method).
    """
    import numpy as np

    from i2moe.data.synth import generate

    tokens = NUM_TOKENS if case.embedding == "tokens" else None
    n = case.num_modalities
    if case.kind == "synergy_circular":
        return _circular(n, num_samples, dim, tokens, seed)
    interaction, unique = {
        "uniqueness_first": ("uniqueness", 0),
        "uniqueness_last": ("uniqueness", n - 1),
        "redundancy": ("redundancy", 0),
        "synergy_parity": ("synergy", 0),
        "mixed": ("mixed", 0),
    }[case.kind]
    arrays = generate(
        interaction,
        num_modalities=n,
        num_samples=num_samples,
        dim=dim,
        num_tokens=tokens,
        seed=seed,
        unique_modality=unique,
        proportions=MIXTURE if interaction == "mixed" else None,
    )
    if interaction == "mixed":
        rng = np.random.default_rng(seed + 1)
        cue = CUE_SCALE * np.eye(n + 2)[arrays["interaction"]]  # [N, n+2]
        for m in range(n):
            values = arrays[f"mod{m}"]
            noisy = cue + 0.3 * rng.standard_normal(cue.shape)
            if values.ndim == 3:
                noisy = np.repeat(noisy[:, None, :], values.shape[1], axis=1)
            arrays[f"mod{m}"] = np.concatenate([values, noisy.astype(np.float32)], axis=-1)
    return arrays


def true_interaction(arrays: dict) -> str:
    """The data set's interaction as generated: its most frequent mechanism."""
    import numpy as np

    names = [str(v) for v in arrays["interaction_names"]]
    return names[int(np.bincount(arrays["interaction"], minlength=len(names)).argmax())]


def check_ground_truth(arrays: dict) -> dict[str, Any]:
    """Verify the generated interaction by exact PID (BROJA) of ``latent_bits`` -> ``y``.

    A pure data set is decomposed once (n = 2) or by grouping (n > 2, :mod:`i2moe.experiments.pid`); a
    mixture is decomposed per mechanism, on that mechanism's samples. Returns the PID verdict
    (``uni_mod<m>``, ``syn``, ``red``, ``mixed``; for a mixture, the verdict of its most
    frequent mechanism), whether every decomposition matches the generator, and I(Y; latents).
    """
    import numpy as np

    from i2moe.experiments.pid import check_interaction

    names = [str(v) for v in arrays["interaction_names"]]
    codes = arrays["interaction"]
    verdicts, information, matches = {}, {}, True
    for code in np.unique(codes):
        rows = codes == code
        check = check_interaction(arrays["latent_bits"][rows], arrays["y"][rows])
        verdict = check.interaction
        if verdict.startswith("uni_"):
            verdict = f"uni_mod{verdict[4:]}"
        verdicts[names[code]] = verdict
        information[names[code]] = check.information
        matches &= verdict == names[code]
    truth = true_interaction(arrays)
    return {"pid": verdicts[truth], "pid_matches": bool(matches), "bits": information[truth]}


def _datasets(arrays: dict):
    from i2moe.data.base import ArrayDataset, ModalitySpec

    names = sorted(k for k in arrays if k.startswith("mod"))
    splits = {}
    for code, split in enumerate(("train", "val", "test")):
        rows = arrays["split"] == code
        splits[split] = ArrayDataset(
            {k: arrays[k][rows] for k in names}, arrays["y"][rows], "classification"
        )
    specs = [ModalitySpec.from_shape(k, arrays[k].shape[1:]) for k in names]
    return specs, splits


def _accuracy(model, dataset) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        inputs = dataset.arrays
        prediction = model(inputs).prediction.argmax(-1)
    return float((prediction == dataset.targets).float().mean())


def train_model(
    specs,
    splits,
    *,
    evidence_weight: float,
    fusion: str = "transformer",
    dim: int = 16,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    dropout: float = 0.0,
    interaction_warmup: float = 0.5,
):
    """Train I2MoE with a lean loop; return the model at its best validation accuracy.

    ``interaction_warmup``: share of the first epochs without the interaction losses
    (``lambda_int`` 0; the evidence loss is not warmed up), which join after. Present from the
    start they (even at ``lambda_int`` 0.1) keep 3-modality parity at chance in either training.
    ``dropout`` (transformer backbone and vector MLP encoders) is 0: a plateau at
    chance is left sooner without it (4-bit parity, vanilla backbone). 4-modality parity is
    still not learned in 30 epochs (``docs/faithfulness.md``).
    """
    import copy

    import torch

    from i2moe.builders import ModelConfig, build_model
    from i2moe.losses import total_loss

    torch.manual_seed(seed)
    config = ModelConfig(
        fusion=fusion,
        fusion_options={"dropout": dropout} if fusion == "transformer" else {},
        encoder_options={s.name: {"dropout": dropout} for s in specs if s.kind == "vector"},
        dim=dim,
        head_hidden=32,
        reweighting_hidden=64,
        interaction_weight=0.5,
        evidence_weight=evidence_weight,
    )
    num_classes = int(splits["train"].targets.max()) + 1
    model = build_model(specs, "classification", num_classes, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train = splits["train"]
    generator = torch.Generator().manual_seed(seed)
    best, best_state = -1.0, None
    warmup_epochs = round(interaction_warmup * epochs)
    for epoch in range(epochs):
        model.train()
        interaction_weight = 0.0 if epoch < warmup_epochs else config.interaction_weight
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            output = model({k: v[rows] for k, v in train.arrays.items()})
            loss = total_loss(
                output,
                train.targets[rows],
                "classification",
                interaction_weight=interaction_weight,
            ).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = _accuracy(model, splits["val"])
        log.debug("epoch %d: validation accuracy %.4f", epoch, accuracy)
        if accuracy >= best:  # ties: keep the later, better-trained reweighter
            best, best_state = accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model


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

    import numpy as np

    from i2moe.interpret.attribution import METHODS, attribute

    arrays = make_data(case, num_samples=num_samples, seed=seed)
    names = [str(v) for v in arrays["interaction_names"]]
    truth = true_interaction(arrays)
    specs, splits = _datasets(arrays)
    test_codes = arrays["interaction"][arrays["split"] == 2]
    rows = []
    for training, weight in trainings.items():
        start = time.perf_counter()
        model = train_model(
            specs, splits, evidence_weight=weight, fusion=fusion, epochs=epochs, seed=seed
        )
        seconds = time.perf_counter() - start
        accuracy = _accuracy(model, splits["test"])
        results = attribute(model, splits["test"], METHODS, reference=splits["train"], seed=seed)
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
                "train_seconds": round(seconds, 1),
            }
            for mechanism in ("uni", "syn", "red"):  # per-mechanism agreement, mixtures only
                code = names.index("uni_mod0" if mechanism == "uni" else mechanism)
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


def markdown_table(frame: pd.DataFrame) -> str:
    """A data frame as a Markdown table, numbers to 3 decimals."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


# Samples per data set and epochs by number of modalities (defaults of the suite): parity and
# circular synergy of 3-4 modalities need more data and epochs than of 2 (docs/faithfulness.md).
SUITE_SIZES: dict[int, tuple[int, int]] = {2: (2000, 15), 3: (3000, 20), 4: (3000, 30)}


def suite_size(num_modalities: int) -> tuple[int, int]:
    """(samples, epochs) of the suite's data sets with this many modalities."""
    return SUITE_SIZES.get(num_modalities, SUITE_SIZES[max(SUITE_SIZES)])


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

    from i2moe.experiments.pid import dit_available

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
        (folder / "summary.md").write_text(markdown_table(table))
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
    """Test accuracy of each training on a real single-label data set (the lean loop of
    :func:`train_model`, D = ``dim``): one row per (seed, training), data split by the seed."""
    import time

    import pandas as pd

    from i2moe.data.load import load_data

    rows = []
    for seed in seeds:
        bundle = load_data(data, seed=seed)
        if bundle.task != "classification":
            raise ValueError(f"{data!r} is {bundle.task}; the accuracy check needs single-label")
        splits = {"train": bundle.train, "val": bundle.val, "test": bundle.test}
        for training, weight in trainings.items():
            start = time.perf_counter()
            model = train_model(
                bundle.modalities, splits, evidence_weight=weight, dim=dim, epochs=epochs, seed=seed
            )
            rows.append(
                {
                    "data": data,
                    "seed": seed,
                    "training": training,
                    "test_accuracy": _accuracy(model, bundle.test),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            log.info("%s seed %d %s: %.4f", data, seed, training, rows[-1]["test_accuracy"])
    return pd.DataFrame(rows)
