"""CUDA variants at run time: is there a driver here, and may a cell use it?

Solving never needs a GPU (engines solve CUDA cells with ``__cuda`` set to the variant);
running does. Detection goes through rattler, which reads the driver library and honours
``CONDA_OVERRIDE_CUDA`` as conda does; ``CUDA_VISIBLE_DEVICES=""`` hides every GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def decide(variant: str, driver: str | None, policy: str) -> GpuDecision:
    """Apply the configured ``cuda-policy`` to a cell of ``variant`` on a host with ``driver``."""
    if variant == "cpu":
        return GpuDecision(run=True, gpu=False, reason="CPU cell")
    if driver is None:
        problem = "no NVIDIA driver found"
    elif _version_tuple(driver) < _version_tuple(variant):
        problem = f"driver supports CUDA {driver}, older than {variant}"
    else:
        return GpuDecision(run=True, gpu=True)
    if policy == "cpu-tests":
        return GpuDecision(run=True, gpu=False, reason=problem)
    if policy == "fail":
        return GpuDecision(run=False, gpu=False, reason=f"cannot run here: {problem}")
    return GpuDecision(run=False, gpu=False, reason=f"built, not run here: {problem}")
