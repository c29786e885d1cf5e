"""``i2moe explain``'s options (the command's runs are tested in tests/runs/test_explain.py)."""

import subprocess
import sys

from i2moe.cli import build_parser


def test_explain_is_registered():
    args = build_parser().parse_args(
        ["explain", "--run", "r", "--samples", "3", "17", "--ids", "a", "--tolerance", "0.2"]
    )
    assert args.samples == [3, 17] and args.ids == ["a"] and args.tolerance == 0.2
    assert args.split == "test" and args.output is None


def test_the_command_line_loads_no_plotting_library():
    code = "import sys, i2moe.cli; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
