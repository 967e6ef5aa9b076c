"""Which live processes run from an env: a rebuild must not pull an env from under them.

Runs that test in an env hold its read lock, so a rebuild waits for them; a process left
behind by a killed run holds no lock any more, and only ``/proc`` still tells that it runs
the env's interpreter. Processes of other users may hide their executable: those are missed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: how long a rebuild waits for the processes still running from the old env to end
WAIT_SECONDS = 10.0


def users_of(prefix: Path) -> list[int]:
    """Pids of live processes (not this one) whose executable lies inside ``prefix``."""
    inside = os.path.realpath(prefix) + os.sep
    found = []
    try:
        entries = [entry.name for entry in Path("/proc").iterdir()]
    except OSError:  # no procfs (macOS): nothing to go by
        return []
    for name in entries:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            exe = str(Path(f"/proc/{name}/exe").readlink())
        except OSError:  # gone, a kernel thread, or another user's
            continue
        if exe.startswith(inside) and not _is_zombie(name):
            found.append(int(name))
    return sorted(found)


def wait_until_unused(prefix: Path, timeout: float = WAIT_SECONDS) -> list[int]:
    """Wait up to ``timeout`` s for every process running from ``prefix`` to end; who is left."""
    deadline = time.monotonic() + timeout
    while True:
        users = users_of(prefix)
        if not users or time.monotonic() >= deadline:
            return users
        time.sleep(0.1)


def _is_zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
