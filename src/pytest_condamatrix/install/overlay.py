"""Install a wheel into a cell's per-run overlay: a site folder, a bin folder and a boot folder.

The overlay lives in the run's folder, never in the cached env. ``boot/sitecustomize.py``
makes the site folder a real site directory (its ``.pth`` files run, which PEP 660 editable
installs rely on) and then runs the env's own ``sitecustomize`` if there is one. Console
scripts are written with the cell's interpreter in their shebang and find the overlay
themselves, so they work even from a subprocess that was given a clean environment.
"""

from __future__ import annotations

import configparser
import shutil
import zipfile
from pathlib import Path

from ..errors import InstallError
from ..wheelfiles import UnsafeMember, wheel_files

_BOOT = """\
# Written by pytest-condamatrix: makes the overlay a site directory, then hands over.
import importlib.machinery, importlib.util, os, site, sys
site.addsitedir({site!r})
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here]
)
if _spec is not None and _spec.loader is not None:
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["sitecustomize"] = _module
    _spec.loader.exec_module(_module)
"""

_SCRIPT = """\
#!{python}
# Written by pytest-condamatrix for the project under test.
import site, sys
sys.path.insert(0, {site!r})
site.addsitedir({site!r})
from {module} import {head}
if __name__ == "__main__":
    sys.argv[0] = {name!r}
    sys.exit({call}())
"""


def install_wheel(wheel: Path, overlay: Path, python: Path) -> list[str]:
    """Unpack ``wheel`` into ``overlay`` (site/, bin/, boot/); return its console scripts."""
    site = overlay / "site"
    bin_dir = overlay / "bin"
    for folder in (site, bin_dir, overlay / "boot"):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf:
            dist_info = _dist_info(zf, wheel)
            data_dir = dist_info[: -len(".dist-info")] + ".data"
            for member, parts in wheel_files(zf):
                target = _target(parts, data_dir, site, bin_dir)
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                body = zf.read(member)
                if target.parent == bin_dir and body.startswith(b"#!python"):
                    body = b"#!" + str(python).encode() + body[len(b"#!python") :]
                target.write_bytes(body)
                if (member.external_attr >> 16) & 0o111 or target.parent == bin_dir:
                    target.chmod(0o755)
            entry_points = (
                zf.read(f"{dist_info}/entry_points.txt").decode()
                if f"{dist_info}/entry_points.txt" in zf.namelist()
                else ""
            )
    except UnsafeMember as exc:
        raise InstallError(f"{wheel.name}: unsafe path {exc.name!r}") from None
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise InstallError(f"cannot install {wheel}: {exc}") from None
    (site / dist_info / "INSTALLER").write_text("pytest-condamatrix\n", encoding="utf-8")
    scripts = write_scripts(entry_points, bin_dir, site, python)
    write_boot(overlay)
    return scripts


def write_boot(overlay: Path) -> None:
    (overlay / "boot").mkdir(parents=True, exist_ok=True)
    text = _BOOT.format(site=str(overlay / "site"))
    (overlay / "boot" / "sitecustomize.py").write_text(text, encoding="utf-8")


def write_scripts(entry_points: str, bin_dir: Path, site: Path, python: Path) -> list[str]:
    parser = _CaseParser(delimiters=("=",), interpolation=None)
    parser.read_string(entry_points)
    names: list[str] = []
    for group in ("console_scripts", "gui_scripts"):
        if not parser.has_section(group):
            continue
        for name, value in parser.items(group):
            target, _, _extras = value.partition("[")
            module, _, attr = target.strip().partition(":")
            attr = attr.strip() or "main"
            head = attr.split(".")[0]
            path = bin_dir / name
            path.write_text(
                _SCRIPT.format(
                    python=python, site=str(site), module=module.strip(), head=head,
                    name=name, call=attr,
                ),
                encoding="utf-8",
            )  # fmt: skip
            path.chmod(0o755)
            names.append(name)
    return names


def clear(overlay: Path) -> None:
    shutil.rmtree(overlay, ignore_errors=True)
    overlay.mkdir(parents=True, exist_ok=True)


def _dist_info(zf: zipfile.ZipFile, wheel: Path) -> str:
    tops = {n.split("/", 1)[0] for n in zf.namelist() if n.count("/") == 1}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise InstallError(f"{wheel.name}: expected one .dist-info folder, found {found}")
    return found[0]


def _target(parts: tuple[str, ...], data_dir: str, site: Path, bin_dir: Path) -> Path | None:
    if parts[0] != data_dir:
        return site.joinpath(*parts)
    if len(parts) < 3:
        return None
    scheme, rest = parts[1], parts[2:]
    if scheme in ("purelib", "platlib"):
        return site.joinpath(*rest)
    if scheme == "scripts":
        return bin_dir.joinpath(*rest)
    return None  # headers and data files: nothing a test imports


class _CaseParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # script names are case-sensitive


def path_entries(overlay: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(PYTHONPATH entries, PATH entries) of an overlay: the folders it has."""
    pythonpath = tuple(str(overlay / d) for d in ("boot", "site") if (overlay / d).is_dir())
    return pythonpath, tuple(str(overlay / d) for d in ("bin",) if (overlay / d).is_dir())


__all__ = ["clear", "install_wheel", "path_entries", "write_boot", "write_scripts"]
