"""The one place that starts processes: argv lists only, a process group per child.

Each child leads its own process group so that a timeout or an interrupt can kill
everything it started (test helpers, subprocesses it leaked), not just the child itself.

On Linux each child also gets a parent-death signal, set between fork and exec: a SIGKILL
of this process (nobody left to kill the groups) kills the child at once, at any moment of
its life, before any code of its own (a plugin watching its parent) has had a chance to run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

GRACE_SECONDS = 3.0
#: the pid of the process that started a child, for a child that watches its parent
PARENT_PID_VAR = "CONDAMATRIX_PARENT_PID"
_PR_SET_PDEATHSIG = 1

# The kernel sends the parent-death signal when the *thread* that forked ends, not the
# process: children are forked from one thread that lives as long as the process, never
# from the caller's thread (the runner's cell threads come and go).
_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    output: IO[bytes],
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (and so a new process group), output to ``output``.

    The child dies with this process (see the module's docstring).
    """
    environ = {**env, PARENT_PID_VAR: str(os.getpid())}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            env=environ,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            # only a prctl and a getppid between fork and exec: safe with threads
            preexec_fn=_die_with(os.getpid()),
        )

    return _spawning_thread().submit(start).result()


def _spawning_thread() -> ThreadPoolExecutor:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="condamatrix-spawn")
        return _spawner


def _die_with(parent: int) -> Callable[[], None] | None:
    """A pre-exec step that makes the child get SIGKILL when ``parent`` dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    sigkill = int(signal.SIGKILL)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return set_parent_death_signal


def kill_group(proc: subprocess.Popen[bytes], *, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after ``grace`` seconds."""
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    reap_group(proc)


def reap_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process left in the child's group (it leads the group, so pgid == pid)."""
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short helper command and capture its output (never through a shell)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
