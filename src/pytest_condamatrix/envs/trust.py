"""Whether an env of a shared cache may be run, and modes that let a group share it.

A cache is *shared* when its root folder is setgid (``chmod g+s``): its group is the group
of users who share it (a GPU server's team, a CI runner's users), folders made in it inherit
that group, and every file gets the umask's mode (set ``umask 002`` to let the group reuse
what one user built). An env is run only when nobody outside that trust could have changed
it: the env folder is owned by this user, or by the cache's group in a shared cache; no
folder of it is writable by others; and its site-packages holds no ``.pth`` file (Python
runs them at start-up) that no package installed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def umask() -> int:
    """The process's umask (read by setting it: there is no other portable way)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def shared_group(root: Path) -> int | None:
    """The cache's group when the cache is shared (its root is setgid), else None."""
    try:
        info = root.stat()
    except OSError:
        return None
    return info.st_gid if info.st_mode & stat.S_ISGID else None


def problem(prefix: Path, folders: set[str], installed: set[str], group: int | None) -> str:
    """Why the env at ``prefix`` must not be run by this user; empty when it may.

    ``folders``: the env's folders that hold installed files (relative); ``installed``: the
    files its packages installed (relative).
    """
    try:
        info = prefix.lstat()
    except OSError as exc:
        return f"its folder cannot be read ({exc.strerror})"
    if info.st_uid != os.geteuid() and (group is None or info.st_gid != group):
        whose = "the cache's group" if group is not None else "you"
        return f"its folder is owned by uid {info.st_uid}, not by {whose}"
    for rel in sorted(folders | {""}):
        try:
            mode = os.lstat(f"{prefix}/{rel}" if rel else prefix).st_mode
        except OSError:
            continue  # gone: the file check says so
        if stat.S_ISDIR(mode) and mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            return f"its folder {rel or '.'} is writable by every user"
    for folder in sorted(f for f in folders if f.endswith("site-packages")):
        try:
            names = os.listdir(f"{prefix}/{folder}")  # noqa: PTH208 - names only, no Path objects
        except OSError:
            continue
        for name in sorted(names):
            if name.endswith(".pth") and f"{folder}/{name}" not in installed:
                return f"{folder}/{name} was not installed by any of its packages"
    return ""


def honour_umask(prefix: Path, mask: int) -> None:
    """Give the files the engine made private (rattler writes conda-meta records 0600) the
    mode the umask grants, so that the cache's group can read them; hard links into the
    package cache are left alone (they are the package cache's files)."""
    for folder, dirs, files in os.walk(prefix):
        for name in (*dirs, *files):
            path = os.path.join(folder, name)  # noqa: PTH118 - a walk of plain strings
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
                continue
            full = 0o777 if stat.S_ISDIR(info.st_mode) or info.st_mode & 0o111 else 0o666
            wanted = full & ~mask
            current = stat.S_IMODE(info.st_mode)
            if current & 0o777 != wanted and not current & ~0o777:
                os.chmod(path, wanted)  # noqa: PTH101
