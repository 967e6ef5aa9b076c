"""``condamatrix cache list|prune|remove|dir`` on caches holding real envs.

The envs are built by ``pytest --conda-matrix`` from the local channel (real solve, real
install, hard links into the package cache), then the cache commands run as a user runs
them: ``python -m pytest_condamatrix.cli.main cache ...`` in a subprocess, so that a lock held by
the test process is another process's lock, as it would be for a concurrent run.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import ReadWriteLock

from conftest import CONDAMATRIX, run_matrix_in
from pytest_condamatrix.cli.cache_view import render_listing
from pytest_condamatrix.envs import inventory, layout, usage
from pytest_condamatrix.errors import ExitCode
from pytest_condamatrix.localchannel import LocalChannel
from pytest_condamatrix.report.terminal import make_console

DAY = 86400.0


def run_matrix(pytester: pytest.Pytester, cache: Path) -> dict[str, Any]:
    result, out = run_matrix_in(pytester, cache)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def condamatrix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONDAMATRIX, "cache", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )


def cache_json(*args: str) -> dict[str, Any]:
    result = condamatrix(*args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


PROJECT = """
[tool.condamatrix]
python = ["3.11", "3.12"]
channels = [{channel!r}]
dependencies = ["pytest"]
"""
SECOND_PY312_ENV = "include = [{python = '3.12', dependencies = ['tomli']}]\n"


@pytest.fixture(scope="module")
def built_cache(local_channel: LocalChannel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per module: py3.11-cpu and two envs of py3.12-cpu (the second adds tomli)."""
    missing = {"3.11", "3.12"} - set(local_channel.pythons)
    if missing:
        pytest.skip(f"Python {', '.join(sorted(missing))} is not on this machine")
    project = tmp_path_factory.mktemp("project")
    cache = project / "cache"
    (project / "test_things.py").write_text("def test_ok():\n    pass\n")
    for extra in ("", SECOND_PY312_ENV):
        (project / "pyproject.toml").write_text(
            PROJECT.format(channel=str(local_channel.path)) + extra
        )
        argv = [sys.executable, "-m", "pytest", "--conda-matrix", "-p", "no:cacheprovider"]
        argv += ["--conda-matrix-cache-dir", str(cache)]
        done = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((cache / "envs").iterdir())) == 3
    return cache


@pytest.fixture
def three_envs(built_cache: Path, tmp_path: Path) -> Path:
    """A copy of the built cache for one test (``cp -a`` keeps the hard links between envs
    and the package cache, so sizes and what removing frees are as in the original)."""
    cache = tmp_path / "cache"
    subprocess.run(["cp", "-a", str(built_cache), str(cache)], check=True)
    return cache


def set_last_used(cache: Path, name: str, when: float) -> None:
    os.utime(cache / "locks" / f"{name}.used", (when, when))


def env_names(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "envs").iterdir())


pytestmark = pytest.mark.integration


def test_list_shows_each_env_with_sizes_that_count_hard_links_once(three_envs: Path) -> None:
    data = cache_json("list", "--cache-dir", str(three_envs))
    assert data["root"] == str(three_envs)
    envs = data["envs"]
    assert sorted(e["cell"] for e in envs) == ["py3.11-cpu", "py3.12-cpu", "py3.12-cpu"]
    for env in envs:
        assert env["valid"] and not env["stale"]
        assert len(env["key"]) == 64 and env["name"] == f"{env['cell']}-{env['key'][:8]}"
        assert env["engine"].startswith("rattler ")
        # its files are hard links into pkgs/: removing it frees only what is its own
        assert 0 < env["frees"] < env["size"] / 4
        assert time.time() - env["last_used"] < 600 and env["built_at"] <= time.time()
    pkgs = data["package_cache"]
    assert pkgs["entries"] > 0 and pkgs["size"] > 0
    naive = sum(e["size"] for e in envs) + pkgs["size"] + data["other_size"]
    assert data["total_size"] < naive / 2  # each hard-linked file once
    du = subprocess.run(["du", "-sk", str(three_envs)], capture_output=True, text=True)
    if du.returncode == 0:
        assert abs(data["total_size"] / 1024 - int(du.stdout.split()[0])) < 64  # as du counts

    table = condamatrix("list", "--cache-dir", str(three_envs))
    assert table.returncode == 0, table.stderr
    for needle in ("py3.11-cpu", "py3.12-cpu", "pkgs/", "total", "last used", "stale"):
        assert needle in table.stdout


def test_stale_by_age_and_unfinished_builds(three_envs: Path) -> None:
    listing = inventory.scan(three_envs)
    old = listing.envs[0]
    set_last_used(three_envs, old.name, time.time() - 40 * DAY)
    (three_envs / "envs" / "py3.9-cpu-0123abcd" / "conda-meta").mkdir(parents=True)
    data = cache_json("list", "--cache-dir", str(three_envs), "--stale-days", "30")
    stale = {e["name"]: e["stale"] for e in data["envs"]}
    assert stale.pop(old.name) and stale.pop("py3.9-cpu-0123abcd")
    assert not any(stale.values())
    unfinished = next(e for e in data["envs"] if e["name"] == "py3.9-cpu-0123abcd")
    assert not unfinished["valid"] and unfinished["built_at"] is None


