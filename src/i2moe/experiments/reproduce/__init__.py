"""``i2moe reproduce``: the paper's tables on its datasets, from the shipped configs.

A paper table becomes a grid of runs over the shipped configs (:mod:`.grid`, :mod:`.configs`);
every run is trained for every seed and the table is written as Markdown and CSV next to the
paper's own numbers (:mod:`.results`, :mod:`.run`; the numbers: ``i2moe/experiments/paper.yaml``).
Run folders are shared between tables, and a finished seed whose configuration is unchanged is
reused, not retrained.

- :mod:`~i2moe.experiments.reproduce.grid`: the runs of each table (``paper_grid``);
- :mod:`~i2moe.experiments.reproduce.configs`: the shipped configs and ``--set`` overrides;
- :mod:`~i2moe.experiments.reproduce.results`: the table's records, CSV and Markdown;
- :mod:`~i2moe.experiments.reproduce.run`: ``reproduce``, training a table's runs.
"""

from i2moe.experiments.paper import paper
from i2moe.experiments.reproduce.configs import (
    CONFIG_DIR,
    DATASETS,
    apply_overrides,
    build_run_config,
    config_path,
    parse_overrides,
    shipped_configs,
)
from i2moe.experiments.reproduce.grid import (
    BACKBONES,
    TABLES,
    PaperRun,
    ReproduceError,
    i2moe_name,
    paper_grid,
)
from i2moe.experiments.reproduce.results import table_records, write_table
from i2moe.experiments.reproduce.run import reproduce

#: method -> dataset -> metric -> (mean %, std %): the paper's Table 1 (from ``paper.yaml``).
PAPER_TABLE1 = paper().table1

__all__ = [
    "BACKBONES",
    "CONFIG_DIR",
    "DATASETS",
    "PAPER_TABLE1",
    "TABLES",
    "PaperRun",
    "ReproduceError",
    "apply_overrides",
    "build_run_config",
    "config_path",
    "i2moe_name",
    "paper_grid",
    "parse_overrides",
    "reproduce",
    "shipped_configs",
    "table_records",
    "write_table",
]
