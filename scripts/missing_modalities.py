"""How I2MoE's test accuracy degrades as one modality goes missing (docs/reliability.md).

Generated data with mixed interactions over 3 modalities (a third of the samples carry the label
in ``mod0`` alone, a third in the synergy of all three, a third redundantly in each). Modality
``mod0`` is removed from a share of the samples (0, 10, 25, 50 %: all-NaN rows, the way a user
marks a missing modality; the shares are nested, so the 10 % are among the 25 %), the same share
in every split. Two models per share:

* ``complete``: trained and selected on complete data, tested with the gaps;
* ``gaps``: trained, selected and tested with the same share missing.

Run from the repository root (about 10 minutes on 2 shared CPU cores with the defaults)::

    python scripts/missing_modalities.py --output runs/missing_modalities

It writes ``results.csv`` (one row per share, training and seed) and ``table.md`` (the table of
docs/reliability.md) into ``--output``, and logs the table. It also compares, at the largest
share, what stands in for the missing modality at evaluation (``replacements.csv``, second table
of ``table.md``): the per-sample keyed noise i2moe uses, fresh noise on every call, one fixed
noise draw for every sample, and zeros.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import i2moe.model
from i2moe.config import RunConfig
from i2moe.data.load import load_data
from i2moe.data.synth import generate
from i2moe.runs.files import prepare_output
from i2moe.runs.fitting import fit_one
from i2moe.runs.loading import load_run
from i2moe.runs.prediction import predict_run, predict_split
from i2moe.runs.tables import markdown_table, mean_std_cell

log = logging.getLogger("missing_modalities")

RATES = (0.0, 0.10, 0.25, 0.50)
MISSING = "mod0"


def write_with_gaps(arrays: dict[str, np.ndarray], rate: float, draw: np.ndarray, path: Path):
    """Save ``arrays`` with ``MISSING`` blanked (NaN rows) where ``draw < rate``."""
    gapped = dict(arrays)
    gapped[MISSING] = arrays[MISSING].copy()
    gapped[MISSING][draw < rate] = np.nan
    np.savez(path, **gapped)
    return path


def train(data: Path, output: Path, seed: int, args: argparse.Namespace) -> Path:
    config = RunConfig()
    config.data.name = str(data)
    config.model.dim = args.dim
    config.train.epochs = args.epochs
    config.train.batch_size = args.batch_size
    config.train.seeds = [seed]
    prepare_output(output, resume=False, overwrite=True)
    start = time.perf_counter()
    fit_one(config, output, seed, progress=False, interpret=False)
    log.info("trained %s in %.0f s", output, time.perf_counter() - start)
    return output


def accuracy_on_test(run: Path, data: Path, scratch: Path) -> dict[str, float]:
    """Accuracy on the test split: all samples, those lacking ``MISSING``, the complete ones."""
    frame = predict_run(run, data=str(data), output=scratch)
    test = frame[frame["split"] == "test"]
    correct = test["prediction"] == test["target"]
    lacking = ~test[f"observed_{MISSING}"].astype(bool)
    return {
        "accuracy": correct.mean(),
        "accuracy_lacking": correct[lacking].mean() if lacking.any() else np.nan,
        "accuracy_complete": correct[~lacking].mean(),
        "test_lacking": int(lacking.sum()),
        "test_samples": len(test),
    }


def compare_replacements(run: Path, data: Path, draws: int = 5) -> dict[str, float]:
    """Test accuracy on the samples lacking ``MISSING`` with each evaluation replacement.

    The alternatives are swapped in for ``i2moe.model._sample_keyed_noise`` (what eval mode
    uses under random masking) for this measurement only.
    """
    module, _, _ = load_run(run)
    test = load_data(str(data)).test  # the file's own split
    lacking = ~test.observed[:, test.names.index(MISSING)]

    def accuracy() -> float:
        result = predict_split(module, test)
        correct = result["prediction"].argmax(-1) == result["target"]
        return correct[lacking].float().mean().item()

    keyed = i2moe.model._sample_keyed_noise
    fixed: dict[int, torch.Tensor] = {}

    def one_draw(values, observed, m, like):
        if m not in fixed:
            fixed[m] = torch.randn(like.shape[1:], generator=torch.Generator().manual_seed(m))
        return fixed[m].expand_as(like)

    scores = {"keyed noise": accuracy()}
    try:
        i2moe.model._sample_keyed_noise = lambda values, observed, m, like: torch.randn_like(like)
        torch.manual_seed(0)
        fresh = [accuracy() for _ in range(draws)]
        scores["fresh noise"], scores["fresh noise std"] = np.mean(fresh), np.std(fresh)
        i2moe.model._sample_keyed_noise = one_draw
        scores["one fixed draw"] = accuracy()
        i2moe.model._sample_keyed_noise = lambda values, observed, m, like: torch.zeros_like(like)
        scores["zeros"] = accuracy()
    finally:
        i2moe.model._sample_keyed_noise = keyed
    return scores


def markdown(results: pd.DataFrame) -> str:
    """One row per share: test accuracy mean +- std over seeds per training, and in brackets
    the mean accuracy on the test samples lacking ``MISSING``."""
    groups = results.groupby(["rate", "training"])
    mean, std = groups.mean(numeric_only=True), groups.std(ddof=0, numeric_only=True)
    rows = []
    for rate in sorted(results["rate"].unique()):
        cells = [f"{rate:.0%}"]
        for training in ("complete", "gaps"):
            row = mean.loc[(rate, training)]
            cell = mean_std_cell(row["accuracy"], std.loc[(rate, training), "accuracy"], 3)
            if not np.isnan(row["accuracy_lacking"]):
                cell += f" ({row['accuracy_lacking']:.3f})"
            cells.append(cell)
        rows.append(cells)
    header = [f"{MISSING} missing", "trained on complete data", "trained with the same gaps"]
    return markdown_table(header, rows)


def replacement_markdown(replacements: pd.DataFrame, rate: float) -> str:
    """Accuracy on the samples lacking ``MISSING`` per evaluation replacement, mean over seeds."""
    columns = ["keyed noise", "fresh noise", "one fixed draw", "zeros"]
    mean = replacements.groupby("training")[columns].mean()
    rows = [
        [training, *(float(mean.loc[training, c]) for c in columns)]
        for training in ("complete", "gaps")
    ]
    return markdown_table([f"{rate:.0%} {MISSING} missing, trained on", *columns], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/missing_modalities"))
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

    args.output.mkdir(parents=True, exist_ok=True)
    arrays = generate("mixed", num_modalities=3, num_samples=args.samples, dim=16, seed=0)
    draw = np.random.default_rng(1).random(args.samples)  # nested gaps: one draw per sample
    files = {
        rate: write_with_gaps(arrays, rate, draw, args.output / f"data_{round(rate * 100)}.npz")
        for rate in RATES
    }
    scratch = args.output / "predictions.csv"
    records = []
    for seed in args.seeds:
        complete = train(files[0.0], args.output / f"complete_seed{seed}", seed, args)
        for rate in RATES:
            gaps = complete if rate == 0 else None
            if gaps is None:
                name = f"gaps{round(rate * 100)}_seed{seed}"
                gaps = train(files[rate], args.output / name, seed, args)
            for training, run in (("complete", complete), ("gaps", gaps)):
                scores = accuracy_on_test(run, files[rate], scratch)
                records.append({"rate": rate, "training": training, "seed": seed, **scores})
                log.info("%s missing, trained on %s: %s", f"{rate:.0%}", training, scores)
    scratch.unlink(missing_ok=True)
    results = pd.DataFrame(records)
    results.to_csv(args.output / "results.csv", index=False)

    largest = max(RATES)
    replacements = []
    for seed in args.seeds:
        for training, name in (("complete", "complete"), ("gaps", f"gaps{round(largest * 100)}")):
            run = args.output / f"{name}_seed{seed}"
            scores = compare_replacements(run, files[largest])
            replacements.append({"training": training, "seed": seed, **scores})
    replacements = pd.DataFrame(replacements)
    replacements.to_csv(args.output / "replacements.csv", index=False)
    table = markdown(results) + "\n" + replacement_markdown(replacements, largest)
    (args.output / "table.md").write_text(table)
    log.info("\n%s", table)


if __name__ == "__main__":
    main()