def test_rendered_table(three_envs: Path) -> None:
    out = io.StringIO()
    render_listing(make_console(out, width=140), inventory.scan(three_envs), time.time(), 30)
    text = out.getvalue()
    assert "env cache" in text and "hard-linked files counted once" in text
    assert text.count("py3.12-cpu") == 2 and "just now" in text


def test_prune_older_than_removes_only_old_envs_and_dry_run_nothing(three_envs: Path) -> None:
    names = env_names(three_envs)
    old = names[0]
    set_last_used(three_envs, old, time.time() - 10 * DAY)
    dry = cache_json("prune", "--cache-dir", str(three_envs), "--older-than", "7", "--dry-run")
    assert dry["dry_run"] and [a["name"] for a in dry["actions"] if a["kind"] == "env"] == [old]
    assert env_names(three_envs) == names
    result = condamatrix("prune", "--cache-dir", str(three_envs), "--older-than", "7")
    assert result.returncode == 0, result.stderr
    assert f"removed {old} (unused for 10 days)" in result.stdout
    assert env_names(three_envs) == [n for n in names if n != old]
    assert not (three_envs / "locks" / f"{old}.used").exists()
    assert not list((three_envs / "trash").iterdir())


def test_prune_max_size_removes_least_recently_used_first(three_envs: Path) -> None:
    names = env_names(three_envs)
    now = time.time()
    for age, name in enumerate(names):  # names[0] used longest ago
        set_last_used(three_envs, name, now - (3 - age) * 3600)
    total = inventory.scan(three_envs).total
    data = cache_json("prune", "--cache-dir", str(three_envs), "--max-size", "1", "--dry-run")
    assert [a["name"] for a in data["actions"] if a["kind"] == "env"] == names
    # packages no env uses any more go too: that is where the bytes are
    assert any(a["kind"] == "package" for a in data["actions"])
    assert data["size_after"] < total / 4

    # a limit the envs alone can meet: only the least recently used env goes, no package
    frees = {e.name: e.frees for e in inventory.scan(three_envs).envs}
    limit = total - frees[names[0]] // 2
    data = cache_json("prune", "--cache-dir", str(three_envs), "--max-size", str(limit))
    assert [a["name"] for a in data["actions"] if a["kind"] in ("env", "package")] == names[:1]
    assert env_names(three_envs) == names[1:]
    assert inventory.scan(three_envs).total <= limit


def test_prune_skips_an_env_whose_lock_another_run_holds(three_envs: Path) -> None:
    names = env_names(three_envs)
    held = names[1]
    lock = ReadWriteLock(three_envs / "locks" / f"{held}.lock", is_singleton=False)
    with lock.read_lock():  # as a run testing in that env holds it
        result = condamatrix("prune", "--cache-dir", str(three_envs), "--older-than", "0")
        assert result.returncode == 0, result.stderr
        assert f"{held}: in use by another run (its lock is held): skipped" in result.stdout
        assert "2 envs removed, 1 skipped" in result.stdout
        assert env_names(three_envs) == [held]
        removed = condamatrix("remove", held, "--cache-dir", str(three_envs))
        assert removed.returncode == ExitCode.CACHE_ERROR
        assert "in use by another run" in removed.stdout
        assert env_names(three_envs) == [held]
    result = condamatrix("remove", held, "--cache-dir", str(three_envs))
    assert result.returncode == 0, result.stdout + result.stderr
    assert env_names(three_envs) == []


