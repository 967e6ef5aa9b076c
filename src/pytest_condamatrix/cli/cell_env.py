"""One cell's env, activated, for a command run by hand: the work of ``condamatrix run CELL
-- CMD``, ``condamatrix shell CELL`` and ``condamatrix env CELL`` (:mod:`.cell_shell`), which
step into one cell as ``tox -e py39 -- ...``, ``pixi run -e`` and ``conda activate`` do.

The cell's env comes from the same cache, under the same locks and with the same progress
lines as in a matrix run (built first when it is missing or stale), and is held under its
read lock while the command runs, so that no prune or rebuild removes it meanwhile. The
command sees the env activated as conda would activate it (rattler's activation: ``PATH``,
``CONDA_PREFIX`` and the env's ``etc/conda/activate.d`` scripts), the project importable as
the matrix makes it (``PYTHONPATH`` from ``pythonpath``, else ``src/``) and the
``CONDAMATRIX_*`` variables of a cell. It runs in the foreground with the terminal as it is,
so ``pdb`` and other prompts work, and its exit code is the command's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from .. import processes
from ..config import MatrixConfig
from ..envs import host
from ..envs.cache import EnvCache, EnvStatus
from ..envs.engines import make_engine
from ..envs.host import detect_driver
from ..envs.layout import host_dir
from ..errors import CondaMatrixError, UsageError
from ..install import InstallSettings, Overlay, prepare_install
from ..matrix import Cell
from ..report.terminal import ProgressPrinter, make_console
from ..results import EnvState
from ..run.cell_process import WORKER_MODULE
from ..run.cellenv import cell_variables
from ..run.gpu import GpuDecision, decide
from ..run.session import SessionOptions, cache_root, load_lock, load_matrix, locked_spec


@dataclass(frozen=True)
class CellEnv:
    cell: Cell
    status: EnvStatus
    environ: dict[str, str]  # what a command in the cell sees


def find_cell(cells: Sequence[Cell], wanted: str) -> Cell:
    import fnmatch

    exact = [c for c in cells if c.id == wanted]
    matches = exact or [c for c in cells if fnmatch.fnmatchcase(c.id, wanted)]
    if len(matches) == 1:
        return matches[0]
    ids = ", ".join(c.id for c in (matches or cells))
    if matches:
        raise UsageError(f"{wanted!r} matches {len(matches)} cells", hint=f"name one of: {ids}")
    raise UsageError(f"no cell {wanted!r} in this matrix", hint=f"cells are: {ids}")


@contextlib.contextmanager
def cell_env(
    options: SessionOptions, wanted: str, *, with_project: bool = True
) -> Iterator[CellEnv]:
    """The env of one cell, checked or built as a matrix run would, held under its read lock;
    ``with_project``: the project installed in it as a matrix run installs it."""
    config, cells = load_matrix(options)
    cell = find_cell(cells, wanted)
    console = make_console(sys.stderr)
    root = cache_root(options.cache_dir)
    cache = EnvCache(root)
    host.keep_facts_in(host_dir(root))
    lock = load_lock(config)
    engine = make_engine(options.engine or config.engine, root, lock=lock)
    spec = locked_spec(config, cell, engine, lock, console)
    progress = ProgressPrinter(console)
    with cache.use(
        spec, engine.build, on_phase=lambda phase: progress.cell_phase(cell.id, phase)
    ) as status:
        how = "reused" if status.status is EnvState.REUSED else f"built ({status.reason or 'new'})"
        console.print(Text(f"[{cell.id}] env {how}: {status.prefix}"))
        gpu = decide(cell.cuda, detect_driver() if cell.is_cuda else None, "cpu-tests")
        if cell.is_cuda and not gpu.gpu:
            console.print(Text(f"[{cell.id}] no usable GPU here: {gpu.reason}", style="yellow"))
        with tempfile.TemporaryDirectory(prefix="condamatrix-cell-") as worker_dir:
            shutil.copyfile(
                Path(__file__).parent.parent / "worker.py", Path(worker_dir) / f"{WORKER_MODULE}.py"
            )
            overlay, installed = Overlay(), False
            if with_project:  # as a matrix run installs it in this cell (wheel, editable)
                install = InstallSettings.from_config(config, options.install, root)
                overlay = prepare_install(
                    install, cell, status.prefix, status.python, status.key, Path(worker_dir)
                )
                installed = install.mode != "none"
                if overlay.note:
                    progress.cell_phase(cell.id, overlay.note)
            environ = cell_environ(
                config, cell, status.prefix, gpu, os.environ, Path(worker_dir), overlay,
                installed=installed,
            )  # fmt: skip
            yield CellEnv(cell, status, environ)


def cell_environ(
    config: MatrixConfig,
    cell: Cell,
    prefix: Path,
    gpu: GpuDecision,
    outer: Mapping[str, str],
    worker_dir: Path,
    overlay: Overlay | None = None,
    *,
    installed: bool = False,
) -> dict[str, str]:
    """A cell's variables as a matrix run sets them, then the env's activation on top.

    Any pytest started in the cell loads the matrix's worker plugin (``PYTEST_PLUGINS``), for
    what it gives a cell's tests: the ``gpu`` marker and its skips, and this plugin's hooks
    declared so that a conftest.py implementing them loads. Without the variables that a
    matrix run adds, it streams nothing and waits for nobody. The configuration's
    ``pytest-args`` reach it through ``PYTEST_ADDOPTS``.
    """
    overlay = overlay or Overlay()
    pythonpath = config.import_path(installed=installed)
    environ = cell_variables(
        cell, gpu, [str(worker_dir), *overlay.pythonpath, *map(str, pythonpath)], outer
    )
    plugins = [p for p in outer.get("PYTEST_PLUGINS", "").split(",") if p.strip()]
    environ["PYTEST_PLUGINS"] = ",".join([*plugins, WORKER_MODULE])
    if config.pytest_args:  # `pytest-args` of the configuration, as every cell's pytest has
        addopts = [shlex.join(config.pytest_args), outer.get("PYTEST_ADDOPTS", "")]
        environ["PYTEST_ADDOPTS"] = " ".join(a for a in addopts if a)
    environ = activate(prefix, environ)
    if overlay.path:  # the project's console scripts, before the env's own
        environ["PATH"] = os.pathsep.join([*overlay.path, environ.get("PATH", "")])
    # as `conda activate` names the env, for prompts and tools that show it
    environ["CONDA_DEFAULT_ENV"] = str(prefix)
    environ["CONDA_PROMPT_MODIFIER"] = f"({cell.id}) "
    return environ


def activate(prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` after the env's activation script, run as conda runs it (in a POSIX shell:
    its ``activate.d`` scripts may do anything a shell can)."""
    from rattler.shell import ActivationVariables, Shell
    from rattler.shell import activate as rattler_activate

    script = rattler_activate(prefix, ActivationVariables(None, None), Shell.bash).script
    with tempfile.TemporaryDirectory(prefix="condamatrix-activate-") as tmp:
        dump = Path(tmp) / "environ.json"
        reader = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
        full = f"{script}\nexec {shlex.quote(sys.executable)} -c {shlex.quote(reader)} {dump}\n"
        # what activation scripts print is not the command's: captured, and dropped
        done = processes.run(["bash", "--noprofile", "--norc", "-c", full], env=environ)
        if done.returncode != 0 or not dump.is_file():
            raise CondaMatrixError(
                f"activating {prefix} failed (exit code {done.returncode}): "
                f"{done.stderr.strip()[-2000:]}",
                hint="an activation script of the env failed; see its etc/conda/activate.d",
            )
        activated: dict[str, str] = json.loads(dump.read_text(encoding="utf-8"))
    activated.pop("_", None)  # bash's last command, not part of the env
    activated["PATH"] = _dedupe(activated.get("PATH", ""))
    return activated


