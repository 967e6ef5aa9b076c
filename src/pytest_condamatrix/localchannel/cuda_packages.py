"""`cuda-version` metapackages and the `cudademo` package with CPU and CUDA variants.

`cuda-version X.Y` is modelled on conda-forge's: no files, `constrains: __cuda >=X.Y`. A
constraint only applies to a package that is present, so `cuda-version` alone still solves
on a machine without the `__cuda` virtual package; what it prevents is a driver that is too
old (`__cuda 11.8` with `cuda-version 12.1`).

`cudademo 1.0` installs `cudademo/__init__.py` with `VARIANT = "cpu" | "11.8" | "12.1" |
"12.4"`. Like conda-forge's GPU builds, a CUDA variant depends on `__cuda` (so it is never
picked without a GPU driver, real or overridden) and on `cuda-version X.Y.*`; it has a higher
build number than the CPU one, and newer CUDA versions higher than older ones. How a spec
selects a variant (rattler's string specs are strict: write a build glob as
`cudademo * cuda121*` or `cudademo[build=cuda121*]`; conda's `cudademo=*=cuda121*` is only
accepted through `rattler.MatchSpec(spec, strict=False)`):

- `cudademo * cpu*`: the CPU variant, always, with no CUDA package in the environment.
- `cudademo * cuda121*`: the CUDA 12.1 variant; solving needs `__cuda >= 12.1`.
- `cudademo` + `cuda-version=12.1`: the CUDA 12.1 variant when `__cuda >= 12.1` is present,
  else the CPU variant (next to the `cuda-version` metapackage).
- `cudademo` alone: the newest CUDA variant that the `__cuda` version allows; CPU without
  `__cuda`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

from pytest_condamatrix.localchannel.conda_package import PackageFile, PackageMeta

__all__ = ["CUDADEMO_VERSION", "CUDA_VERSIONS", "cuda_packages"]

CUDA_VERSIONS = ("11.8", "12.1", "12.4")
CUDADEMO_VERSION = "1.0"
# 2024-01-01: these packages have no source to date them by; a constant keeps them
# byte-for-byte reproducible.
_TIMESTAMP_MS = 1_704_067_200_000


def cuda_packages(builder_version: str) -> list[tuple[str, PackageMeta, list[PackageFile]]]:
    """(slot, metadata, files) of every package of this module."""
    packages: list[tuple[str, PackageMeta, list[PackageFile]]] = []
    for version in CUDA_VERSIONS:
        meta = PackageMeta(
            name="cuda-version",
            version=version,
            build="",
            subdir="noarch",
            noarch="generic",
            timestamp_ms=_TIMESTAMP_MS,
            constrains=(f"__cuda >={version}",),
            license="LicenseRef-Public-Domain",
            summary="Selects the CUDA version; needs a driver that supports it",
        )
        packages.append((f"cuda-version|{version}", _hashed(meta, [], "h", builder_version), []))

    variants: list[tuple[str, str, int, tuple[str, ...]]] = [("cpu", "cpu", 0, ("python",))]
    for number, version in enumerate(CUDA_VERSIONS, start=1):
        tag = "cuda" + version.replace(".", "")
        variants.append((tag, version, number, ("python", "__cuda", f"cuda-version {version}.*")))
    for tag, variant, build_number, depends in variants:
        source = (
            '"""Demo package of the local test channel: which build variant is installed."""\n'
            f"\nVARIANT = {variant!r}\n"
        )
        files = [PackageFile("site-packages/cudademo/__init__.py", data=source.encode())]
        meta = PackageMeta(
            name="cudademo",
            version=CUDADEMO_VERSION,
            build="",
            build_number=build_number,
            subdir="noarch",
            noarch="python",
            timestamp_ms=_TIMESTAMP_MS,
            depends=depends,
            license="MIT",
            summary=f"pytest-condamatrix demo package, {variant} variant",
        )
        packages.append(
            (f"cudademo|{tag}", _hashed(meta, files, f"{tag}_", builder_version), files)
        )
    return packages


def _hashed(
    meta: PackageMeta, files: list[PackageFile], build_prefix: str, builder_version: str
) -> PackageMeta:
    inputs = {
        "builder": builder_version,
        "index": meta.index_json(),
        "files": {f.path: (f.data or b"").decode() for f in files},
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return replace(meta, build=f"{build_prefix}{key[:8]}")
