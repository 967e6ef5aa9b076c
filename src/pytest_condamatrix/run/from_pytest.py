"""``pytest --conda-matrix``: the outer pytest's options as a session's, and pytest's own
header and path checks before the matrix runs."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from .. import validate
from ..errors import ExitCode, UsageError
from ..options import CELL_ONLY_OPTIONS, strip_matrix_args
from ..report.terminal import make_console
from .session import SessionOptions, run_session


def run_from_pytest(config: pytest.Config) -> ExitCode:
    def path(name: str) -> Path | None:
        value = config.getoption(name)
        option = "--" + name.replace("_", "-")
        return None if value is None else validate.check_path(value, option)

    def jobs_option(name: str) -> int | None:
        value = config.getoption(name)
        option = "--" + name.replace("_", "-")
        return None if value is None else validate.check_jobs(value, option)

    jobs = jobs_option("conda_matrix_jobs")
    gpu_jobs = jobs_option("conda_matrix_gpu_jobs")
    for channel in config.getoption("conda_matrix_channel"):
        validate.check_path(channel, "--conda-matrix-channel")
    timeout = config.getoption("conda_matrix_timeout")
    if timeout is not None and not 0 < timeout < float("inf"):  # nan and inf too
        raise UsageError(f"--conda-matrix-timeout {timeout}: give a positive number of seconds")
    options = SessionOptions(
        cwd=config.invocation_params.dir,
        config_path=path("conda_matrix_config"),
        engine=config.getoption("conda_matrix_engine"),
        install=config.getoption("conda_matrix_install"),
        select=tuple(config.getoption("conda_matrix_select")),
        jobs=jobs,
        gpu_jobs=gpu_jobs,
        rebuild=bool(config.getoption("conda_matrix_rebuild")),
        require_gpu=bool(config.getoption("conda_matrix_require_gpu")),
        locked=bool(config.getoption("conda_matrix_locked")),
        cache_dir=path("conda_matrix_cache_dir"),
        json_path=path("conda_matrix_json"),
        junit_path=path("conda_matrix_junit") or _pytest_junit(config),
        markdown_path=path("conda_matrix_markdown"),
        channels=tuple(config.getoption("conda_matrix_channel")),
        timeout=timeout,
        list_only=bool(config.getoption("conda_matrix_list")),
        pytest_args=tuple(strip_matrix_args(config.invocation_params.args)),
        verbosity=int(config.getoption("verbose")),
        maxfail=int(config.getoption("maxfail") or 0),
        collect_only=bool(config.getoption("collectonly")),
        reportchars=_reportchars(config),
        cell_caches=not config.pluginmanager.is_blocked("cacheprovider"),
    )
    if not options.list_only:
        check_test_paths(config)
        print_pytest_header(config)
    console = make_console(color=config.getoption("color", "auto"))
    return run_session(options, console, pytest_config=config)


def _reportchars(config: pytest.Config) -> str:
    try:
        from _pytest.terminal import getreportopt

        return getreportopt(config)
    except Exception:  # a pytest whose internals moved: pytest's default
        return "fE"


def print_pytest_header(config: pytest.Config) -> None:
    """pytest's usual header (platform, rootdir, configfile, plugins) before the matrix's."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0 or config.getoption("no_header", False):
        return
    import pluggy

    reporter.write_sep("=", "test session starts", bold=True)
    reporter.write_line(
        f"platform {sys.platform} -- Python {platform.python_version()}, "
        f"pytest-{pytest.__version__}, pluggy-{pluggy.__version__}"
    )
    lines = config.hook.pytest_report_header(config=config, start_path=config.invocation_params.dir)
    for line_or_lines in reversed(lines):  # as pytest prints them: the last plugin's first
        for line in [line_or_lines] if isinstance(line_or_lines, str) else line_or_lines:
            reporter.write_line(line)
    reporter.flush()  # before the matrix's own lines, which go through another writer


def check_test_paths(config: pytest.Config) -> None:
    """A path that does not exist is pytest's usage error, said once, not once per cell."""
    if config.stash.get(CELL_ONLY_OPTIONS, None):
        return  # their values, if any, look like paths to the outer run: the cells will see
    if config.getoption("pyargs", False) or config.args_source != pytest.Config.ArgsSource.ARGS:
        return
    base = config.invocation_params.dir
    for arg in config.args:
        path = arg.split("::", 1)[0]
        if path and not (base / path).exists():
            raise UsageError(f"file or directory not found: {arg}")


def _pytest_junit(config: pytest.Config) -> Path | None:
    value = getattr(config.option, "xmlpath", None)
    return Path(value) if value else None
