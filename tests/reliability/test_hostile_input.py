"""Hostile configuration values, in process: at least 200 distinct bad inputs, each a
:class:`ConfigError` naming the key (or accepted as documented), never a traceback, never an
unbounded message, and never seconds of work.

The values go straight into ``parse_config`` (what both the TOML and the YAML loader feed),
so the cases cost milliseconds; the YAML-only cases (aliases, duplicate keys, nesting) go
through the file loader, the alias bomb in a child process with a memory limit.
"""

from __future__ import annotations

import itertools
import math
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_condamatrix.config import TOP_LEVEL_KEYS, load_config, parse_config
from pytest_condamatrix.errors import CondaMatrixError, ConfigError

from .conftest import Figures

HUGE = 9223372036854775807
FULL_WIDTH = "\uff13.\uff11\uff12"  # 3.12 in full-width digits, which \d matches
BIG = 10**5000 - 1  # 5000 digits: past what int() and str() convert by default
HOSTILE: list[tuple[str, Any]] = [
    ("int64-max", HUGE),
    ("5000-digit int", BIG),
    ("5000-digit string", "3." + "1" * 5000),
    ("negative", -1),
    ("zero", 0),
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("true", True),
    ("none", None),
    ("empty string", ""),
    ("blank string", "  \t"),
    ("nul", "3.12\0"),
    ("surrogate", "\ud800"),
    ("full-width digits", FULL_WIDTH),
    ("leading zero", "3.012"),
    ("newline", "3.12\n"),
    ("path", "../../etc/passwd"),
    ("markup", "[bold red]x[/]"),
    ("100k string", "x" * 100_000),
    ("nested list", [[[[[[["3.12"]]]]]]]),
    ("deep list", __import__("functools").reduce(lambda acc, _: [acc], range(500), "x")),
    ("wide list", ["3.12"] * 100_000),
    ("dict", {"a": 1}),
    ("list of ints", [HUGE, -1]),
    ("list of huge strings", ["9" * 5000]),
    ("list of surrogates", ["\udcff"]),
    ("list of full-width", [FULL_WIDTH]),
    ("list of leading zeros", ["3.12", "3.012"]),
    ("list of nan", [math.nan]),
]
# every key with every value: a value that fits a key by chance is accepted, as documented
KEYS = [k for k in TOP_LEVEL_KEYS if k != "environment"]


def check(raw: dict[str, Any], root: Path) -> str:
    """Parse ``raw``: the error's message, or "" when accepted; fails on anything else."""
    start = time.monotonic()
    try:
        parse_config(raw, source=root / "pyproject.toml", root=root)
        message = ""
    except CondaMatrixError as exc:
        message = str(exc)
    except BaseException as exc:  # a traceback for the user: the bug this test is about
        pytest.fail(f"{type(exc).__name__} for {list(raw)}: {str(exc)[:300]}")
    assert time.monotonic() - start < 2, f"{list(raw)} took {time.monotonic() - start:.1f} s"
    assert len(message) < 2000, message[:300]
    return message


