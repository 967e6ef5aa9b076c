"""A cache shared by a group of users: one user's env is reused by the others, and an env
that someone outside the trust could have changed is never run.

The two-user scenario creates two real Unix users and a group (root only; skipped with the
reason elsewhere), makes a setgid cache root owned by the group, and runs the cache as each
user in a forked child (setgid, setuid, umask 002): the interpreter is already loaded, so
the users need no access to it. The builder writes its package record with mode 0600, as
rattler does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.envs.spec import EnvSpec

from .conftest import Figures

SPEC = EnvSpec("py3.12-cpu", "fake", "linux-64", ("chan",), ("python 3.12.*",), ())
SITE = "lib/python3.12/site-packages"


def builder(spec: EnvSpec, prefix: Path, final: Path) -> list[str]:
    """A small env whose package record is private (0600), as rattler writes them."""
    (prefix / SITE / "pkg").mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").write_text("#!/bin/sh\n")
    (prefix / SITE / "pkg" / "__init__.py").write_text("")
    (prefix / SITE / "pkg.pth").write_text("")  # a .pth a package installs is fine
    (prefix / "conda-meta").mkdir()
    paths = ["bin/python", f"{SITE}/pkg/__init__.py", f"{SITE}/pkg.pth"]
    record = prefix / "conda-meta" / "pkg-1.0-0.json"
    fd = os.open(record, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({"name": "pkg", "files": paths}).encode())
    os.close(fd)
    return ["pkg=1.0=0"]


def as_user(uid: int, gid: int, action: Callable[[], str]) -> str:
    """Run ``action`` in a forked child as ``uid``:``gid`` with umask 002; its result."""
    for module in ("ctypes", "ctypes.util", "sqlite3", "uuid"):  # imported lazily on the way
        __import__(module)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            os.umask(0o002)
            try:
                out = action()
            except BaseException as exc:  # report it to the parent, whatever it is
                out = f"error: {type(exc).__name__}: {exc}"
            os.write(write, out.encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def use(root: Path) -> Callable[[], str]:
    def action() -> str:
        with EnvCache(root).use(SPEC, builder) as env:
            return f"{env.status}: {env.reason}"

    return action


@contextlib.contextmanager
def two_users() -> Iterator[tuple[int, int, int]]:
    """(gid, uid of a, uid of b): two new users in one new group, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating two Unix users needs root")
    if not (shutil.which("useradd") and shutil.which("groupadd")):
        pytest.skip("no useradd/groupadd on this machine")
    tag = secrets.token_hex(3)
    group, users = f"cmxg{tag}", [f"cmxa{tag}", f"cmxb{tag}"]
    made: list[list[str]] = []
    try:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        made.append(["groupdel", group])
        for user in users:
            subprocess.run(
                ["useradd", "-M", "-N", "-g", group, "-s", "/usr/sbin/nologin", user],
                check=True,
                capture_output=True,
            )
            made.append(["userdel", user])
        import grp
        import pwd

        yield (
            grp.getgrnam(group).gr_gid,
            pwd.getpwnam(users[0]).pw_uid,
            pwd.getpwnam(users[1]).pw_uid,
        )
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create users here: {exc.stderr.decode(errors='replace').strip()}")
    finally:
        for argv in reversed(made):
            subprocess.run(argv, check=False, capture_output=True)


def shared_root(base: Path, gid: int) -> Path:
    base.mkdir(mode=0o755)
    base.chmod(0o755)  # pytest's tmp_path is 0700: the users must get in
    for parent in base.parents:
        if parent == Path("/tmp") or not stat.S_IMODE(parent.stat().st_mode) & 0o001:
            parent.chmod(parent.stat().st_mode | 0o011) if parent != Path("/tmp") else None
        if parent == Path("/tmp"):
            break
    root = base / "cache"
    root.mkdir()
    os.chown(root, -1, gid)
    root.chmod(0o2775)  # group-owned and setgid: folders made in it keep the group
    return root


def test_two_users_share_a_cache_and_nothing_untrusted_is_run(
    tmp_path_factory: pytest.TempPathFactory, figures: Figures
) -> None:
    with two_users() as (gid, alice, bob):
        base = Path(f"/tmp/condamatrix-shared-{secrets.token_hex(4)}")
        try:
            root = shared_root(base, gid)
            assert as_user(alice, gid, use(root)) == "built: new"
            # bob reuses what alice built: her records were 0600 before the build fixed them
            assert as_user(bob, gid, use(root)) == "reused: "
            prefix = next((root / "envs").iterdir())
            record = prefix / "conda-meta" / "pkg-1.0-0.json"
            assert stat.S_IMODE(record.stat().st_mode) == 0o664
            assert prefix.stat().st_gid == gid

            # a .pth that no package installed, planted by a member of the group
            def plant() -> str:
                (prefix / SITE / "evil.pth").write_text("import os\n")
                return "planted"

            assert as_user(bob, gid, plant) == "planted"
            result = as_user(alice, gid, use(root))
            assert result.startswith("built: untrusted env: "), result
            assert f"{SITE}/evil.pth was not installed by any of its packages" in result
            assert not (prefix / SITE / "evil.pth").exists()

            # a folder of the env anybody may write to
            prefix = next((root / "envs").iterdir())
            (prefix / SITE).chmod(0o777)
            result = as_user(bob, gid, use(root))
            assert f"its folder {SITE} is writable by every user" in result, result
            figures.record(
                "shared cache",
                users=2,
                reused_across_users=1,
                untrusted_refused=2,
                failures=0,
            )
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_an_env_owned_by_someone_outside_the_cache_is_not_run(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    cache = EnvCache(tmp_path / "cache")
    with cache.use(SPEC, builder) as env:
        assert env.status == "built"
    os.chown(env.prefix, 65534, 65534)  # nobody:nogroup; the cache is not shared (no setgid)
    with cache.use(SPEC, builder) as again:
        assert again.status == "built"
        assert "untrusted env: its folder is owned by uid 65534, not by you" in again.reason
