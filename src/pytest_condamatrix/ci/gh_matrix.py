"""``condamatrix gh-matrix``: the configured cells as a GitHub Actions ``strategy.matrix``.

One job per cell, so the matrix in the workflow is never copied by hand from the config.
Each entry carries the cell's runner labels (``runners`` in the config) and a cache key.

The cache key is computed in the job that runs ``gh-matrix``, which is usually not the
machine that builds the env (a GPU cell runs on a self-hosted runner), so ``cache-key`` only
hashes what the configuration decides: the env's specs, channels (and local channels'
index), environment file, lock, engine name, platform, tool version and runner labels. What
the building machine adds (its glibc, CPU microarchitecture, engine version and cache
folder: an env built for one is not usable on another, and envs are not relocatable) is
``gh-matrix --host-key``, run in the test job and appended to ``cache-key`` by the workflow
templates.

Both take the pytest arguments of the test job after ``--``: a channel or engine given there
(``--conda-matrix-channel``, ``--conda-matrix-engine``) decides the env as much as the
configuration does. A local channel is often built in the test job itself, so the matrix job
keys it by its name, and the host key by the content of its index, read where it is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .. import __version__
from ..config import DEFAULT_GPU, MatrixConfig, find_config_file
from ..envs import host
from ..envs.engines import make_engine
from ..envs.lock import MatrixLock
from ..envs.spec import make_spec
from ..errors import ExitCode, UsageError
from ..matrix import SAFE_ID, Cell, build_cells, select_cells
from ..options import parse_known
from ..run.session import SessionOptions, cache_root, load_lock, load_matrix

#: GitHub runs at most this many jobs from one matrix
MAX_JOBS = 256
KEY_PREFIX = "condamatrix"


class GitHubMatrixError(UsageError):
    """The selected cells break one of GitHub's rules for a job matrix."""


@dataclass(frozen=True)
class MatrixEntry:
    """One job of the GitHub matrix: one cell."""

    cell: str
    python: str
    cuda: str
    runs_on: tuple[str, ...]
    cache_key: str

    def to_json(self) -> dict[str, Any]:
        labels: str | list[str] = self.runs_on[0] if len(self.runs_on) == 1 else list(self.runs_on)
        return {
            "cell": self.cell,
            "python": self.python,
            "cuda": self.cuda,
            "runs-on": labels,
            "cache-key": self.cache_key,
        }


@dataclass(frozen=True)
class _ConfiguredEngine:
    """The engine as the configuration names it, with the one virtual package a cell decides
    itself (its ``__cuda`` override): what the building machine adds goes into --host-key
    (its other virtual packages, and its engine's version: a conda CLI differs per runner)."""

    id: str

    def virtual_packages(self, cuda: str) -> tuple[str, ...]:
        return host.cuda_override(cuda)


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _locked(lock: MatrixLock | None, cell: Cell, platform: str) -> tuple[str, ...]:
    """The cell's locked packages when the lock file still fits it, as a run would use them."""
    if lock is None:
        return ()
    return lock.identities(cell.id, cell.channels, cell.specs, platform)[0] or ()


def cell_cache_key(
    cell: Cell, config: MatrixConfig, platform: str, lock: MatrixLock | None = None
) -> str:
    """``condamatrix-<cell>-<platform>-<hash16>`` from what the configuration decides."""
    spec = make_spec(
        cell,
        _ConfiguredEngine(config.engine),
        platform,
        environment_sha=config.environment_sha,
        locked=_locked(lock, cell, platform),
    )
    inputs = spec.inputs()
    digest = _digest(
        {"tool": __version__, "env": inputs, "runs-on": list(config.runs_on(cell.cuda))}
    )
    return f"{KEY_PREFIX}-{cell.id}-{platform}-{digest}"


@dataclass(frozen=True)
class EnvArgs:
    """The options among a test job's pytest arguments that decide its envs."""

    channels: tuple[str, ...] = ()
    engine: str | None = None


def env_args(pytest_args: Sequence[str]) -> EnvArgs:
    known = parse_known(pytest_args, "--conda-matrix-channel", "--conda-matrix-engine")
    return EnvArgs(tuple(known.conda_matrix_channel), known.conda_matrix_engine)


def _overridden(config: MatrixConfig, args: EnvArgs, resolve: bool) -> MatrixConfig:
    """``config`` with the channels and engine of the pytest arguments (relative to the
    current folder, as pytest takes them). With ``resolve``, local channels become absolute
    paths; else they stay as written: in the matrix job they may not exist yet."""
    changes: dict[str, Any] = {}
    if args.channels:
        here = Path.cwd()
        changes["channels"] = tuple(
            str((here / c).resolve()) if resolve and (here / c).is_dir() else c
            for c in args.channels
        )
    if args.engine:
        changes["engine"] = args.engine
    return dataclasses.replace(config, **changes) if changes else config


def host_key(facts: dict[str, Any]) -> str:
    return f"host-{_digest(facts)}"


def build_entries(
    config: MatrixConfig,
    cells: Sequence[Cell],
    *,
    platform: str | None = None,
    runs_on: Sequence[str] = (),
) -> list[MatrixEntry]:
    lock = load_lock(config)
    if runs_on:
        config = _with_runners(config, tuple(runs_on))
    return [
        MatrixEntry(
            cell=cell.id,
            python=cell.python,
            cuda=cell.cuda,
            runs_on=config.runs_on(cell.cuda),
            cache_key=cell_cache_key(cell, config, platform or host.conda_platform(), lock),
        )
        for cell in cells
    ]