def _dedupe(path: str) -> str:
    # rattler's script prepends the env and the current PATH to $PATH: keep first entries
    seen: dict[str, None] = {}
    for entry in path.split(os.pathsep):
        if entry:
            seen.setdefault(entry, None)
    return os.pathsep.join(seen)


def run_in_cell(cmd: Sequence[str], environ: Mapping[str, str], *, cwd: Path) -> int:
    """Run ``cmd`` in the foreground with the terminal as it is; its exit code, or 128 + N
    for a command ended by signal N (as shells say it)."""
    # Ctrl-C reaches the command too (one process group): it decides (pdb stays), and this
    # process waits for it. A handler, not SIG_IGN, which the command would inherit.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        try:
            code = processes.foreground(cmd, env=environ, cwd=cwd)
        except FileNotFoundError:
            raise UsageError(
                f"{cmd[0]!r} is not a command in the cell's env nor on PATH",
                hint="install it with the cell's dependencies, or give its full path",
            ) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code


def interactive_shell(env: CellEnv) -> int:
    shell = os.environ.get("SHELL") or "bash"
    console = make_console(sys.stderr)
    console.print(Text(f"[{env.cell.id}] a shell in {env.status.prefix}; `exit` leaves it"))
    if Path(shell).name != "bash":
        # Other shells' startup files may change PATH again; the variables are set.
        return run_in_cell([shell, "-i"], env.environ, cwd=Path.cwd())
    # bash reads ~/.bashrc (which may activate another env): the cell's variables follow it.
    with tempfile.TemporaryDirectory(prefix="condamatrix-shell-") as tmp:
        rcfile = Path(tmp) / "bashrc"
        lines = ["[ -f ~/.bashrc ] && . ~/.bashrc"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in env.environ.items() if _name_ok(k)]
        lines.append(f'PS1={shlex.quote(env.environ["CONDA_PROMPT_MODIFIER"])}"${{PS1-}}"')
        rcfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return run_in_cell([shell, "--rcfile", str(rcfile), "-i"], env.environ, cwd=Path.cwd())


def _name_ok(name: str) -> bool:
    # only names a shell can export; bash's own read-only ones stay as bash sets them
    return name.isidentifier() and name not in ("SHLVL", "PWD", "OLDPWD", "BASHOPTS", "SHELLOPTS")
