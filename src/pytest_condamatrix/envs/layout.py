"""Every name in the cache folder, and the patterns that read those names back.

Layout under the cache root::

    CACHEDIR.TAG                marks the folder as a cache for backup tools
    envs/<cell>-<hash8>/         finished environments (immutable once their stamp exists)
    locks/<cell>-<hash8>.lock    one read-write lock per env: readers test in it, writers build it
    locks/<cell>-<hash8>.used    touched by every run that uses the env (its last-use time)
    tmp/<env>.<pid>.<uuid8>      builds in progress; never read as envs
    trash/<env>.<uuid8>          envs (and package entries) being deleted
    pkgs/, repodata/             the engine's package and repodata caches
    runs/<date>-<time>-<pid>/    one folder per run: its logs and its copy of the worker
    projects/<hash16>.json       per project, the env each cell used last
    host/<uid>-<hash32>.json     per user, the machine's platform and virtual packages, per boot

The names are made here and parsed back here, so that a build, a run and ``cache prune``
can never disagree on what a folder is. Other parts keep folders of their own beside these
(``timings/`` of the run, ``project-wheels/`` and ``build-envs/`` of the install,
``channels/`` of the demo); ``cache prune`` counts them under "other" and leaves them alone.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

#: folders made when a cache is first used
SUBFOLDERS = ("envs", "locks", "tmp", "trash", "pkgs", "runs")
CACHEDIR_TAG_NAME = "CACHEDIR.TAG"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-condamatrix.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
#: run folders (logs, worker copies) kept, newest first; runs still going are kept too
KEEP_RUNS = 20

ENV_NAME = re.compile(r"(?P<cell>.+)-(?P<hash>[0-9a-f]{8})")
#: tmp/<env>.<pid>.<uuid8> (builds) and trash/<env>.<uuid8> (envs being deleted)
LEFTOVER_NAME = re.compile(r"(?P<env>.+?-[0-9a-f]{8})\.(?:\d+\.)?[0-9a-f]{8}")
RUN_NAME = re.compile(r"\d{8}-\d{6}-(?P<pid>\d+)")


def env_name(cell_id: str, key: str) -> str:
    """The folder name of the env of ``cell_id`` with content key ``key``."""
    return f"{cell_id}-{key[:8]}"


def cell_env_names(cell_id: str) -> re.Pattern[str]:
    """Matches the folder names of every env of ``cell_id``, whatever its key."""
    return re.compile(re.escape(cell_id) + r"-[0-9a-f]{8}")


def package_cache(root: Path) -> Path:
    return root / "pkgs"


def repodata_cache(root: Path) -> Path:
    return root / "repodata"


def host_dir(root: Path) -> Path:
    """Where each user keeps what was detected of this machine (see envs/host.py)."""
    return root / "host"


def env_dir(root: Path, name: str) -> Path:
    return root / "envs" / name


def lock_file(root: Path, name: str) -> Path:
    return root / "locks" / f"{name}.lock"


def used_file(root: Path, name: str) -> Path:
    # Last-use time for pruning lives beside the lock: envs stay untouched once stamped.
    return root / "locks" / f"{name}.used"


def build_dir(root: Path, name: str) -> Path:
    """A fresh folder name under tmp/ for one build of the env ``name``."""
    return root / "tmp" / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def trash_dir(root: Path, name: str) -> Path:
    """A fresh name under trash/ for ``name``, renamed there before it is deleted."""
    return root / "trash" / f"{name}.{uuid.uuid4().hex[:8]}"


def leftovers_of(root: Path, name: str) -> list[Path]:
    """What killed builds or deletions of the env ``name`` left in tmp/ and trash/."""
    return [entry for folder in ("tmp", "trash") for entry in (root / folder).glob(f"{name}.*")]


def project_file(root: Path, name: str) -> Path:
    return root / "projects" / f"{name}.json"


def new_run_dir(root: Path) -> Path:
    """Make this run's folder under runs/, and remove old ones beyond the newest KEEP_RUNS."""
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    old = sorted(p for p in runs.iterdir() if p.is_dir())
    for stale in old[:-KEEP_RUNS]:
        # Never the folder of a run still going (it holds that run's worker and logs): a long
        # run outlives the newest KEEP_RUNS ones when many runs share the cache.
        if not run_is_live(stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    run_dir = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir()
    return run_dir


def run_is_live(name: str) -> bool:
    """Whether the run that made ``runs/<name>`` (``<date>-<time>-<pid>``) is still going."""
    match = RUN_NAME.fullmatch(name)
    return match is not None and pid_alive(int(match["pid"]))


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid at all: leave its folder alone
    return True