def _with_runners(config: MatrixConfig, labels: tuple[str, ...]) -> MatrixConfig:
    # Replaces the whole table, so that no per-variant entry outranks the override.
    return dataclasses.replace(config, runners={"cpu": labels, DEFAULT_GPU: labels})


def check_github_rules(entries: Sequence[MatrixEntry]) -> None:
    """GitHub's limits on a job matrix: an error here beats a workflow that fails to start."""
    if not entries:
        raise GitHubMatrixError(
            "no cell is selected: GitHub rejects an empty matrix",
            hint="check --select and the exclude rules of the configuration",
        )
    if len(entries) > MAX_JOBS:
        raise GitHubMatrixError(
            f"{len(entries)} cells are selected, but GitHub runs at most {MAX_JOBS} jobs "
            "from one matrix",
            hint="narrow the matrix with --select or exclude rules, or split it over several "
            "workflow jobs, each with its own --select",
        )
    seen: set[str] = set()
    for entry in entries:
        if entry.cell in seen:
            raise GitHubMatrixError(
                f"cell id {entry.cell!r} appears twice: job names and result files would clash",
                hint="remove the duplicate include entry from the configuration",
            )
        seen.add(entry.cell)
        if not SAFE_ID.match(entry.cell):
            raise GitHubMatrixError(
                f"cell id {entry.cell!r} cannot name an artifact or a results file",
                hint="use Python and CUDA versions made of digits and dots",
            )


def to_matrix(entries: Sequence[MatrixEntry]) -> dict[str, Any]:
    return {"include": [entry.to_json() for entry in entries]}


def _same_file(stream: TextIO, path: Path) -> bool:
    """Whether ``stream`` writes to ``path`` (``gh-matrix >> "$GITHUB_OUTPUT"``)."""
    try:
        return os.path.samestat(os.fstat(stream.fileno()), path.stat())
    except (OSError, ValueError, AttributeError):
        return False


def emit(name: str, value: str, *, plain: str, output: Path | None = None) -> None:
    """Print ``plain`` (or ``name=value`` when stdout is ``$GITHUB_OUTPUT``), write ``output``,
    and append ``name=value`` to ``$GITHUB_OUTPUT`` when it is set."""
    github_output = os.environ.get("GITHUB_OUTPUT")
    target = Path(github_output) if github_output else None
    redirected = target is not None and _same_file(sys.stdout, target)
    sys.stdout.write(f"{name}={value}\n" if redirected else plain + "\n")
    sys.stdout.flush()
    if output is not None:
        _write(output, plain + "\n", append=False)
    if target is not None and not redirected:
        _write(target, f"{name}={value}\n", append=True)


def _write(path: Path, text: str, *, append: bool) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}", hint="pick a writable path"
        ) from None


def run(args: argparse.Namespace) -> int:
    extra = env_args(args.pytest_args)
    if args.host_key:
        return print_host_key(args.config, args.output, extra)
    platform = args.platform
    if platform is not None:
        _check_platform(platform)
    for label in args.runs_on:
        if not label.strip() or label != label.strip():
            raise UsageError(
                f"--runs-on {label!r} is not a runner label", hint="e.g. --runs-on ubuntu-latest"
            )
    config, _ = load_matrix(SessionOptions(cwd=Path.cwd(), config_path=args.config))
    config = _overridden(config, extra, resolve=False)
    try:
        cells = select_cells(build_cells(config), args.select)
    except UsageError as exc:
        message = exc.message.replace("--conda-matrix-select", "--select")
        raise UsageError(message, hint=exc.hint) from None
    entries = build_entries(config, cells, platform=platform, runs_on=args.runs_on)
    check_github_rules(entries)
    text = json.dumps(to_matrix(entries), separators=(",", ":"))
    emit("matrix", text, plain=text, output=args.output)
    return int(ExitCode.OK)


def print_host_key(config_path: Path | None, output: Path | None, extra: EnvArgs) -> int:
    # The configured engine builds here: its version is a fact of this machine (no
    # configuration found means the default engine).
    engine_name = "rattler"
    channels: tuple[str, ...] = ()
    if config_path is not None or find_config_file(Path.cwd().resolve()) is not None:
        config = load_matrix(SessionOptions(cwd=Path.cwd(), config_path=config_path))[0]
        config = _overridden(config, extra, resolve=True)
        engine_name, channels = config.engine, config.channels
    root = cache_root(None)
    engine = make_engine(extra.engine or engine_name, root)
    facts = host.key_facts(engine, host.conda_platform(), root, channels)
    sys.stderr.write("host key from: " + json.dumps(facts, sort_keys=True) + "\n")
    key = host_key(facts)
    emit("host-key", key, plain=f"host-key={key}", output=output)
    return int(ExitCode.OK)


def _check_platform(platform: str) -> None:
    from rattler import Subdir

    try:
        if platform == "noarch":
            raise ValueError(platform)  # not a platform that runs anything
        Subdir(platform)
    except Exception:  # rattler raises its own ParseSubdirError
        raise UsageError(
            f"--platform {platform!r} is not a conda platform",
            hint="use a conda subdir such as linux-64, linux-aarch64, osx-arm64 or win-64",
        ) from None
