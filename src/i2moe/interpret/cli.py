"""``i2moe explain``: interpret a saved run; :func:`write_interpretation` for ``i2moe fit``.

Importing this module registers the sub-command with :mod:`i2moe.cli`; everything heavy is
imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2moe.cli import EXTRA_COMMANDS

if TYPE_CHECKING:
    from i2moe.config import RunConfig
    from i2moe.data.base import DataBundle
    from i2moe.interpret.analysis import Explanation
    from i2moe.training.module import FusionTask

log = logging.getLogger(__name__)


def default_output(run_dir: str | Path, split: str = "test", data: str | None = None) -> Path:
    """Where a run's interpretation goes: ``<run>/interpretation`` for its own test split,
    ``<run>/interpretation/<split>`` for another split, ``<run>/interpretation/<data>_<split>``
    for other data (so the test split's files, which other tools read, are never replaced)."""
    base = Path(run_dir) / "interpretation"
    if data is None:
        return base if split == "test" else base / split
    return base / f"{Path(data).stem}_{split}"


def _interaction_groups(bundle: DataBundle, split: str, size: int) -> dict[str, list[str]]:
    """The true interaction per sample, for generated data that records it."""
    codes = bundle.meta.get("interaction", {})
    names = bundle.meta.get("interaction_names")
    if not isinstance(codes, dict) or split not in codes or not names:
        return {}
    labels = [str(names[int(c)]) for c in codes[split]]
    return {"interaction": labels} if len(labels) == size else {}


def _vanilla_message(run_dir: str | Path) -> str:
    return (
        f"{run_dir}: a vanilla fusion run (no experts) has no expert weights to explain; "
        "interpretation needs an I2MoE run (trained without --vanilla)"
    )


def _interpret(
    run_dir: str | Path,
    module: FusionTask,
    config: RunConfig,
    info: dict[str, Any],
    *,
    split: str,
    samples: Sequence[int] | None,
    sample_ids: Sequence[Any] | None,
    data: str | None,
    tolerance: float,
    output: str | Path | None,
    bundle: DataBundle | None,
    draws: int,
    seed: int,
    num_examples: int,
) -> Explanation:
    from i2moe.interpret import explain
    from i2moe.interpret.attribution import write_attribution
    from i2moe.training.inference import run_data

    if bundle is None:
        bundle = run_data(config, info, data)
    dataset = bundle.split(split)
    output_dir = default_output(run_dir, split, data) if output is None else output
    # Written first, so that the report can show the attribution methods side by side.
    write_attribution(
        module.model,
        dataset,
        output_dir,
        reference=bundle.train,
        seed=seed,
    )
    return explain(
        module.model,
        dataset,
        output_dir,
        samples=samples,
        sample_ids=sample_ids,
        tolerance=tolerance,
        class_names=info.get("class_names"),
        groups=_interaction_groups(bundle, split, len(dataset)),
        num_examples=num_examples,
        draws=draws,
        seed=seed,
        context={"run": str(run_dir), "data": data or config.data.name, "split": split},
    )


def write_interpretation(
    run_dir: str | Path,
    split: str = "test",
    samples: Sequence[int] | None = None,
    *,
    sample_ids: Sequence[Any] | None = None,
    data: str | None = None,
    tolerance: float = 0.5,
    output: str | Path | None = None,
    bundle: DataBundle | None = None,
    draws: int = 3,
    seed: int = 0,
    num_examples: int = 3,
) -> Explanation | None:
    """Interpret a run folder's best checkpoint and write the files (what ``i2moe fit`` calls).

    Args:
        run_dir: the run folder (one seed).
        split: "train", "val" or "test".
        samples: positions in the split to show in detail (default: a few correct and a few
            wrong predictions).
        sample_ids: ids to show in detail.
        data: another data file with the run's modalities (default: the run's own data).
        tolerance: regression tolerance (correctness and agreement).
        output: the folder to write; default :func:`default_output`.
        bundle: the run's data, already loaded (saves reading it again).
        draws / seed: random replacements in the modality sensitivity.
        num_examples: correct and wrong samples shown by default.

    Returns:
        The explanation, or None for a vanilla fusion run (nothing to explain; logged).
    """
    from i2moe.model import I2MoE
    from i2moe.training.inference import load_run

    module, config, info = load_run(run_dir)
    if not isinstance(module.model, I2MoE):
        log.info("%s", _vanilla_message(run_dir))
        return None
    return _interpret(
        run_dir,
        module,
        config,
        info,
        split=split,
        samples=samples,
        sample_ids=sample_ids,
        data=data,
        tolerance=tolerance,
        output=output,
        bundle=bundle,
        draws=draws,
        seed=seed,
        num_examples=num_examples,
    )


def cmd_explain(args: argparse.Namespace) -> int:
    """Handler of ``i2moe explain``."""
    from i2moe.model import I2MoE
    from i2moe.training.files import RunError
    from i2moe.training.inference import load_run

    module, config, info = load_run(args.run)
    if not isinstance(module.model, I2MoE):
        raise RunError(_vanilla_message(args.run))
    explanation = _interpret(
        args.run,
        module,
        config,
        info,
        split=args.split,
        samples=args.samples,
        sample_ids=args.ids,
        data=args.data,
        tolerance=args.tolerance,
        output=args.output,
        bundle=None,
        draws=args.draws,
        seed=args.seed,
        num_examples=args.examples,
    )
    report = explanation.files.get("report", explanation.files["summary"])
    log.info("explained %d samples: %s", explanation.num_samples, report)
    return 0


def register(subparsers: Any) -> None:
    """Add the ``explain`` sub-command to the ``i2moe`` parser."""
    parser = subparsers.add_parser(
        "explain",
        help="interpret a run: expert weights, outputs, agreement, modality sensitivity",
        description="Interpret an I2MoE run on a data split: per-sample expert outputs, weights "
        "and contributions, weight distributions, each expert against the model, expert "
        "agreement and modality sensitivity, as CSV/JSON, PNG figures and report.html.",
    )
    parser.add_argument("--run", required=True, type=Path, help="run folder (one seed)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument(
        "--samples", type=int, nargs="+", metavar="POS", help="positions in the split to show"
    )
    parser.add_argument("--ids", nargs="+", metavar="ID", help="sample ids to show")
    parser.add_argument(
        "--examples",
        type=int,
        default=3,
        metavar="K",
        help="without --samples/--ids: show K correct and K wrong predictions (default 3)",
    )
    parser.add_argument("--data", help="another data file with the run's modalities")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        help="regression: largest error counted correct and largest spread of agreeing "
        "experts (default 0.5)",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=3,
        help="random replacements averaged per modality in the sensitivity (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of those replacements")
    parser.add_argument(
        "--output",
        type=Path,
        help="folder to write (default <run>/interpretation; see docs/interpretation.md)",
    )
    parser.set_defaults(handler=cmd_explain)


if register not in EXTRA_COMMANDS:
    EXTRA_COMMANDS.append(register)
