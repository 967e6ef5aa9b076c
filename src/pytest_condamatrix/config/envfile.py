"""conda ``environment.yml`` files as the base of every cell, and pip specs for the pip layer.

Merging rules (documented in docs/configuration.md):
- the file's ``python`` and ``cuda-version`` entries give way to the matrix axes;
- its other dependencies come first, then the config's ``dependencies``; the same package
  named in both with different specs is an error naming both places;
- its channels are used when the config sets none, else appended after the config's;
- its ``pip:`` section joins the config's ``pip`` list;
- its content (hashed) is part of every env key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ConfigError

AXIS_OWNED = ("python", "cuda-version")
SUPPORTED_KEYS = ("name", "channels", "dependencies", "prefix")


@dataclass(frozen=True)
class EnvironmentFile:
    path: Path
    sha256: str
    channels: tuple[str, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...]
    dropped: tuple[str, ...]  # entries the axes replace, for the run's notes


def spec_name(spec: str) -> str:
    """The package name of a conda match spec or a pip requirement."""
    return re.split(r"[\s=<>!~\[;@]", spec.strip(), maxsplit=1)[0].lower()


def load_environment_file(path: Path, *, where: Any, key: str) -> EnvironmentFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read environment file {str(path)!r}: {exc.strerror or exc}",
            file=where,
            key=key,
            hint="give a path relative to the configuration file",
        ) from None
    import yaml  # here: most runs have no environment file

    from . import yamlload

    try:
        raw = yamlload.load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the file is not UTF-8 (byte {exc.start})", file=path, hint="save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"invalid YAML: {_first_line(exc)}", file=path, hint="fix the file's syntax"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            "an environment file is a mapping with 'channels' and 'dependencies'", file=path
        )
    for name in raw:
        if name not in SUPPORTED_KEYS:
            raise ConfigError(
                "key not supported in environment files used by the matrix",
                file=path,
                key=str(name),
                hint=f"supported keys: {', '.join(SUPPORTED_KEYS)}",
            )
    channels = _string_list(raw.get("channels") or [], path, "channels")
    deps: list[str] = []
    pip: list[str] = []
    dropped: list[str] = []
    entries = raw.get("dependencies") or []
    if not isinstance(entries, list):
        raise ConfigError("expected a list", file=path, key="dependencies")
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            pip.extend(_string_list(entry["pip"], path, f"dependencies[{i}].pip"))
        elif isinstance(entry, str) and entry.strip():
            if spec_name(entry) in AXIS_OWNED:
                dropped.append(entry.strip())
            else:
                deps.append(entry.strip())
        else:
            raise ConfigError(
                f"expected a match spec or a {{pip: [...]}} entry, got {entry!r}",
                file=path,
                key=f"dependencies[{i}]",
            )
    loaded = EnvironmentFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        channels=tuple(channels),
        dependencies=tuple(deps),
        pip=tuple(pip),
        dropped=tuple(dropped),
    )
    _LOADED[loaded.sha256] = loaded
    return loaded


#: environment files read by this process, by content hash (an env spec holds that hash)
_LOADED: dict[str, EnvironmentFile] = {}


def loaded_environment(sha256: str) -> EnvironmentFile | None:
    """The environment file with this content, if this process has read it."""
    return _LOADED.get(sha256)


def _string_list(value: Any, path: Path, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError("expected a list of strings", file=path, key=key)
    return [v.strip() for v in value]


def merge_dependencies(
    base: EnvironmentFile, config_deps: Sequence[str], *, where: Any
) -> tuple[str, ...]:
    """The file's dependencies, then the config's; conflicting specs are an error."""
    from_file = {spec_name(s): (i, s) for i, s in enumerate(base.dependencies)}
    for j, spec in enumerate(config_deps):
        name = spec_name(spec)
        if name in from_file and _normal(from_file[name][1]) != _normal(spec):
            i, theirs = from_file[name]
            raise ConfigError(
                f"{validate.shown(spec)} conflicts with {validate.shown(theirs)} in {base.path} "
                f"(dependencies[{i}])",
                file=where,
                key=f"dependencies[{j}]",
                hint="keep one of the two specs",
            )
    merged = list(base.dependencies)
    merged += [s for s in config_deps if spec_name(s) not in from_file]
    return tuple(merged)


def _normal(spec: str) -> str:
    return re.sub(r"\s+", "", spec)


def check_pip_specs(specs: Sequence[str], root: Path, *, where: Any, key: str) -> tuple[str, ...]:
    """pip requirements for the pip layer; local wheels/sdists become absolute paths.

    Editable installs and source folders are refused: they are the project under test,
    which reaches the cells through ``pythonpath``, never through the cached env.
    """
    out: list[str] = []
    for i, spec in enumerate(specs):
        item = f"{key}[{i}]"
        if spec.startswith("-"):
            raise ConfigError(
                f"pip option {validate.shown(spec)} is not allowed here",
                file=where,
                key=item,
                hint="editable installs belong to the project under test (see 'pythonpath'); "
                "index settings go in pip.conf or PIP_INDEX_URL",
            )
        looks_local = spec.startswith((".", "/", "~")) or spec.endswith((".whl", ".tar.gz", ".zip"))
        if not looks_local:
            out.append(spec)
            continue
        path = validate.resolved(root / Path(spec).expanduser())
        if validate.is_dir(path):
            raise ConfigError(
                f"{validate.shown(spec)} is a folder: a local project cannot go into a cached env",
                file=where,
                key=item,
                hint="build a wheel of it and list the .whl file, or add it to 'pythonpath'",
            )
        if not validate.is_file(path):
            raise ConfigError(
                f"{validate.shown(spec)} does not exist (looked at {path})", file=where, key=item
            )
        out.append(str(path))
    return tuple(out)


def file_fingerprints(specs: Sequence[str]) -> tuple[str, ...]:
    """Content hashes of local files among pip specs (a rebuilt wheel must rebuild the env)."""
    prints = []
    for spec in specs:
        path = Path(spec)
        if path.is_absolute() and path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            prints.append(f"{path.name}@{digest}")
    return tuple(prints)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
