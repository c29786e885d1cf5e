"""A measurement subprocess started by ``i2moe bench``: ``python -m i2moe.experiments.bench
--worker JOB.json``."""

import logging
import sys

from i2moe.experiments.bench.benchmark import worker_main

if len(sys.argv) != 3 or sys.argv[1] != "--worker":
    sys.exit("usage: python -m i2moe.experiments.bench --worker JOB.json (use `i2moe bench`)")
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
sys.exit(worker_main(sys.argv[2]))
