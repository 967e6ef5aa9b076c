"""Find and read ``[tool.condamatrix]`` (pyproject.toml) or ``condamatrix.yml`` and assemble
the :class:`MatrixConfig` from its fields.

Where both exist, ``condamatrix.yml`` wins (it exists only to hold this configuration, so its
presence is the more deliberate choice); the report header names the file that was read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ConfigError
from . import fields
from .envfile import EnvironmentFile, check_pip_specs, load_environment_file, merge_dependencies
from .envfile_checks import drop_nodefaults, python_pin_note
from .model import (
    CUDA_POLICIES,
    DEFAULT_CHANNELS,
    ENGINES,
    INSTALL_MODES,
    TOP_LEVEL_KEYS,
    MatrixConfig,
)
from .show import show, show_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

YAML_NAMES = ("condamatrix.yml", "condamatrix.yaml")


def find_config_file(start: Path) -> Path | None:
    """The configuration file of the project at or above ``start``; None when there is none."""
    for folder in (start, *start.parents):
        found = [folder / name for name in YAML_NAMES if (folder / name).is_file()]
        if len(found) > 1:
            raise ConfigError(
                f"both {' and '.join(p.name for p in found)} are here: which one is meant?",
                file=folder,
                hint="keep one of them",
            )
        if found:
            return found[0]
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _pyproject_has_table(pyproject):
            return pyproject
    return None


def _pyproject_has_table(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and TOMLDecodeError are ValueErrors
        return True  # let load_config report the problem with its location
    return isinstance(data.get("tool"), dict) and "condamatrix" in data["tool"]


def load_config(path: Path | None = None, *, start: Path | None = None) -> MatrixConfig:
    """Read and validate the configuration from ``path``, or find it from ``start``."""
    if path is None:
        path = find_config_file((start or Path.cwd()).resolve())
        if path is None:
            raise ConfigError(
                "no matrix configuration found",
                file=str(start or Path.cwd()),
                hint="add a [tool.condamatrix] table to pyproject.toml (or a condamatrix.yml) "
                "with at least python = ['3.11', '3.12']",
            )
    path = path.resolve()
    if not path.is_file():
        raise ConfigError("file not found", file=path, hint="check the path given")
    raw, note = _read_raw(path)
    return parse_config(raw, source=path, root=path.parent, note=note)


def _read_raw(path: Path) -> tuple[Any, str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", file=path) from None
    if path.suffix in (".yml", ".yaml"):
        import yaml  # here: a pyproject.toml run need not pay for importing it

        from . import yamlload

        try:
            data = yamlload.load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                f"invalid YAML{where}: {problem}", file=path, hint="fix the YAML syntax"
            ) from None
        note = None
        if (path.parent / "pyproject.toml").is_file() and _pyproject_has_table(
            path.parent / "pyproject.toml"
        ):
            note = f"{path.name} wins over [tool.condamatrix] in pyproject.toml, which is ignored"
        return ({} if data is None else data), note
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or int() of a number past 4300 digits
        raise ConfigError(
            f"invalid TOML: {show_text(str(exc))}", file=path, hint="fix the TOML syntax"
        ) from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or "condamatrix" not in tool:
        raise ConfigError(
            "no [tool.condamatrix] table",
            file=path,
            hint="add [tool.condamatrix] with at least python = ['3.11', '3.12']",
        )
    return tool["condamatrix"], None


def parse_config(
    raw: Any, *, source: Path | None, root: Path, note: str | None = None
) -> MatrixConfig:
    """Validate a decoded configuration mapping (from TOML or YAML)."""
    where = source or "configuration"
    if not isinstance(raw, dict):
        raise ConfigError(
            f"the configuration must be a table of keys, got {show(raw)}",
            file=where,
            hint="see the configuration reference in docs/configuration.md",
        )
    fields.reject_unknown(raw, TOP_LEVEL_KEYS, where, prefix="")
    if "python" not in raw:
        raise ConfigError(
            "missing required key", file=where, key="python", hint="add python = ['3.11', '3.12']"
        )
    python = fields.versions(raw["python"], where, "python", fields.check_python)
    cuda = fields.versions(raw.get("cuda", ["cpu"]), where, "cuda", fields.check_cuda)
    channels = fields.channels(raw.get("channels", list(DEFAULT_CHANNELS)), where, "channels", root)
    dependencies = fields.specs(raw.get("dependencies", []), where, "dependencies")
    environment = None
    if "environment" in raw:
        if (
            not isinstance(raw["environment"], str)
            or not raw["environment"].strip()
            or validate.text_problem(raw["environment"])
        ):
            raise ConfigError(
                f"expected a file path, got {show(raw['environment'])}",
                file=where,
                key="environment",
                hint="e.g. environment = 'environment.yml'",
            )
        environment = load_environment_file(
            validate.resolved(root / raw["environment"]), where=where, key="environment"
        )
        fields.specs(list(environment.dependencies), environment.path, "dependencies")
        dependencies = merge_dependencies(environment, dependencies, where=where)
        listed, nodefaults = drop_nodefaults(environment.channels)
        file_channels = tuple(
            fields.resolve_channel(
                c, environment.path.parent, where=environment.path, key="channels"
            )
            for c in listed
        )
        if "channels" not in raw and (file_channels or nodefaults):
            channels = file_channels  # nodefaults: the file's channels only, not ours
        else:
            channels = tuple(dict.fromkeys((*channels, *file_channels)))
        if nodefaults:
            channels, _ = drop_nodefaults((*channels, "nodefaults"))
        if not channels:
            raise ConfigError(
                "'nodefaults' leaves no channel",
                file=environment.path,
                key="channels",
                hint="list the channels to use, e.g. [conda-forge, nodefaults]",
            )
    pip = check_pip_specs(
        (
            *(environment.pip if environment else ()),
            *fields.strings(raw.get("pip", []), where, "pip"),
        ),
        root,
        where=where,
        key="pip",
    )
    include = fields.rules(raw.get("include", []), where, "include", allow_deps=True)
    exclude = fields.rules(raw.get("exclude", []), where, "exclude", allow_deps=False)
    for rule_key, rules in (("include", include), ("exclude", exclude)):
        for i, rule in enumerate(rules):
            if rule.python is not None:
                fields.check_python(rule.python, where, f"{rule_key}[{i}].python")
            if rule.cuda is not None:
                fields.check_cuda(rule.cuda, where, f"{rule_key}[{i}].cuda")
    jobs = fields.jobs(raw.get("jobs"), where)
    gpu_jobs = fields.jobs(raw.get("gpu-jobs"), where, key="gpu-jobs") or 1
    timeout = fields.timeout(raw.get("timeout"), where)
    pythonpath = tuple(
        validate.resolved(root / p)
        for p in fields.strings(raw.get("pythonpath", []), where, "pythonpath")
    )
    for i, p in enumerate(pythonpath):
        if not validate.is_dir(p):
            raise ConfigError(
                f"folder {show(str(p))} does not exist",
                file=where,
                key=f"pythonpath[{i}]",
                hint="give folders relative to the configuration file",
            )
    pytest_args = fields.strings(raw.get("pytest-args", []), where, "pytest-args")
    install = None
    if "install" in raw:
        install = fields.choice(raw["install"], INSTALL_MODES, where, "install")
    install_extras = fields.strings(raw.get("install-extras", []), where, "install-extras")
    engine = fields.choice(raw.get("engine", "rattler"), ENGINES, where, "engine")
    cuda_policy = fields.choice(raw.get("cuda-policy", "skip"), CUDA_POLICIES, where, "cuda-policy")
    add_pytest = fields.flag(
        raw.get("add-pytest", True),
        where,
        "add-pytest",
        hint="write add-pytest = false to leave pytest out of cells that do not list it",
    )
    variants = fields.variants(raw.get("cuda-variants", {}), where, root)
    for name in variants:
        if name not in cuda:
            raise ConfigError(
                f"variant {show(name)} is not on the cuda axis {list(cuda)}",
                file=where,
                key=f"cuda-variants.{name}",
                hint=f"add {show(name)} to cuda, or remove this table",
            )
    known_cuda = {*cuda, *(rule.cuda for rule in include if rule.cuda is not None)}
    runners = fields.runners(raw.get("runners", {}), where, known_cuda)
    config = MatrixConfig(
        root=root,
        source=source,
        python=python,
        cuda=cuda,
        channels=channels,
        dependencies=dependencies,
        pip=pip,
        environment=environment,
        include=include,
        exclude=exclude,
        jobs=jobs,
        gpu_jobs=gpu_jobs,
        timeout=timeout,
        pythonpath=pythonpath,
        pytest_args=pytest_args,
        install=install,
        install_extras=install_extras,
        engine=engine,
        cuda_policy=cuda_policy,
        add_pytest=add_pytest,
        cuda_variants=variants,
        runners=runners,
        note=note,
    )
    if environment is None:
        return config
    return _with_environment_notes(config, environment, where)


def _with_environment_notes(config: MatrixConfig, env: EnvironmentFile, where: Any) -> MatrixConfig:
    """Add to the run's note which of the file's pins the Python axis replaces (a pin that
    contradicts it is an error). Pins that fit only some cells are the matrix's to say
    (:func:`pytest_condamatrix.matrix.with_build_pin_notes`): it knows the cells."""
    from dataclasses import replace

    pythons = tuple(
        dict.fromkeys((*config.python, *(r.python for r in config.include if r.python)))
    )
    notes = [config.note, python_pin_note(env, pythons, where)]
    return replace(config, note="\n".join(n for n in notes if n) or None)
