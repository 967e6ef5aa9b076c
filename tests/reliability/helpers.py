"""Start ``pytest --conda-matrix`` as a user does, and check what it leaves behind.

Every run is a real subprocess in its own session, so that a test can SIGKILL or SIGINT it
(and everything it started) like a terminal or a CI runner would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A background process of a non-interactive shell starts with SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler: put it back, so that SIGINT acts as Ctrl-C does.
PYTEST_WITH_SIGINT = (
    "import signal, sys, pytest; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.exit(pytest.console_main())"
)


@dataclass
class Run:
    """One ``pytest --conda-matrix`` process and the files it writes."""

    proc: subprocess.Popen[bytes]
    json_path: Path
    log_path: Path
    started: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the run did not end in {timeout} s:\n{self.output()}") from None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the run's whole process group, as a terminal or CI runner does."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def results(self) -> dict[str, Any]:
        return (
            json.loads(self.json_path.read_text(encoding="utf-8"))
            if self.json_path.exists()
            else {}
        )

    def cells(self) -> dict[str, dict[str, Any]]:
        return {c["cell"]: c for c in self.results().get("cells", [])}


def start_matrix(
    project: Path,
    cache: Path,
    *args: str,
    out: Path,
    name: str = "run",
    env: Mapping[str, str] | None = None,
) -> Run:
    """Start ``pytest --conda-matrix`` in ``project`` with its JSON and output under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    log_path = out / f"{name}.log"
    argv = [
        sys.executable,
        "-c",
        PYTEST_WITH_SIGINT,
        "--conda-matrix",
        "-p",
        "no:cacheprovider",
        "--conda-matrix-cache-dir",
        str(cache),
        "--conda-matrix-json",
        str(json_path),
        *args,
    ]
    environ = {**os.environ, **(env or {}), "NO_COLOR": "1", "COLUMNS": "200"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=project,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Run(proc=proc, json_path=json_path, log_path=log_path, started=time.monotonic())


def run_matrix(
    project: Path,
    cache: Path,
    *args: str,
    out: Path,
    name: str = "run",
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run the matrix to its end; the output must never hold a traceback."""
    run = start_matrix(project, cache, *args, out=out, name=name, env=env)
    run.wait(timeout)
    assert_no_traceback(run.output())
    return run


def assert_no_traceback(text: str) -> None:
    assert "Traceback (most recent call last)" not in text, text


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def build_started(cache: Path, pid: int) -> bool:
    """Whether run ``pid`` has begun building an env (its tmp/<env>.<pid>.<id> exists)."""
    return bool(list((cache / "tmp").glob(f"*.{pid}.*")))


def is_alive(pid: int) -> bool:
    """True for a running process; a zombie waiting for its reaper counts as dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line mentions ``text`` (e.g. a test's cache path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill_pids(pids: Iterable[int]) -> None:
    """End leftovers that this test started (never anything found by name alone)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def env_problems(prefix: Path) -> list[str]:
    """Why ``prefix`` is not a complete env; empty when it is.

    An oracle independent of the cache's own check: a stamp naming the folder's key, and
    every file that conda-meta says its packages installed.
    """
    problems = []
    stamp_path = prefix / "conda-meta" / "condamatrix-stamp.json"
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{prefix.name}: no readable stamp ({exc})"]
    if not isinstance(stamp, dict):
        return [f"{prefix.name}: the stamp is not a table"]
    if not str(stamp.get("key", "")).startswith(prefix.name.rsplit("-", 1)[-1]):
        problems.append(f"{prefix.name}: stamp key {stamp.get('key')!r} is not the folder's")
    records = [r for r in (prefix / "conda-meta").glob("*.json") if r != stamp_path]
    if not any(r.name.startswith("python-") for r in records):
        problems.append(f"{prefix.name}: no python package record")
    for record in records:
        for rel in json.loads(record.read_text(encoding="utf-8")).get("files", []):
            if not os.path.lexists(prefix / rel):
                problems.append(f"{prefix.name}: {rel} is missing")
    return problems


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of everything under ``root``, links not followed."""
    snapshot = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        snapshot[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return snapshot
