"""A run's interpretation folder: :func:`interpret_run` for ``i2moe explain``,
:func:`write_interpretation` for ``i2moe fit``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from i2moe.config import RunConfig
    from i2moe.data.base import DataBundle
    from i2moe.interpret.analysis import Explanation
    from i2moe.training.module import FusionLightningModule

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


def vanilla_message(run_dir: str | Path) -> str:
    return (
        f"{run_dir}: a vanilla fusion run (no experts) has no expert weights to explain; "
        "interpretation needs an I2MoE run (trained without --vanilla)"
    )


def interpret_run(
    run_dir: str | Path,
    module: FusionLightningModule,
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
    from i2moe.runs.loading import run_data

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
    explanation = explain(
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
        # i2moe robustness describes the test split of the run's own data.
        robustness=Path(run_dir) / "robustness.json" if data is None and split == "test" else None,
    )
    if Path(output_dir) == default_output(run_dir) and (Path(run_dir) / "metrics.json").exists():
        from i2moe.runs.model_card import write_model_card

        write_model_card(run_dir)  # the card shows the test split's attribution
    return explanation


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
    from i2moe.runs.loading import load_run

    module, config, info = load_run(run_dir)
    if not isinstance(module.model, I2MoE):
        log.info("%s", vanilla_message(run_dir))
        return None
    return interpret_run(
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
