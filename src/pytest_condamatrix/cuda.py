"""CUDA variants at run time: is there a driver here, and may a cell use it?

Solving never needs a GPU (engines solve CUDA cells with ``__cuda`` set to the variant);
running does. Detection goes through rattler, which reads the driver library and honours
``CONDA_OVERRIDE_CUDA`` as conda does; ``CUDA_VISIBLE_DEVICES=""`` hides every GPU.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import EnvBuildError


@dataclass(frozen=True)
class GpuDecision:
    """Whether a cell runs, and whether its ``gpu`` tests may use the GPU."""

    run: bool
    gpu: bool
    reason: str = ""


def detect_driver() -> str | None:
    """The CUDA version the installed driver supports (e.g. ``"12.4"``), or None."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return None
    override = os.environ.get("CONDA_OVERRIDE_CUDA")
    if override is not None:
        return override.strip() or None  # an empty override means "no CUDA", as in conda
    import rattler

    for vp in rattler.VirtualPackage.detect():
        generic = vp.into_generic()
        if generic.name.normalized == "__cuda":
            return str(generic.version)
    return None


@dataclass(frozen=True)
class SolvedPackage:
    """The parts of a solved record that the CUDA-leak check needs (engine-neutral)."""

    name: str
    version: str
    build: str
    depends: tuple[str, ...] = ()


def is_cuda_package(name: str, build: str) -> bool:
    """conda-forge's and NVIDIA's naming: cuda-*, cudatoolkit, *-cuda, or a CUDA build string."""
    return (
        name.startswith("cuda-")
        or name in ("cudatoolkit", "cudnn", "nccl")
        or name.endswith("-cuda")
        or "cuda" in build.lower()
    )


def _dep_name(spec: str) -> str:
    return re.split(r"[\s=<>!~\[]", spec.strip(), maxsplit=1)[0].lower()


def cuda_leaks(specs: Sequence[str], solved: Iterable[SolvedPackage]) -> dict[str, list[str]]:
    """CUDA packages in a solution, each with the requested specs whose dependencies pull it in."""
    by_name = {p.name: p for p in solved}
    leaks = [p for p in by_name.values() if is_cuda_package(p.name, p.build)]
    out: dict[str, list[str]] = {}
    for leak in leaks:
        label = f"{leak.name}={leak.version}={leak.build}"
        out[label] = [spec for spec in specs if leak.name in _closure(_dep_name(spec), by_name)]
    return out


def ensure_cpu_only(cell_id: str, specs: Sequence[str], solved: Iterable[SolvedPackage]) -> None:
    """A CPU cell must not contain CUDA packages: name them and the specs that pulled them in."""
    leaks = cuda_leaks(specs, solved)
    if not leaks:
        return
    lines = [
        f"{package} (pulled in by {', '.join(repr(s) for s in by) or 'an unknown spec'})"
        for package, by in leaks.items()
    ]
    raise EnvBuildError(
        f"the CPU cell {cell_id} would contain CUDA packages: " + "; ".join(lines),
        hint="keep CUDA-only specs out of CPU cells: move them under [cuda-variants.X] "
        "dependencies, or exclude the CPU cell; pin a CPU build (e.g. 'pkg * cpu*') otherwise",
    )


def _closure(root: str, by_name: dict[str, SolvedPackage]) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        todo.extend(_dep_name(d) for d in by_name[name].depends)
    return seen


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def decide(
    variant: str, driver: str | None, policy: str, *, require_gpu: bool = False
) -> GpuDecision:
    """Apply the configured ``cuda-policy`` to a cell of ``variant`` on a host with ``driver``.

    ``require_gpu`` (for GPU runners) turns every "cannot use the GPU here" into a failure,
    so that a broken driver cannot hide behind skipped cells or skipped tests.
    """
    if variant == "cpu":
        return GpuDecision(run=True, gpu=False, reason="CPU cell")
    if driver is None:
        problem = "no NVIDIA driver found"
    elif _version_tuple(driver) < _version_tuple(variant):
        problem = f"driver supports CUDA {driver}, older than {variant}"
    else:
        return GpuDecision(run=True, gpu=True)
    if require_gpu:
        return GpuDecision(
            run=False,
            gpu=False,
            reason=f"a GPU is required (--conda-matrix-require-gpu): {problem}",
        )
    if policy == "cpu-tests":
        return GpuDecision(run=True, gpu=False, reason=problem)
    if policy == "fail":
        return GpuDecision(run=False, gpu=False, reason=f"cannot run here: {problem}")
    return GpuDecision(run=False, gpu=False, reason=f"built, not run here: {problem}")
