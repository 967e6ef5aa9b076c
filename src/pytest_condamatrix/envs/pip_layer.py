"""The pip layer: pip requirements installed into a freshly built env, before its stamp.

A failing pip step fails the build (the env is never published), so a half env is never
reused. pip writes the interpreter's path into script shebangs; the env is built under a
temporary name, so those are rewritten to the final prefix before the rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import processes as command
from ..errors import EnvBuildError
from .cache import python_executable

PIP_TIMEOUT = 1800.0
OUTPUT_TAIL = 30


def install_pip_layer(
    cell_id: str, requirements: Sequence[str], prefix: Path, final_prefix: Path
) -> list[str]:
    """pip-install ``requirements`` into ``prefix``; returns ``name==version`` of what pip added."""
    if not requirements:
        return []
    python = python_executable(prefix)
    env = command.child_environ()
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    before = _freeze(python, env)
    argv = [str(python), "-m", "pip", "install", "--no-input", "--no-warn-script-location"]
    result = command.run([*argv, *requirements], env=env, timeout=PIP_TIMEOUT)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-OUTPUT_TAIL:])
        raise EnvBuildError(
            f"the pip layer of {cell_id} failed (pip install {' '.join(requirements)}):\n{tail}",
            hint="check the pip requirements; the env was not kept and will be rebuilt",
        )
    _relocate_scripts(prefix, final_prefix)
    return sorted(set(_freeze(python, env)) - set(before))


def _freeze(python: Path, env: dict[str, str]) -> list[str]:
    result = command.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], env=env, timeout=120
    )
    return [line.strip() for line in result.stdout.splitlines() if "==" in line]


def _relocate_scripts(prefix: Path, final_prefix: Path) -> None:
    old, new = str(prefix).encode(), str(final_prefix).encode()
    bin_dir = prefix / "bin"
    if not bin_dir.is_dir():
        return
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as fh:
            head = fh.read(2)
        if head != b"#!":
            continue
        data = script.read_bytes()
        if old in data:
            # replace the file rather than write through it: it may be a hard link into the
            # shared package cache
            tmp = script.with_name(script.name + ".relocating")
            tmp.write_bytes(data.replace(old, new))
            tmp.chmod(script.stat().st_mode)
            tmp.replace(script)
