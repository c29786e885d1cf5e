"""``python -m i2moe.cli``."""

import sys

from i2moe.cli.main import main

sys.exit(main())
