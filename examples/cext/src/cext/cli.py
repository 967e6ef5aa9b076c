"""The ``cext-add`` command: prints the sum of its arguments."""

from __future__ import annotations

import sys

from cext import add


def main(argv: list[str] | None = None) -> int:
    total = 0
    for arg in sys.argv[1:] if argv is None else argv:
        total = add(total, int(arg))
    print(total)
    return 0
