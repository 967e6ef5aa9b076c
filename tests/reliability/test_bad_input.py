"""Bad input, end to end: one clear message, the exit code of its kind, no traceback, and
nothing written outside the cache and the requested output paths.

tests/test_config.py checks the configuration messages one by one (in process); here every
case is a real ``pytest --conda-matrix`` run, so the cases also cover the command line, the
cache folder, channels and report paths. The runs of all cases go at once in a few threads
(each is a process mostly waiting on its imports), then each case is checked as a test.
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_condamatrix.errors import ExitCode
from pytest_condamatrix.localchannel import LocalChannel

from .conftest import Figures
from .helpers import tree_snapshot

USAGE, CACHE, FAILED = ExitCode.USAGE_ERROR, ExitCode.CACHE_ERROR, ExitCode.TESTS_FAILED


@dataclass(frozen=True)
class Case:
    id: str
    code: int
    words: tuple[str, ...]
    #: project files; "{channel}" is the local test channel. None: a valid pyproject.toml
    files: dict[str, str | bytes] | None = None
    args: tuple[str, ...] = ()
    #: where the cache goes, relative to the case folder; "{mount}" is a small tmpfs
    cache: str | None = "cache"
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    needs_mount: str = ""  # "", "full", "tiny" or "ro"


VALID = """
[tool.condamatrix]
python = ["3.12"]
channels = ["{channel}"]
dependencies = ["pytest"]
"""


def toml(body: str) -> dict[str, str | bytes]:
    return {"pyproject.toml": "[tool.condamatrix]\n" + textwrap.dedent(body)}


def yml(body: str | bytes) -> dict[str, str | bytes]:
    return {"condamatrix.yml": body}


def make_file(name: str) -> Callable[[Path], None]:
    def setup(case_dir: Path) -> None:
        (case_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (case_dir / name).write_text("a file, not a folder\n")

    return setup


def make_dir(name: str) -> Callable[[Path], None]:
    def setup(case_dir: Path) -> None:
        (case_dir / name).mkdir(parents=True)

    return setup


BOMB = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, n in zip("abcdefg", "bcdefgh", strict=True)
)

CASES = [
    # configuration files
    Case(
        "toml-syntax",
        USAGE,
        ("pyproject.toml", "Expected ']'"),
        {"pyproject.toml": "[tool.condamatrix\npython = 1\n"},
    ),
    Case("yaml-syntax", USAGE, ("invalid YAML", "line"), yml("python: [3.9\n")),
    Case(
        "yaml-python-object",
        USAGE,
        ("invalid YAML",),
        yml("python: !!python/object/apply:os.system ['touch pwned']\n"),
    ),
    Case(
        "yaml-alias-bomb",
        USAGE,
        ("invalid YAML", "aliases expand to more than 100000 values"),
        yml(BOMB + "python: ['3.12']\n"),
    ),
    Case("yaml-not-utf8", USAGE, ("cannot read the file",), yml(b"python: ['3.12\xff']\n")),
    Case("python-not-a-list", USAGE, ("python", "expected a list"), toml('python = "3.12"\n')),
    Case("unknown-key", USAGE, ("pyhton", "did you mean 'python'"), toml('pyhton = ["3.12"]\n')),
    Case("empty-axis", USAGE, ("python", "the axis is empty"), toml("python = []\n")),
    Case(
        "invalid-match-spec",
        USAGE,
        ("dependencies[0]", "not a valid conda match spec"),
        toml('python = ["3.12"]\ndependencies = ["numpy >=>1"]\n'),
    ),
    Case(
        "python-with-newline",
        USAGE,
        ("python[0]", "not a Python version"),
        toml('python = ["3.12\\n"]\n'),
    ),
    Case(
        "cuda-with-path",
        USAGE,
        ("cuda[0]", "not a CUDA variant"),
        toml('python = ["3.12"]\ncuda = ["../12.1"]\n'),
    ),
    Case(
        "jobs-wrong-type",
        USAGE,
        ("jobs", "positive whole number"),
        toml('python = ["3.12"]\njobs = "many"\n'),
    ),
    Case(
        "timeout-nan",
        USAGE,
        ("timeout", "positive number"),
        toml('python = ["3.12"]\ntimeout = nan\n'),
    ),
    Case(
        "missing-local-channel",
        USAGE,
        ("channels[0]", "does not exist"),
        toml('python = ["3.12"]\nchannels = ["./no-channel-here"]\n'),
    ),
    # the command line
    Case(
        "jobs-zero", USAGE, ("--conda-matrix-jobs 0", "positive"), args=("--conda-matrix-jobs", "0")
    ),
    Case("jobs-negative", USAGE, ("--conda-matrix-jobs -2",), args=("--conda-matrix-jobs", "-2")),
    Case("jobs-not-a-number", USAGE, ("invalid int value",), args=("--conda-matrix-jobs", "two")),
    Case(
        "gpu-jobs-zero",
        USAGE,
        ("--conda-matrix-gpu-jobs 0", "positive"),
        args=("--conda-matrix-gpu-jobs", "0"),
    ),
    Case(
        "timeout-negative",
        USAGE,
        ("--conda-matrix-timeout -1",),
        args=("--conda-matrix-timeout", "-1"),
    ),
    Case(
        "timeout-nan-flag",
        USAGE,
        ("--conda-matrix-timeout nan",),
        args=("--conda-matrix-timeout", "nan"),
    ),
    Case(
        "select-path-up",
        USAGE,
        ("matches no cell", "py3.12-cpu"),
        args=("--conda-matrix-select", "../../etc/*"),
    ),
    Case(
        "select-path-inside",
        USAGE,
        ("matches no cell",),
        args=("--conda-matrix-select", "py3.12-cpu/../../x"),
    ),
    Case("config-missing", USAGE, ("file not found",), args=("--conda-matrix-config", "nope.toml")),
    Case(
        "config-is-a-folder",
        USAGE,
        ("file not found",),
        args=("--conda-matrix-config", "adir"),
        setup=make_dir("project/adir"),
    ),
    Case(
        "channel-flag-missing",
        USAGE,
        ("--conda-matrix-channel", "does not exist"),
        args=("--conda-matrix-channel", "./nowhere"),
    ),
    Case(
        "json-is-a-folder",
        USAGE,
        ("--conda-matrix-json", "it is a folder"),
        args=("--conda-matrix-json", "adir"),
        setup=make_dir("project/adir"),
    ),
    Case(
        "junit-under-a-file",
        USAGE,
        ("--conda-matrix-junit", "is a file, not a folder"),
        args=("--conda-matrix-junit", "afile/out.xml"),
        setup=make_file("project/afile"),
    ),
    # the cache folder
    Case(
        "cache-is-a-file",
        CACHE,
        ("cannot use the cache folder", "--conda-matrix-cache-dir"),
        cache="cache-file",
        setup=make_file("cache-file"),
    ),
    Case(
        "cache-under-a-file",
        CACHE,
        ("cannot use the cache folder", "Not a directory"),
        cache="cache-file/cache",
        setup=make_file("cache-file"),
    ),
    Case("cache-in-proc", CACHE, ("cannot use the cache folder",), cache="/proc/condamatrix-cache"),
    Case(
        "cache-env-var-is-a-file",
        CACHE,
        ("cannot use the cache folder", "CONDAMATRIX_CACHE_DIR"),
        cache=None,
        env={"CONDAMATRIX_CACHE_DIR": "{case}/cache-file"},
        setup=make_file("cache-file"),
    ),
    Case(
        "cache-read-only",
        CACHE,
        ("cannot use the cache folder",),
        cache="{mount}/cache",
        needs_mount="ro",
    ),
    Case(
        "disk-full-at-start",
        CACHE,
        ("cannot use the cache folder", "No space left"),
        cache="{mount}/cache",
        needs_mount="full",
    ),
    Case(
        "disk-full-while-building",
        FAILED,
        ("py3.12-cpu: the disk of the cache", "is full", "hint: free disk space"),
        cache="{mount}/cache",
        needs_mount="tiny",
    ),
    # channels
    Case(
        "channel-unreachable",
        FAILED,
        ("py3.12-cpu: cannot solve the env", "127.0.0.1:9", "Connection refused"),
        toml('python = ["3.12"]\nchannels = ["http://127.0.0.1:9/nothing"]\n'),
    ),
    Case(
        "channel-url-missing",
        FAILED,
        ("py3.12-cpu: cannot solve the env", "no-such-channel"),
        toml('python = ["3.12"]\nchannels = ["file:///no-such-channel"]\n'),
    ),
    Case(
        "channel-folder-empty",
        FAILED,
        ("py3.12-cpu: cannot solve the env",),
        toml('python = ["3.12"]\nchannels = ["./empty-channel"]\n'),
        setup=make_dir("project/empty-channel"),
    ),
]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    project_before: dict[str, tuple[int, int]]
    project_after: dict[str, tuple[int, int]]
    home_after: dict[str, tuple[int, int]]
    skipped: str = ""


@contextlib.contextmanager
def small_mounts(base: Path) -> Iterator[dict[str, Path]]:
    """Tiny tmpfs mounts (full, tiny, read-only), when this process may mount them."""
    mounts: dict[str, Path] = {}
    try:
        for kind, options in (("tiny", "size=5m"), ("full", "size=1m"), ("ro", "ro,size=1m")):
            point = base / f"mnt-{kind}"
            point.mkdir()
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                capture_output=True,
                check=False,
            )
            if done.returncode != 0:
                break
            mounts[kind] = point
        if "full" in mounts:
            with contextlib.suppress(OSError), (mounts["full"] / "filler").open("wb") as fh:
                while True:
                    fh.write(b"\0" * 65536)
        yield mounts
    finally:
        for point in mounts.values():
            subprocess.run(["umount", str(point)], capture_output=True, check=False)


def run_case(case: Case, base: Path, channel: LocalChannel, mounts: dict[str, Path]) -> Outcome:
    case_dir = base / case.id
    project, home = case_dir / "project", case_dir / "home"
    project.mkdir(parents=True)
    home.mkdir()
    files = case.files if case.files is not None else {"pyproject.toml": VALID}
    for name, content in files.items():
        if isinstance(content, bytes):
            (project / name).write_bytes(content)
        else:
            (project / name).write_text(content.replace("{channel}", str(channel.path)))
    (project / "test_things.py").write_text("def test_ok():\n    pass\n")
    if case.setup:
        case.setup(case_dir)
    if case.needs_mount and case.needs_mount not in mounts:
        empty: dict[str, tuple[int, int]] = {}
        return Outcome(0, "", "", empty, empty, empty, skipped="cannot mount a tmpfs here")

    def fill(text: str) -> str:
        mount = mounts.get(case.needs_mount, case_dir)
        return text.replace("{case}", str(case_dir)).replace("{mount}", str(mount))

    argv = [sys.executable, "-m", "pytest", "--conda-matrix", "-p", "no:cacheprovider"]
    if case.cache is not None:
        argv += ["--conda-matrix-cache-dir", str(case_dir / fill(case.cache))]
    argv += list(case.args)
    environ = {k: v for k, v in os.environ.items() if k != "CONDAMATRIX_CACHE_DIR"}
    environ.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), NO_COLOR="1", COLUMNS="200")
    environ.update({k: fill(v) for k, v in case.env.items()})
    before = tree_snapshot(project)
    done = subprocess.run(
        argv, cwd=project, env=environ, capture_output=True, text=True, timeout=300, check=False
    )
    return Outcome(
        done.returncode,
        done.stdout,
        done.stderr,
        before,
        tree_snapshot(project),
        tree_snapshot(home),
    )


@pytest.fixture(scope="module")
def outcomes(
    local_channel: LocalChannel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    base = tmp_path_factory.mktemp("bad-input")
    with small_mounts(base) as mounts, ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c.id: pool.submit(run_case, c, base, local_channel, mounts) for c in CASES}
        yield {name: future.result() for name, future in futures.items()}


def config_case_count() -> int:
    """How many bad configurations tests/test_config.py checks (its BAD_CONFIGS table)."""
    source = Path(__file__).parent.parent / "test_config.py"
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "BAD_CONFIGS" for t in node.targets
        ):
            assert isinstance(node.value, ast.List)
            return len(node.value.elts)
    return 0


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_message(
    case: Case, outcomes: dict[str, Outcome], figures: Figures
) -> None:
    outcome = outcomes[case.id]
    if outcome.skipped:
        figures.add("bad input", "skipped")
        pytest.skip(outcome.skipped)
    text = outcome.stdout + outcome.stderr
    assert "Traceback" not in text, text
    assert outcome.code == case.code, text
    for word in case.words:
        assert word in text, (word, text)
    if case.code != FAILED:  # a usage or cache error: one message, on stderr
        assert outcome.stderr.count("ERROR:") == 1, outcome.stderr
    assert outcome.project_after == outcome.project_before, "written into the project"
    assert not outcome.home_after, "written outside the cache (into the home folder)"
    assert not Path("pwned").exists() and not (Path.home() / "pwned").exists()
    figures.add("bad input", "cases_end_to_end")
    figures.add("bad input", f"exit_code_{case.code}")
    figures.record("bad input", cases_in_test_config=config_case_count(), tracebacks=0, failures=0)