def test_packages_are_left_alone_while_a_build_installs(three_envs: Path) -> None:
    with (three_envs / "pkgs" / ".cache.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # as rattler holds it for the whole of an install
        result = condamatrix(
            "prune", "--cache-dir", str(three_envs), "--older-than", "0", "--packages"
        )
    assert result.returncode == 0, result.stderr
    assert "the package cache is in use by a build (pkgs/.cache.lock is held)" in result.stdout
    assert env_names(three_envs) == []  # envs have their own locks: they went
    assert list((three_envs / "pkgs").glob("python-*/"))
    result = condamatrix("prune", "--cache-dir", str(three_envs), "--packages")
    assert "removed package python-" in result.stdout
    assert not list((three_envs / "pkgs").glob("python-*/"))


def test_remove_by_cell_by_key_prefix_and_unknown(three_envs: Path) -> None:
    envs = inventory.scan(three_envs).envs
    py311 = next(e for e in envs if e.cell == "py3.11-cpu")
    result = condamatrix("remove", py311.key[:10], "--cache-dir", str(three_envs))
    assert result.returncode == 0, result.stderr
    assert f"removed {py311.name}" in result.stdout
    data = cache_json("remove", "py3.12-cpu", "--cache-dir", str(three_envs))
    assert sorted(a["name"] for a in data["actions"]) == sorted(
        e.name for e in envs if e.cell == "py3.12-cpu"
    )
    assert env_names(three_envs) == []
    unknown = condamatrix("remove", "py3.8-cpu", "--cache-dir", str(three_envs))
    assert unknown.returncode == ExitCode.USAGE_ERROR
    assert "no cached env matches 'py3.8-cpu'" in unknown.stderr


def test_prune_sweeps_leftovers_and_old_runs_but_not_a_build_in_progress(
    three_envs: Path,
) -> None:
    name = env_names(three_envs)[0]
    killed_build = three_envs / "tmp" / f"{name}.12345.abcdef12"
    killed_delete = three_envs / "trash" / f"{name}.0badcafe"
    busy_build = three_envs / "tmp" / "py3.13-cpu-0123abcd.777.00ff00ff"
    for folder in (killed_build, killed_delete, busy_build):
        (folder / "lib").mkdir(parents=True)
    runs = three_envs / "runs"
    for i in range(layout.KEEP_RUNS + 3):
        # pid 1 never is a run of ours, but it is alive: use a pid that is not
        (runs / f"20200101-0000{i:02d}-999999{i:02d}").mkdir(parents=True)
    lock = ReadWriteLock(three_envs / "locks" / "py3.13-cpu-0123abcd.lock", is_singleton=False)
    with lock.write_lock():  # a build of py3.13-cpu is going on in another process
        result = condamatrix("prune", "--cache-dir", str(three_envs), "--older-than", "30")
    assert result.returncode == 0, result.stderr
    assert not killed_build.exists() and not killed_delete.exists()
    assert busy_build.exists()
    assert f"removed leftover tmp/{killed_build.name}" in result.stdout
    assert len(list(runs.iterdir())) == layout.KEEP_RUNS
    assert not (runs / "20200101-000000-99999900").exists()
    assert env_names(three_envs) != []  # the envs themselves were recent


def test_the_cache_works_after_pruning_everything(
    pytester: pytest.Pytester, three_envs: Path, local_channel: LocalChannel
) -> None:
    result = condamatrix("prune", "--cache-dir", str(three_envs), "--older-than", "0", "--packages")
    assert result.returncode == 0, result.stderr
    assert env_names(three_envs) == [] and not list((three_envs / "pkgs").glob("python-*/"))
    pytester.makepyprojecttoml(PROJECT.format(channel=str(local_channel.path)))
    pytester.makepyfile(test_things="def test_ok():\n    pass\n")
    data = run_matrix(pytester, three_envs)
    assert {c["env_status"] for c in data["cells"]} == {"built"}
    assert {c["status"] for c in data["cells"]} == {"passed"}


def test_cache_dir_resolution(tmp_path: Path) -> None:
    explicit = condamatrix("dir", "--cache-dir", str(tmp_path / "a"))
    assert explicit.stdout.strip() == str(tmp_path / "a")
    from_env = condamatrix("dir", env={"CONDAMATRIX_CACHE_DIR": str(tmp_path / "b")})
    assert from_env.stdout.strip() == str(tmp_path / "b")
    default = condamatrix("dir", env={"CONDAMATRIX_CACHE_DIR": ""})
    assert default.stdout.strip().endswith("pytest-condamatrix")
    missing = cache_json("list", "--cache-dir", str(tmp_path / "none"))
    assert missing["exists"] is False and missing["envs"] == []
    assert not (tmp_path / "none").exists()  # listing never creates the cache


@pytest.mark.parametrize(
    ("text", "size"),
    [("10G", 10 * 1024**3), ("500M", 500 * 1024**2), ("1.5GiB", 3 * 1024**3 // 2), ("2048", 2048)],
)
def test_parse_size(text: str, size: int) -> None:
    assert usage.parse_size(text) == size


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("prune", "--max-size", "lots"), "is not a size"),
        (("prune", "--older-than", "nan"), "'nan' is not a number of days"),
        (("prune", "--older-than", "inf"), "'inf' is not a number of days"),
        (("prune", "--older-than", "-1"), "'-1' is not a number of days"),
        (("prune", "--older-than", "9" * 5000), "is not a number of days"),
        (("list", "--stale-days", "NaN"), "'NaN' is not a number of days"),
        (("remove",), "the following arguments are required: CELL|KEY"),
        (("prune", "--bogus"), "unrecognised arguments: --bogus"),
        (("prune", "--cache-dir="), "--cache-dir: the path is empty"),
        (("list", "--cache-dir", " "), "--cache-dir: the path is empty"),
    ],
    ids=lambda v: "-".join(v)[:30] if isinstance(v, tuple) else "",
)
def test_bad_values_are_usage_errors(args: tuple[str, ...], words: str, tmp_path: Path) -> None:
    # argparse's own exit code is 2, which the table gives to an interrupted run
    given = any(a.startswith("--cache-dir") for a in args)
    result = condamatrix(*args, *(() if given else ("--cache-dir", str(tmp_path))))
    assert result.returncode == ExitCode.USAGE_ERROR, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "envs").exists()  # nothing was pruned with a value that means nothing
