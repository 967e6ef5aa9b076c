"""Parsing and checking of the configuration's fields, one function per kind of value.

Each raises :class:`ConfigError` naming the file, the key, the bad value and a fix.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ConfigError
from ..validate import MAX_JOBS
from .model import DEFAULT_GPU, TOP_LEVEL_KEYS, CellRule, CudaVariantSpec
from .show import key_text, show, show_text

# \Z, not $: "$" also matches before a final newline, which would reach file names.
# ASCII digits only (\d takes full-width and other scripts' digits), no leading zeros (3.012
# would be a cell of its own beside 3.12), at most four digits a part (no 5000-digit numbers).
_PART = r"(?:0|[1-9][0-9]{0,3})"
PYTHON_RE = re.compile(rf"^3\.({_PART})(\.{_PART})?\Z")
CUDA_RE = re.compile(rf"^{_PART}(\.{_PART}){{0,2}}\Z")
AXES = ("python", "cuda")
#: the longest timeout (about 31 years): past it, waits overflow the platform's timers
MAX_TIMEOUT = 1e9
#: the longest list a key may hold: each item is checked, some against the disk
MAX_ITEMS = 1000
RULE_KEYS = ("python", "cuda", "dependencies")
VARIANT_KEYS = ("dependencies", "channels")


def reject_unknown(
    raw: Mapping[str, Any], known: Sequence[str] | Mapping[str, str], where: Any, prefix: str
) -> None:
    for key in raw:
        if key in known:
            continue
        name = key_text(key)
        guess = difflib.get_close_matches(name.replace("_", "-"), list(known), n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(known)}"
        raise ConfigError("unknown key", file=where, key=prefix + name, hint=hint)


def _list(value: Any, where: Any, key: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(
            f"expected a list, got {show(value)}",
            file=where,
            key=key,
            hint=f"write {key} as {TOP_LEVEL_KEYS.get(key, 'a list')}",
        )
    if len(value) > MAX_ITEMS:
        raise ConfigError(
            f"{len(value)} items is more than a matrix needs (at most {MAX_ITEMS})",
            file=where,
            key=key,
        )
    return value


def strings(value: Any, where: Any, key: str) -> tuple[str, ...]:
    items = _list(value, where, key)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"expected a non-empty string, got {show(item)}",
                file=where,
                key=f"{key}[{i}]",
                hint="quote the value",
            )
        problem = validate.text_problem(item.strip())
        if problem:
            raise ConfigError(f"{show(item)}: {problem}", file=where, key=f"{key}[{i}]")
    return tuple(item.strip() for item in items)


def versions(value: Any, where: Any, key: str, check: Any) -> tuple[str, ...]:
    items = _list(value, where, key)
    if not items:
        raise ConfigError(
            "the axis is empty", file=where, key=key, hint=f"list at least one value: {key} = [...]"
        )
    out: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, float | int) and not isinstance(item, bool):
            raise ConfigError(
                f"{show(item)} is a number, not a string",
                file=where,
                key=f"{key}[{i}]",
                hint=f"quote versions: '{show(item)}' (unquoted, 3.10 reads as the number 3.1)",
            )
        if not isinstance(item, str):
            raise ConfigError(f"expected a string, got {show(item)}", file=where, key=f"{key}[{i}]")
        check(item, where, f"{key}[{i}]")
        if item in out:
            raise ConfigError(
                f"{show(item)} is listed twice", file=where, key=key, hint="list each value once"
            )
        out.append(item)
    return tuple(out)


def check_python(value: str, where: Any, key: str) -> None:
    match = PYTHON_RE.match(value)
    if not match:
        raise ConfigError(
            f"{show(value)} is not a Python version",
            file=where,
            key=key,
            hint="write it as MAJOR.MINOR or MAJOR.MINOR.PATCH in ASCII digits without leading "
            "zeros, e.g. '3.12'",
        )
    if int(match.group(1)) < 9:
        raise ConfigError(
            f"Python {value} is not supported in cells",
            file=where,
            key=key,
            hint="cells run CPython 3.9 or newer",
        )


def check_cuda(value: str, where: Any, key: str) -> None:
    if value != "cpu" and not CUDA_RE.match(value):
        raise ConfigError(
            f"{show(value)} is not a CUDA variant",
            file=where,
            key=key,
            hint="use 'cpu' or a CUDA version such as '11.8' or '12.1' (ASCII digits, no "
            "leading zeros)",
        )


#: the common shape of a spec (``numpy``, ``numpy >=1.24,<2``, ``cuda-version=12.1``), which
#: conda's grammar always accepts: read here, without rattler (~100 ms to import, on every
#: run); any other spec is parsed by rattler
#: a number of a version: rattler holds each in 64 bits, so a longer one goes to rattler
_NUMBER = r"[0-9]{1,19}"
SIMPLE_SPEC = re.compile(
    r"(?P<name>[a-z0-9_][a-z0-9._-]*)"
    rf"(?:(?:\s+|\s*(?:==|>=|<=|!=|>|<|=)\s*){_NUMBER}(?:\.{_NUMBER})*(?:\.\*)?"
    rf"(?:\s*,\s*(?:==|>=|<=|!=|>|<)\s*{_NUMBER}(?:\.{_NUMBER})*)*)?\Z",
    re.ASCII,
)


def spec_name(spec: str) -> str:
    """The package a conda match spec names (normalised); a ValueError if it is not one."""
    simple = SIMPLE_SPEC.match(spec)
    if simple:
        return simple["name"]
    from rattler import MatchSpec

    try:
        parsed = MatchSpec(spec, strict=False)  # conda also accepts name=version=build
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise ValueError(str(exc)) from None
    return parsed.name.normalized if parsed.name else ""


def specs(value: Any, where: Any, key: str) -> tuple[str, ...]:
    specs = strings(value, where, key)
    for i, spec in enumerate(specs):
        try:
            name = spec_name(spec)
        except ValueError as exc:
            raise ConfigError(
                f"{show(spec)} is not a valid conda match spec: {show_text(str(exc))}",
                file=where,
                key=f"{key}[{i}]",
                hint="write specs like 'numpy', 'numpy >=1.24' or 'numpy=1.26'",
            ) from None
        if name == "python":
            raise ConfigError(
                f"{show(spec)} pins Python, which the python axis decides",
                file=where,
                key=f"{key}[{i}]",
                hint="remove it and list the versions in python = [...]",
            )
    return specs


def channels(value: Any, where: Any, key: str, root: Path) -> tuple[str, ...]:
    channels = strings(value, where, key)
    if not channels:
        raise ConfigError("no channels listed", file=where, key=key, hint="e.g. ['conda-forge']")
    out: list[str] = []
    for i, channel in enumerate(channels):
        out.append(resolve_channel(channel, root, where=where, key=f"{key}[{i}]"))
    return tuple(out)


def resolve_channel(channel: str, root: Path, *, where: Any = None, key: str = "channels") -> str:
    """``channel`` as rattler takes it: names and URLs as they are, local folders absolute."""
    expanded = os.path.expandvars(channel)
    if "://" in expanded:
        return expanded
    looks_local = expanded.startswith((".", "/", "~")) or os.sep in expanded
    if not looks_local:
        return expanded  # a channel name such as conda-forge
    folder = validate.resolved(root / Path(expanded).expanduser())
    if not validate.is_dir(folder):
        raise ConfigError(
            f"local channel folder {show(channel)} does not exist (looked at {folder})",
            file=where,
            key=key,
            hint="build one with `condamatrix local-channel DIR`, or fix the path",
        )
    return str(folder)


def rules(value: Any, where: Any, key: str, *, allow_deps: bool) -> tuple[CellRule, ...]:
    rules: list[CellRule] = []
    for i, item in enumerate(_list(value, where, key)):
        item_key = f"{key}[{i}]"
        if not isinstance(item, dict) or not item:
            raise ConfigError(
                f"expected a table like {{python = '3.9', cuda = 'cpu'}}, got {show(item)}",
                file=where,
                key=item_key,
            )
        allowed = RULE_KEYS if allow_deps else AXES
        reject_unknown(item, allowed, where, prefix=item_key + ".")
        values: dict[str, str | None] = {}
        for axis in AXES:
            axis_value = item.get(axis)
            if axis_value is not None and not isinstance(axis_value, str):
                raise ConfigError(
                    f"{show(axis_value)} is not a string",
                    file=where,
                    key=f"{item_key}.{axis}",
                    hint="quote the value, e.g. '3.10'",
                )
            values[axis] = axis_value
        if values["python"] is None and values["cuda"] is None:
            raise ConfigError(
                "names no axis value",
                file=where,
                key=item_key,
                hint="give python and/or cuda",
            )
        deps = specs(item.get("dependencies", []), where, f"{item_key}.dependencies")
        rules.append(CellRule(python=values["python"], cuda=values["cuda"], dependencies=deps))
    return tuple(rules)


def jobs(value: Any, where: Any, key: str = "jobs") -> int | None:
    if value is None or (value == "auto" and key == "jobs"):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOBS:
        hint = (
            "use e.g. jobs = 2, or 'auto' for one per CPU"
            if key == "jobs"
            else f"use e.g. {key} = 2 on a machine with two GPUs (default: 1)"
        )
        raise ConfigError(
            f"{show(value)} is not a positive whole number (at most {MAX_JOBS})",
            file=where,
            key=key,
            hint=hint,
        )
    return value


def timeout(value: Any, where: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TIMEOUT
    ):
        raise ConfigError(
            f"{show(value)} is not a positive number of seconds (at most {MAX_TIMEOUT:g})",
            file=where,
            key="timeout",
            hint="use e.g. timeout = 900",
        )
    return float(value)


def choice(value: Any, choices: Sequence[str], where: Any, key: str) -> str:
    if value not in choices:
        typed = value if isinstance(value, str) and len(value) <= 100 else ""
        guess = difflib.get_close_matches(typed, list(choices), n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"use one of: {', '.join(choices)}"
        raise ConfigError(f"{show(value)} is not allowed", file=where, key=key, hint=hint)
    return str(value)


def flag(value: Any, where: Any, key: str, hint: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f"{key} must be true or false, not {show(value)}", file=where, key=key, hint=hint
        )
    return value


def _table(
    value: Any, where: Any, key: str, keyed_by: str, hint: str | None = None
) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"expected a table keyed by {keyed_by}, got {show(value)}",
            file=where,
            key=key,
            hint=hint,
        )
    return value


def variants(value: Any, where: Any, root: Path) -> dict[str, CudaVariantSpec]:
    out: dict[str, CudaVariantSpec] = {}
    for name, body in _table(value, where, "cuda-variants", "variant").items():
        key = f"cuda-variants.{key_text(name)}"
        if not isinstance(body, dict):
            raise ConfigError(f"expected a table, got {show(body)}", file=where, key=key)
        reject_unknown(body, VARIANT_KEYS, where, prefix=key + ".")
        deps = specs(body.get("dependencies", []), where, f"{key}.dependencies")
        channels = tuple(
            resolve_channel(c, root, where=where, key=f"{key}.channels")
            for c in strings(body.get("channels", []), where, f"{key}.channels")
        )
        out[str(name)] = CudaVariantSpec(dependencies=deps, channels=channels)
    return out


def runners(value: Any, where: Any, cuda_values: set[str]) -> dict[str, tuple[str, ...]]:
    example = "e.g. runners = {cpu = 'ubuntu-latest', default-gpu = ['self-hosted', 'gpu']}"
    out: dict[str, tuple[str, ...]] = {}
    for name, labels in _table(value, where, "runners", "CUDA variant", hint=example).items():
        key = f"runners.{key_text(name)}"
        if not isinstance(name, str):
            # YAML reads an unquoted 12.1 as a number
            raise ConfigError(
                f"the variant {show(name)} is not a string",
                file=where,
                key=key,
                hint=f"quote CUDA versions used as keys: '{show(name)}'",
            )
        if name != DEFAULT_GPU and name not in cuda_values:
            hint = f"add {show(name)} to cuda, or remove this entry"
            if isinstance(labels, dict) and name.isdigit():
                # TOML reads an unquoted 12.1 = ... as the nested key 12 -> 1
                hint = 'quote CUDA versions used as keys: "12.1" = [...]'
            raise ConfigError(
                f"variant {show(name)} is not on the cuda axis {sorted(cuda_values)}",
                file=where,
                key=key,
                hint=hint + f" ({DEFAULT_GPU!r} stands for every CUDA variant not named)",
            )
        out[name] = _labels(labels, where, key)
    return out


def _labels(value: Any, where: Any, key: str) -> tuple[str, ...]:
    hint = "give a runner label such as 'ubuntu-latest' or a list such as ['self-hosted', 'gpu']"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(
            f"expected a label or a non-empty list of labels, got {show(value)}",
            file=where,
            key=key,
            hint=hint,
        )
    labels: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip() or item != item.strip():
            raise ConfigError(
                f"{show(item)} is not a runner label",
                file=where,
                key=key if isinstance(value, str) else f"{key}[{i}]",
                hint=hint + " (non-empty, no surrounding spaces)",
            )
        if item in labels:
            raise ConfigError(
                f"label {show(item)} is listed twice", file=where, key=key, hint="list each once"
            )
        labels.append(item)
    return tuple(labels)
