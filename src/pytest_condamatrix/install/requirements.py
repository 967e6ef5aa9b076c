"""Which distributions a cell's env holds, and which of the project's requirements it lacks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import InstallError
from ..markers import marker_environment


def installed(folders: Iterable[Path]) -> dict[str, Version | None]:
    """Canonical name -> version of the distributions in ``folders`` (from the folder names,
    which pip and conda both write as ``name-version.dist-info``)."""
    found: dict[str, Version | None] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            stem, dot, suffix = entry.name.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            name, _, version = stem.partition("-")
            try:
                parsed: Version | None = Version(version.split("-")[0]) if version else None
            except InvalidVersion:
                parsed = None
            found.setdefault(canonicalize_name(name), parsed)
    return found


def missing(
    requirements: Iterable[str],
    have: Mapping[str, Version | None],
    python_version: str,
    extras: Iterable[str] = (),
) -> list[Requirement]:
    """The requirements that apply to this Python (and ``extras``) and ``have`` lacks."""
    envs = [marker_environment(python_version, e) for e in ("", *extras)]
    out: list[Requirement] = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise InstallError(f"cannot read the requirement {line!r}: {exc}") from None
        if req.marker is not None and not any(req.marker.evaluate(e) for e in envs):
            continue
        name = canonicalize_name(req.name)
        version = have.get(name)
        if name not in have or (
            version is not None and not req.specifier.contains(version, prereleases=True)
        ):
            out.append(req)
    return out


def fix_for(req: Requirement) -> str:
    """The conda spec or the ``pip:`` entry that would satisfy ``req``."""
    from ..localchannel.wheels import conda_name, pep440_to_conda

    version = pep440_to_conda(str(req.specifier)) if req.specifier else ""
    conda = f"{conda_name(req.name)} {version}".strip()
    pip = f"{req.name}{req.specifier}"
    return f"add {conda!r} to dependencies (conda), or {pip!r} to pip if conda lacks it"
