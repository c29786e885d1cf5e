"""``python -m i2moe`` runs the ``i2moe`` command."""

import sys

from i2moe.cli import main

sys.exit(main())
