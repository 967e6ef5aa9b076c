"""Values of the user's shown in messages: bounded however large they are."""

from __future__ import annotations

import math
import reprlib
from typing import Any


def show(value: Any) -> str:
    """A value for a message: bounded however large it is (never a full ``repr``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {_digits(abs(value))}-digit number"
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _digits(number: int) -> int:
    """Decimal digits of a huge ``number`` (str() refuses past 4300; log10 alone rounds)."""
    exponent = int(math.log10(number))
    if 10**exponent > number:
        exponent -= 1
    elif 10 ** (exponent + 1) <= number:
        exponent += 1
    return exponent + 1


def show_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxdict, shown.maxtuple = 2, 4, 4, 4
    shown.maxstring, shown.maxother, shown.maxlong = 60, 60, 40
    return shown


_REPR = _bounded_repr()


def key_text(key: Any) -> str:
    """A key of the user's for a message: a string as written (cut), anything else shown."""
    if isinstance(key, str):
        return key if len(key) <= 60 else key[:57] + "..."
    return show(key)
