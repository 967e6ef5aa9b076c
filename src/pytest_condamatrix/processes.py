"""The one place that starts processes: argv lists only, never a shell of ours.

Three ways to start one: :func:`run` a short helper and capture its output (or
:func:`run_bytes`); :func:`spawn` a cell's pytest (or an env build) in the background, in a
process group of its own; :func:`foreground` a command the user watches (a shell in a cell,
the demo's run), in the terminal's group. What a child must not inherit from this process's
environment is named here once (:func:`child_environ`).

Each spawned child leads its own process group so that a timeout or an interrupt can kill
everything it started (test helpers, subprocesses it leaked), not just the child itself.

A SIGKILL of this process leaves nobody to kill those groups, at any moment of a child's
life (before its own code could watch its parent). Two things cover it: on Linux each child
gets a parent-death signal (SIGKILL), set between fork and exec; and one small watchdog
process per run, told each child's group, reads a pipe that only this process can write:
when this process dies, the pipe ends and the watchdog kills every group still registered
(the parent-death signal ends only the child, not what its tests started).
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
from typing import IO, TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from Python 3.11

GRACE_SECONDS = 3.0
#: the outer Python's own variables: another interpreter (a cell's, a build backend's, pip's)
#: would import this one's packages or stdlib through them
PYTHON_VARS = ("PYTHONHOME", "PYTHONPATH")
#: those, and the variables that name the outer env: a cell's processes must not see them
OUTER_ENV_VARS = (*PYTHON_VARS, "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV")
#: the pid of the process that started a child, for a child that watches its parent
PARENT_PID_VAR = "CONDAMATRIX_PARENT_PID"
_PR_SET_PDEATHSIG = 1

# The kernel sends the parent-death signal when the *thread* that forked ends, not the
# process: children are forked from one thread that lives as long as the process, never
# from the caller's thread (the runner's cell threads come and go).
_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def child_environ(
    base: Mapping[str, str] | None = None, *, drop: Sequence[str] = PYTHON_VARS
) -> dict[str, str]:
    """``base`` (this process's environment by default) without the variables ``drop``."""
    return {k: v for k, v in (os.environ if base is None else base).items() if k not in drop}


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

    proc = _spawning_thread().submit(start).result()
    _watchdog.register(proc.pid)
    return proc


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
    _watchdog.forget(proc.pid)


# Reads "+ <pgid> <start time>" and "- <pgid>" lines until the pipe ends, then kills the
# groups left, unless their leader's pid now belongs to another process (its start time
# differs). Standard library only, started with -I -S: it costs ~20 ms once per run.
_WATCHDOG = r"""
import os, signal
groups, rest = {}, b""
while True:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    *lines, rest = (rest + chunk).split(b"\n")
    for line in lines:
        words = line.split()
        if len(words) == 3 and words[0] == b"+":
            groups[int(words[1])] = words[2]
        elif len(words) == 2:
            groups.pop(int(words[1]), None)
for pgid, start in groups.items():
    try:
        with open("/proc/%d/stat" % pgid, "rb") as fh:
            now = fh.read().rsplit(b")", 1)[1].split()[19]
    except (OSError, IndexError):
        now = start  # gone (or no /proc): its group may live on, and no pid is reused for it
    if now == start:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
"""


class _Watchdog:
    """The run's watchdog process (started with the first child) and its pipe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._write = -1
        self._failed = False
        self._proc: subprocess.Popen[bytes] | None = None

    def register(self, pid: int) -> None:
        self._send(f"+ {pid} {_start_time(pid)}\n")

    def forget(self, pid: int) -> None:
        self._send(f"- {pid}\n")

    def _send(self, line: str) -> None:
        with self._lock:
            if self._write < 0 and not self._failed:
                self._start()
            if self._write >= 0:
                with contextlib.suppress(OSError):  # it died: the death signal still holds
                    os.write(self._write, line.encode())

    def _start(self) -> None:
        read, write = os.pipe()  # both ends close-on-exec: no child but the watchdog holds one
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of the groups it guards
            )
        except OSError:
            os.close(write)
            self._failed = True
        else:
            self._write = write
        finally:
            os.close(read)


def _start_time(pid: int) -> str:
    """The process's start time (field 22 of /proc/<pid>/stat): with the pid, an identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:  # noqa: PTH123
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "-"


_watchdog = _Watchdog()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Where(TypedDict, total=False):
    """Where a helper runs: its folder, its environment (this process's by default, see
    child_environ) and how long it may take."""

    cwd: Path | None
    env: Mapping[str, str] | None
    timeout: float | None


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    **where: Unpack[_Where],
) -> subprocess.CompletedProcess[str]:
    """Run a short helper command and capture its output (never through a shell).

    Its stdin is ``input``, or nothing: a helper whose output nobody sees must not wait for
    the terminal.
    """
    return _captured(argv, where, input, text=True)


def run_bytes(argv: Sequence[str], **where: Unpack[_Where]) -> subprocess.CompletedProcess[bytes]:
    """:func:`run`, the output left as bytes (file names; text of unknown encoding)."""
    return _captured(argv, where, None, text=False)


def _captured(
    argv: Sequence[str], where: _Where, input: str | None, *, text: bool
) -> subprocess.CompletedProcess[Any]:
    env = where.get("env")
    return subprocess.run(
        list(argv),
        cwd=where.get("cwd"),
        env=None if env is None else dict(env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=text,
        timeout=where.get("timeout"),
        check=False,
    )


def foreground(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Run a command the user watches, with the terminal as it is, and wait for it.

    It stays in the terminal's process group (Ctrl-C reaches it, and it decides) and dies
    with this process (the parent-death signal) rather than outlive it on the terminal.
    Returns its exit code (negative: ended by that signal); a missing command raises
    FileNotFoundError.
    """
    with subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        preexec_fn=_die_with(os.getpid()),
    ) as proc:
        try:
            return proc.wait()
        except BaseException:  # as subprocess.call: an interrupted wait ends the command
            proc.kill()
            raise