def test_hostile_values_for_every_key(tmp_path: Path, figures: Figures) -> None:
    cases = refused = 0
    for key, (name, value) in itertools.product(KEYS, HOSTILE):
        raw: dict[str, Any] = {"python": ["3.12"], key: value}
        if key == "python":
            raw = {"python": value}
        message = check(raw, tmp_path)
        cases += 1
        if message:
            refused += 1
            assert key in message, f"{key}={name}: the message names no key: {message}"
    # values of axes inside include/exclude rules and CUDA variants
    for (_, value), where in itertools.product(HOSTILE, ("include", "exclude")):
        for field in ("python", "cuda"):
            message = check({"python": ["3.12"], where: [{field: value}]}, tmp_path)
            cases += 1
            refused += bool(message)
    # hostile keys, at the top and in the tables below it
    for (name, value), table in itertools.product(HOSTILE, ("", "include", "cuda-variants")):
        if isinstance(value, list | dict):
            continue  # YAML and TOML keys are scalars
        bad: dict[Any, Any] = {value: ["3.12"]}
        raw = {
            "python": ["3.12"],
            **({table: [bad] if table == "include" else bad} if table else bad),
        }
        message = check(raw, tmp_path)
        cases += 1
        refused += bool(message)
        assert message, f"the key {name} in {table or 'the top level'} was accepted"
    figures.record(
        "hostile input",
        config_cases=cases,
        config_refused=refused,
        config_accepted=cases - refused,
        tracebacks=0,
    )
    assert cases >= 200


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"python": [FULL_WIDTH]}, "is not a Python version"),
        ({"python": ["3.12", "3.012"]}, "'3.012' is not a Python version"),
        ({"python": ["3." + "1" * 5000]}, "is not a Python version"),
        ({"python": ["3.12"], "cuda": ["\uff11\uff12.\uff11"]}, "is not a CUDA variant"),
        ({"python": ["3.12"], "cuda": ["12.01"]}, "is not a CUDA variant"),
        ({"python": ["3.12"], "jobs": HUGE}, "is not a positive whole number (at most 1024)"),
        ({"python": ["3.12"], "gpu-jobs": HUGE}, "gpu-jobs: "),
        ({"python": ["3.12"], "jobs": BIG}, "a 5000-digit number"),
        ({"python": [BIG]}, "a 5000-digit number is a number"),
        ({"python": ["3.12"], "timeout": BIG}, "timeout: "),
    ],
    ids=lambda v: "" if isinstance(v, str) else str(list(v)[-1]),
)
def test_named_bad_values_are_refused(raw: dict[str, Any], words: str, tmp_path: Path) -> None:
    message = check(raw, tmp_path)
    assert words in message, message


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("python: ['3.12']\npython: ['3.11']\n", "the key 'python' is written twice"),
        ("python: ['3.12']\njobs: 2\njobs: 3\n", "line 3"),
        ("python: ['3.12']\ncuda-variants:\n  '12.1': {}\n  '12.1': {}\n", "written twice"),
        ("python: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: &a [x]\npython: *a\n<<: *a\n", "invalid YAML"),
    ],
    ids=["duplicate key", "duplicate line", "duplicate nested", "deep nesting", "merge list"],
)
def test_yaml_duplicate_keys_and_depth(text: str, words: str, tmp_path: Path) -> None:
    path = write(tmp_path, "condamatrix.yml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert words in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", "[tool.condamatrix]\npython = ['3.12']\njobs = " + "9" * 5000 + "\n"),
        ("condamatrix.yml", "python: ['3.12']\njobs: " + "9" * 5000 + "\n"),
        ("condamatrix.yml", "python: ['3.12']\ntimeout: 1" + "0" * 5000 + ".5\n"),
    ],
    ids=["toml", "yaml", "yaml float"],
)
def test_numbers_too_long_to_convert(name: str, text: str, tmp_path: Path) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(str(info.value)) < 500, str(info.value)[:500]


def test_both_yaml_names_in_one_folder_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "condamatrix.yml", "python: ['3.12']\n")
    write(tmp_path, "condamatrix.yaml", "python: ['3.11']\n")
    with pytest.raises(ConfigError, match=r"both condamatrix\.yml and condamatrix\.yaml"):
        load_config(start=tmp_path)


# 8 levels of 8 aliases: 16 million values once expanded, from about 500 bytes
BOMB = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
LOAD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_condamatrix.config import load_config
    from pytest_condamatrix.errors import ConfigError
    try:
        load_config(Path(sys.argv[1]))
    except ConfigError as exc:
        print(exc)
    """
)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("where", ["python", "jobs", "unknown key"])
def test_a_yaml_alias_bomb_is_refused_at_once(where: str, tmp_path: Path) -> None:
    key = "bogus" if where == "unknown key" else where
    path = write(tmp_path, "condamatrix.yml", BOMB + f"{key}: *i\n")
    assert len(path.read_bytes()) < 600
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,  # before the fix: 6 GB, then a MemoryError traceback
        check=False,
    )
    seconds = time.monotonic() - start
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "aliases expand to more than" in proc.stdout, proc.stdout
    assert seconds < 10
