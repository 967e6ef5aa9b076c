"""A CPU cell's env holds no CUDA package: found in the solution, named with the specs that
pulled each one in, before anything is installed (engine-neutral: each engine hands its
solution over as :class:`SolvedPackage`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import EnvBuildError


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
