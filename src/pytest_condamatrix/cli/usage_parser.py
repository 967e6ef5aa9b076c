"""An argparse parser whose usage errors exit with the documented code.

argparse exits with 2 on a bad command line, which our table gives to an interrupted run;
a bad command line is :attr:`ExitCode.USAGE_ERROR` (4), as for every other bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from ..errors import ExitCode


class UsageArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that exits with :attr:`ExitCode.USAGE_ERROR`."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE_ERROR), f"{self.prog}: error: {message}\n")
