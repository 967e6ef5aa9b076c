"""CUDA variants at run time: may a cell use this machine's driver (``cuda-policy``)?

Solving never needs a GPU (engines solve CUDA cells with ``__cuda`` set to the variant);
running does. The driver itself is detected with the rest of the host, in
:mod:`.envs.host`; a CPU cell's env is kept free of CUDA packages by :mod:`.envs.cpu_only`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuDecision:
    """Whether a cell runs, and whether its ``gpu`` tests may use the GPU."""

    run: bool
    gpu: bool
    reason: str = ""


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
