"""The condamatrix command: help texts, usage errors, local channels, the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONDAMATRIX
from pytest_condamatrix.cli.demo import demo_project
from pytest_condamatrix.cli.main import main
from pytest_condamatrix.errors import EnvBuildError, ExitCode, exit_code_for


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "local-channel", "list", "lock", "export"):
        assert command in out


HEAVY = ("pytest", "_pytest", "rattler", "rich")
HELP_COMMANDS = [
    ["--version"],
    ["--help"],
    *[[c, "--help"] for c in ("demo", "local-channel", "lock", "export", "list", "run")],
    *[[c, "--help"] for c in ("shell", "env", "gh-matrix", "cache", "merge", "init-ci")],
    ["cache", "prune", "--help"],
]


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=" ".join)
def test_help_and_version_import_no_heavy_package(argv: list[str]) -> None:
    """What a command needs is imported when it runs: a look at its help stays quick."""
    probe = (
        "import sys\n"
        "from pytest_condamatrix.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r})\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert "HEAVY=" in done.stderr, done.stderr
    assert done.stderr.rpartition("HEAVY=")[2] == "", done.stderr.rpartition("HEAVY=")[2]


def test_one_handler_turns_errors_into_messages_and_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """condamatrix and pytest --conda-matrix word the message each their own way."""

    def fails() -> int:
        raise EnvBuildError("no solution", hint="loosen a pin")

    def interrupted() -> int:
        raise KeyboardInterrupt

    words = {"error_prefix": "tool: error: ", "interrupted": "tool: interrupted"}
    assert exit_code_for(lambda: 0, **words) == 0
    assert exit_code_for(fails, **words) == ExitCode.ENV_ERROR
    assert exit_code_for(interrupted, **words) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == (
        "tool: error: no solution\n  hint: loosen a pin\ntool: interrupted\n"
    )


def test_unknown_arguments_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local-channel", "x", "--bogus"]) == 4
    assert "unrecognised arguments: --bogus" in capsys.readouterr().err


def test_local_channel_without_any_interpreter_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local-channel", str(tmp_path / "ch"), "--python", "3.4"]) == 6
    err = capsys.readouterr().err
    assert "Python 3.4 was not found on this machine" in err
    assert "none of Python 3.4 was found" in err


def test_list_cells(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyprojecttoml(
        "[tool.condamatrix]\npython = ['3.11', '3.12']\ncuda = ['cpu', '12.1']\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(pytester.path)
        assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == [
        "py3.11-cpu",
        "py3.11-cu12.1",
        "py3.12-cpu",
        "py3.12-cu12.1",
    ]


def test_the_demo_project_ships_with_the_package() -> None:
    assert (demo_project() / "tests" / "test_demo.py").is_file()


@pytest.mark.integration
def test_demo_runs_the_full_matrix_offline(
    local_channel: object, warm_cache: Path, tmp_path: Path
) -> None:
    """Quick-start command 1, as a user types it (its channel and envs: the tests' warm cache)."""
    argv = [
        *CONDAMATRIX,
        "demo",
        "--cache-dir",
        str(warm_cache),
    ]
    first = subprocess.run(
        [*argv, "--conda-matrix-json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "9 cells (9 passed)" in first.stdout
    assert (tmp_path / "r.json").is_file()
    second = subprocess.run([*argv, "-k", "slug"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count(" reused ") >= 9, second.stdout
