"""The project's metadata in the overlay: read from the installed wheel, or, with
``install = "none"``, written from the static ``[project]`` table so that
``importlib.metadata`` and console scripts work without a build."""

from __future__ import annotations

from email.parser import HeaderParser
from pathlib import Path

from .overlay import write_boot, write_scripts
from .project import Project


def requires_dist(site: Path) -> tuple[str, ...]:
    """The Requires-Dist of the one distribution in ``site`` (the project's wheel)."""
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        parsed = HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        return tuple(parsed.get_all("Requires-Dist") or ())
    return ()


def write_static_metadata(project: Project, overlay: Path, python: Path) -> tuple[str, ...]:
    """Write a ``.dist-info`` and console scripts from ``[project]``; return its
    requirements (with their extras markers). Nothing is written when the name or the
    version is not static: only the backend could say them."""
    requirements = [*project.dependencies]
    for extra, deps in project.optional.items():
        for dep in deps:
            req, _, marker = dep.partition(";")
            extra_marker = f'extra == "{_canonical(extra)}"'
            combined = f"({marker.strip()}) and {extra_marker}" if marker.strip() else extra_marker
            requirements.append(f"{req.strip()}; {combined}")
    if not project.name or not project.version:
        return tuple(requirements)
    site = overlay / "site"
    dist = site / f"{_canonical(project.name).replace('-', '_')}-{project.version}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    lines = ["Metadata-Version: 2.1", f"Name: {project.name}", f"Version: {project.version}"]
    if project.requires_python:
        lines.append(f"Requires-Python: {project.requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requirements]
    lines += [f"Provides-Extra: {e}" for e in project.optional]
    (dist / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (dist / "INSTALLER").write_text("pytest-condamatrix\n", encoding="utf-8")
    groups = dict(project.entry_points)
    if project.scripts:
        groups["console_scripts"] = project.scripts
    text = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in body.items()) + "\n"
        for group, body in groups.items()
    )
    (dist / "entry_points.txt").write_text(text, encoding="utf-8")
    (dist / "RECORD").write_text("", encoding="utf-8")
    (overlay / "bin").mkdir(parents=True, exist_ok=True)
    write_scripts(text, overlay / "bin", site, python)
    write_boot(overlay)
    return tuple(requirements)


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name  # here: most runs have no [project] table

    return canonicalize_name(name)
