"""The runs of each of the paper's tables: which shipped config, and what each row changes.

Tables: 1 = every vanilla backbone and I2MoE-MulT; 2 = I2MoE with each backbone against the
vanilla backbone; 4 = the ablations of I2MoE-MulT (docs/method.md section 6); 5 = the masking
strategies random / mean / zero. A run's folder is shared by every table that has it (Table 1's
MulT run is Table 2's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from i2moe.experiments.paper import paper

TABLES: tuple[int, ...] = tuple(paper().tables)
# The backbones of the paper's tables (each has a shipped config per dataset), in its row order.
BACKBONES: tuple[str, ...] = tuple(paper().backbones)


class ReproduceError(ValueError):
    """A reproduce request cannot be run as asked (bad table, override or output folder)."""


@dataclasses.dataclass(frozen=True)
class PaperRun:
    """One row of a paper table: which config, and what the row changes in it.

    Attributes:
        method: the row's name in the table ("MulT", "I2MoE-MulT", "No-Interaction", ...).
        fusion: backbone; selects ``<dataset>_<fusion>.yaml``.
        vanilla: the backbone alone.
        ablation: ``ModelConfig.ablation``.
        masking: ``ModelConfig.masking``.
    """

    method: str
    fusion: str
    vanilla: bool = False
    ablation: str = "none"
    masking: str = "random"

    @property
    def folder(self) -> str:
        """Run folder name, shared by every table that has this run."""
        if self.vanilla:
            return f"{self.fusion}-vanilla"
        name = f"{self.fusion}-i2moe"
        if self.ablation != "none":
            name += f"-{self.ablation}"
        if self.masking != "random":
            name += f"-masking-{self.masking}"
        return name

    @property
    def paper_method(self) -> str | None:
        """The paper's Table 1 row that is this same model, if any."""
        if self.ablation != "none" or self.masking != "random":
            return None
        if self.vanilla:
            return paper().backbones[self.fusion]
        return i2moe_name(self.fusion) if self.fusion == "transformer" else None


def i2moe_name(fusion: str) -> str:
    """``I2MoE-MulT``, ``I2MoE-EF``, ...: I2MoE with that backbone."""
    return f"I2MoE-{paper().backbones[fusion]}"


def paper_grid(table: int, fusions: Sequence[str] | None = None) -> list[PaperRun]:
    """The runs of a paper table.

    Args:
        table: 1, 2, 4 or 5.
        fusions: backbones to include (default: all for Tables 1 and 2, the transformer for
            Tables 4 and 5, whose rows are variants of I2MoE with the given backbones).
    """
    if table not in TABLES:
        raise ReproduceError(f"--table {table}: expected one of {', '.join(map(str, TABLES))}")
    default = BACKBONES if table in (1, 2) else ("transformer",)
    chosen = list(fusions) if fusions else list(default)
    unknown = [f for f in chosen if f not in BACKBONES]
    if unknown:
        raise ReproduceError(
            f"--fusion {' '.join(unknown)}: unknown backbone; "
            f"expected some of {', '.join(BACKBONES)}"
        )
    chosen = [f for f in BACKBONES if f in chosen]  # the paper's row order
    names = paper().backbones
    if table == 1:
        runs = [PaperRun(names[f], f, vanilla=True) for f in chosen]
        if "transformer" in chosen:
            runs.append(PaperRun(i2moe_name("transformer"), "transformer"))
        return runs
    if table == 2:
        return [
            run
            for f in chosen
            for run in (PaperRun(names[f], f, vanilla=True), PaperRun(i2moe_name(f), f))
        ]
    runs = []
    for f in chosen:
        suffix = "" if len(chosen) == 1 else f" ({names[f]})"
        if table == 4:
            runs.append(PaperRun(f"{i2moe_name(f)} (full)", f))
            runs += [
                PaperRun(f"{label}{suffix}", f, ablation=ablation)
                for ablation, label in paper().ablations.items()
            ]
        else:
            runs += [
                PaperRun(f"{masking} masking{suffix}", f, masking=masking)
                for masking in paper().maskings
            ]
    return runs
