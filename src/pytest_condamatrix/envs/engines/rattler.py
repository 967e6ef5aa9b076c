"""The embedded engine: py-rattler's solver and installer, no conda needed."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ...errors import EnvBuildError
from .. import host, solve_errors
from ..cpu_only import SolvedPackage, ensure_cpu_only
from ..lock import MatrixLock
from ..pip_layer import install_pip_layer
from ..solve_errors import unmatched_specs
from ..spec import EnvSpec

if TYPE_CHECKING:  # rattler itself is imported when an env is solved or installed
    import rattler
    from rattler import GenericVirtualPackage

T = TypeVar("T")


class RattlerEngine:
    """Solve with resolvo and install from a shared, hard-linked package cache."""

    def __init__(
        self, package_cache: Path, repodata_cache: Path, lock: MatrixLock | None = None
    ) -> None:
        self.package_cache = package_cache
        self.repodata_cache = repodata_cache
        self.lock = lock
        self.id = f"rattler {host.rattler_version()}"
        self.platform = host.conda_platform()
        self._gateway: rattler.Gateway | None = None

    def virtual_packages(self, cuda: str) -> tuple[str, ...]:
        return host.virtual_packages(cuda)

    def _solve_packages(self, spec: EnvSpec) -> list[GenericVirtualPackage]:
        from rattler import BuildString, GenericVirtualPackage, PackageName, Version

        by_name = {vp.name.normalized: vp for vp in host.detected_packages()}
        out = []
        for entry in spec.virtual_packages:
            name, _, rest = entry.partition("=")
            if name in by_name and not rest:
                out.append(by_name[name])
                continue
            version, _, build = rest.partition("=")
            out.append(
                GenericVirtualPackage(
                    PackageName(name), Version(version), BuildString(build or "0")
                )
            )
        return out

    def solve(self, spec: EnvSpec) -> list[rattler.RepoDataRecord]:
        import rattler
        from rattler import Subdir

        if self._gateway is None:  # one per engine: making one costs ~25 ms, each solve reuses it
            self._gateway = rattler.Gateway(cache_dir=self.repodata_cache)
        gateway = self._gateway
        channels = [rattler.Channel(c) for c in spec.channels]
        try:
            return _run_async(
                rattler.solve(
                    sources=channels,
                    # lenient parsing, as conda: environment files say name=version=build
                    specs=[rattler.MatchSpec(s, strict=False) for s in spec.specs],
                    gateway=gateway,
                    platforms=[Subdir(spec.platform), Subdir("noarch")],
                    virtual_packages=self._solve_packages(spec),
                    timestamp_policy="allow-missing",
                )
            )
        except Exception as exc:  # rattler raises SolverError, GatewayError, ... with good text
            platforms = [Subdir(spec.platform), Subdir("noarch")]
            raise solve_errors.explain(
                spec.cell_id, spec.specs, spec.channels, exc,
                lambda: _run_async(unmatched_specs(gateway, channels, platforms, spec.specs)),
                _first_lines(exc), spec.environment_file,
            ) from None  # fmt: skip

    def records_for(self, spec: EnvSpec) -> list[rattler.RepoDataRecord]:
        """The packages of the env: exactly the locked ones when a lock pins it, else solved."""
        if spec.locked and self.lock is not None:
            locked = self.lock.records(spec.cell_id, spec.platform)
            if locked is not None:
                return locked
        return self.solve(spec)

    def build(self, spec: EnvSpec, prefix: Path, final_prefix: Path) -> list[str]:
        import rattler

        records = self.records_for(spec)
        if spec.cuda == "cpu":
            check_cpu_solution(spec, records)
        try:
            _run_async(
                rattler.install(
                    records,
                    target_prefix=prefix,
                    cache_dir=self.package_cache,
                    alternative_target_prefix=final_prefix,
                    show_progress=False,
                    execute_link_scripts=False,
                )
            )
        except Exception as exc:
            raise EnvBuildError(
                f"cannot install the env of {spec.cell_id}: {_first_lines(exc)}",
                hint="rerun with --conda-matrix-rebuild; if it persists, clear the package cache",
            ) from None
        packages = sorted(f"{r.name.normalized}={r.version}={r.build}" for r in records)
        pip_packages = install_pip_layer(spec.cell_id, spec.pip, prefix, final_prefix)
        return packages + [f"pip:{p}" for p in pip_packages]


def check_cpu_solution(spec: EnvSpec, records: list[rattler.RepoDataRecord]) -> None:
    """A CPU cell must not contain CUDA packages: name them and the specs that pulled them in."""
    solved = [
        SolvedPackage(r.name.normalized, str(r.version), str(r.build), tuple(r.depends))
        for r in records
    ]
    ensure_cpu_only(spec.cell_id, spec.specs, solved)


def _first_lines(exc: BaseException, limit: int = 25) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    text = "\n".join(lines[:limit])
    return text + ("\n..." if len(lines) > limit else "")


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here: a run whose envs are all cached never solves nor installs

    return asyncio.run(coro)
