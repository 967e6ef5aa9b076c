"""Load ``[tool.condamatrix]`` (pyproject.toml) or ``condamatrix.yml`` into frozen dataclasses.

Where both exist, ``condamatrix.yml`` wins (it exists only to hold this configuration, so its
presence is the more deliberate choice); the report header names the file that was read.
Every problem raises :class:`ConfigError` naming the file, the key, the bad value and a fix.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import reprlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import validate
from ..errors import ConfigError
from ..validate import MAX_JOBS
from .envfile import EnvironmentFile, check_pip_specs, load_environment_file, merge_dependencies
from .envfile_checks import drop_nodefaults, python_pin_note

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

YAML_NAMES = ("condamatrix.yml", "condamatrix.yaml")
DEFAULT_CHANNELS = ("conda-forge",)
ENGINES = ("rattler", "conda", "mamba", "micromamba")
CUDA_POLICIES = ("skip", "cpu-tests", "fail")
INSTALL_MODES = ("wheel", "editable", "none")
# \Z, not $: "$" also matches before a final newline, which would reach file names.
# ASCII digits only (\d takes full-width and other scripts' digits), no leading zeros (3.012
# would be a cell of its own beside 3.12), at most four digits a part (no 5000-digit numbers).
_PART = r"(?:0|[1-9][0-9]{0,3})"
PYTHON_RE = re.compile(rf"^3\.({_PART})(\.{_PART})?\Z")
CUDA_RE = re.compile(rf"^{_PART}(\.{_PART}){{0,2}}\Z")
AXES = ("python", "cuda")
#: the longest timeout (about 31 years): past it, waits overflow the platform's timers
MAX_TIMEOUT = 1e9
#: the longest list a key may hold: each item is checked, some against the disk
MAX_ITEMS = 1000

# key -> human description of the expected type, used in messages and the reference docs
TOP_LEVEL_KEYS: dict[str, str] = {
    "python": "a list of Python versions as strings, e.g. ['3.9', '3.11', '3.12']",
    "cuda": "a list of CUDA variants as strings: 'cpu' or a version like '12.1'",
    "channels": "a list of conda channel names, URLs or local folders",
    "dependencies": "a list of conda match specs, e.g. ['numpy >=1.24']",
    "environment": "a conda environment.yml, relative to the config file: the base of every cell",
    "pip": "a list of pip requirements installed into every env after the conda packages",
    "include": "a list of tables: cells to add or extend, e.g. {python = '3.13', cuda = 'cpu'}",
    "exclude": "a list of tables: cells to drop, e.g. {python = '3.9', cuda = '12.1'}",
    "jobs": "a positive whole number of cells to run at once, or 'auto'",
    "gpu-jobs": "a positive whole number of cells that may use the GPU at once",
    "timeout": "seconds a cell may run before it is killed (a positive number)",
    "pythonpath": "a list of folders, relative to the config file, put on the cells' PYTHONPATH",
    "install": "how the project reaches the cells: 'wheel', 'editable' or 'none' "
    "(default: 'wheel' when pyproject.toml has a [build-system] table, else 'none')",
    "install-extras": "a list of the project's extras whose requirements the envs must hold",
    "pytest-args": "a list of extra arguments given to pytest in every cell",
    "engine": f"the conda engine: one of {', '.join(ENGINES)}",
    "cuda-policy": "what to do with a CUDA cell this machine cannot run: "
    + ", ".join(CUDA_POLICIES),
    "cuda-variants": "a table: per CUDA variant, its 'dependencies' and 'channels'",
    "add-pytest": "true (default) or false: add `pytest` to the specs of every cell whose "
    "dependencies name no pytest",
    "runners": "a table: GitHub Actions runs-on labels per CUDA variant ('cpu', a version "
    "like '12.1', or 'default-gpu' for every CUDA variant not named), each a label or a list",
}
RULE_KEYS = ("python", "cuda", "dependencies")
VARIANT_KEYS = ("dependencies", "channels")
#: ``runners`` key that stands for every CUDA variant without an entry of its own
DEFAULT_GPU = "default-gpu"
#: runs-on labels when ``runners`` names none: GitHub's hosted Linux runner for CPU cells,
#: a self-hosted runner with a GPU for CUDA cells (hosted runners have no NVIDIA driver)
DEFAULT_RUNNERS: dict[str, tuple[str, ...]] = {
    "cpu": ("ubuntu-latest",),
    DEFAULT_GPU: ("self-hosted", "gpu"),
}


@dataclass(frozen=True)
class CudaVariantSpec:
    """What one CUDA variant adds to a cell's environment."""

    dependencies: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class CellRule:
    """One ``include`` or ``exclude`` entry: axis values, plus dependencies for ``include``."""

    python: str | None = None
    cuda: str | None = None
    dependencies: tuple[str, ...] = ()

    def matches(self, python: str, cuda: str) -> bool:
        return (self.python is None or self.python == python) and (
            self.cuda is None or self.cuda == cuda
        )


@dataclass(frozen=True)
class MatrixConfig:
    """The validated configuration of one project's matrix."""

    root: Path
    source: Path | None
    python: tuple[str, ...]
    cuda: tuple[str, ...] = ("cpu",)
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    dependencies: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    environment: EnvironmentFile | None = None
    include: tuple[CellRule, ...] = ()
    exclude: tuple[CellRule, ...] = ()
    jobs: int | None = None
    gpu_jobs: int = 1
    timeout: float | None = None
    pythonpath: tuple[Path, ...] = ()
    pytest_args: tuple[str, ...] = ()
    install: str | None = None  # None: decided from the project (see install/__init__.py)
    install_extras: tuple[str, ...] = ()
    engine: str = "rattler"
    cuda_policy: str = "skip"
    add_pytest: bool = True  # a cell whose specs name no pytest gets it: it runs pytest
    cuda_variants: Mapping[str, CudaVariantSpec] = field(default_factory=dict)
    runners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # as configured
    note: str | None = None  # e.g. which of two config files was ignored

    @property
    def source_name(self) -> str:
        return str(self.source) if self.source else "(defaults)"

    @property
    def environment_sha(self) -> str:
        """The environment file's content hash, part of every env key ("" without one)."""
        return self.environment.sha256 if self.environment else ""

    def runs_on(self, cuda: str) -> tuple[str, ...]:
        """The GitHub Actions ``runs-on`` labels of the cells of CUDA variant ``cuda``."""
        if cuda in self.runners:
            return self.runners[cuda]
        fallback = "cpu" if cuda == "cpu" else DEFAULT_GPU
        return self.runners.get(fallback, DEFAULT_RUNNERS[fallback])


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
            f"invalid TOML: {_show_text(str(exc))}", file=path, hint="fix the TOML syntax"
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
            f"the configuration must be a table of keys, got {_show(raw)}",
            file=where,
            hint="see the configuration reference in docs/configuration.md",
        )
    _reject_unknown(raw, TOP_LEVEL_KEYS, where, prefix="")
    if "python" not in raw:
        raise ConfigError(
            "missing required key", file=where, key="python", hint="add python = ['3.11', '3.12']"
        )
    python = _versions(raw["python"], where, "python", _check_python)
    cuda = _versions(raw.get("cuda", ["cpu"]), where, "cuda", _check_cuda)
    channels = _channels(raw.get("channels", list(DEFAULT_CHANNELS)), where, "channels", root)
    dependencies = _specs(raw.get("dependencies", []), where, "dependencies")
    environment = None
    if "environment" in raw:
        if (
            not isinstance(raw["environment"], str)
            or not raw["environment"].strip()
            or validate.text_problem(raw["environment"])
        ):
            raise ConfigError(
                f"expected a file path, got {_show(raw['environment'])}",
                file=where,
                key="environment",
                hint="e.g. environment = 'environment.yml'",
            )
        environment = load_environment_file(
            validate.resolved(root / raw["environment"]), where=where, key="environment"
        )
        _specs(list(environment.dependencies), environment.path, "dependencies")
        dependencies = merge_dependencies(environment, dependencies, where=where)
        listed, nodefaults = drop_nodefaults(environment.channels)
        file_channels = tuple(
            resolve_channel(c, environment.path.parent, where=environment.path, key="channels")
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
        (*(environment.pip if environment else ()), *_strings(raw.get("pip", []), where, "pip")),
        root,
        where=where,
        key="pip",
    )
    include = _rules(raw.get("include", []), where, "include", allow_deps=True)
    exclude = _rules(raw.get("exclude", []), where, "exclude", allow_deps=False)
    for rule_key, rules in (("include", include), ("exclude", exclude)):
        for i, rule in enumerate(rules):
            if rule.python is not None:
                _check_python(rule.python, where, f"{rule_key}[{i}].python")
            if rule.cuda is not None:
                _check_cuda(rule.cuda, where, f"{rule_key}[{i}].cuda")
    jobs = _jobs(raw.get("jobs"), where)
    gpu_jobs = _jobs(raw.get("gpu-jobs"), where, key="gpu-jobs") or 1
    timeout = _timeout(raw.get("timeout"), where)
    pythonpath = tuple(
        validate.resolved(root / p)
        for p in _strings(raw.get("pythonpath", []), where, "pythonpath")
    )
    for i, p in enumerate(pythonpath):
        if not validate.is_dir(p):
            raise ConfigError(
                f"folder {_show(str(p))} does not exist",
                file=where,
                key=f"pythonpath[{i}]",
                hint="give folders relative to the configuration file",
            )
    pytest_args = _strings(raw.get("pytest-args", []), where, "pytest-args")
    install = None
    if "install" in raw:
        install = _choice(raw["install"], INSTALL_MODES, where, "install")
    install_extras = _strings(raw.get("install-extras", []), where, "install-extras")
    engine = _choice(raw.get("engine", "rattler"), ENGINES, where, "engine")
    cuda_policy = _choice(raw.get("cuda-policy", "skip"), CUDA_POLICIES, where, "cuda-policy")
    add_pytest = raw.get("add-pytest", True)
    if not isinstance(add_pytest, bool):
        raise ConfigError(
            f"add-pytest must be true or false, not {_show(add_pytest)}",
            file=where,
            key="add-pytest",
            hint="write add-pytest = false to leave pytest out of cells that do not list it",
        )
    variants = _variants(raw.get("cuda-variants", {}), where, root)
    for name in variants:
        if name not in cuda:
            raise ConfigError(
                f"variant {_show(name)} is not on the cuda axis {list(cuda)}",
                file=where,
                key=f"cuda-variants.{name}",
                hint=f"add {_show(name)} to cuda, or remove this table",
            )
    known_cuda = {*cuda, *(rule.cuda for rule in include if rule.cuda is not None)}
    runners = _runners(raw.get("runners", {}), where, known_cuda)
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


def _show(value: Any) -> str:
    """A value for a message: bounded however large it is (never a full ``repr``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {_digits(abs(value))}-digit number"
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _digits(number: int) -> int:
    """Decimal digits of a huge ``number`` (str() refuses past 4300; log10 alone rounds)."""
    exponent = int(math.log10(number))
    if 10**exponent > number:
        exponent -= 1
    elif 10 ** (exponent + 1) <= number:
        exponent += 1
    return exponent + 1


def _show_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxdict, shown.maxtuple = 2, 4, 4, 4
    shown.maxstring, shown.maxother, shown.maxlong = 60, 60, 40
    return shown


_REPR = _bounded_repr()


def _reject_unknown(
    raw: Mapping[str, Any], known: Sequence[str] | Mapping[str, str], where: Any, prefix: str
) -> None:
    for key in raw:
        if key in known:
            continue
        name = _key_text(key)
        guess = difflib.get_close_matches(name.replace("_", "-"), list(known), n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(known)}"
        raise ConfigError("unknown key", file=where, key=prefix + name, hint=hint)


def _key_text(key: Any) -> str:
    """A key of the user's for a message: a string as written (cut), anything else shown."""
    if isinstance(key, str):
        return key if len(key) <= 60 else key[:57] + "..."
    return _show(key)


def _list(value: Any, where: Any, key: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(
            f"expected a list, got {_show(value)}",
            file=where,
            key=key,
            hint=f"write {key} as {TOP_LEVEL_KEYS.get(key, 'a list')}",
        )
    if len(value) > MAX_ITEMS:
        raise ConfigError(
            f"{len(value)} items is more than a matrix needs (at most {MAX_ITEMS})",
            file=where,
            key=key,
        )
    return value


def _strings(value: Any, where: Any, key: str) -> tuple[str, ...]:
    items = _list(value, where, key)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"expected a non-empty string, got {_show(item)}",
                file=where,
                key=f"{key}[{i}]",
                hint="quote the value",
            )
        problem = validate.text_problem(item.strip())
        if problem:
            raise ConfigError(f"{_show(item)}: {problem}", file=where, key=f"{key}[{i}]")
    return tuple(item.strip() for item in items)


def _versions(value: Any, where: Any, key: str, check: Any) -> tuple[str, ...]:
    items = _list(value, where, key)
    if not items:
        raise ConfigError(
            "the axis is empty", file=where, key=key, hint=f"list at least one value: {key} = [...]"
        )
    out: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, float | int) and not isinstance(item, bool):
            raise ConfigError(
                f"{_show(item)} is a number, not a string",
                file=where,
                key=f"{key}[{i}]",
                hint=f"quote versions: '{_show(item)}' (unquoted, 3.10 reads as the number 3.1)",
            )
        if not isinstance(item, str):
            raise ConfigError(
                f"expected a string, got {_show(item)}", file=where, key=f"{key}[{i}]"
            )
        check(item, where, f"{key}[{i}]")
        if item in out:
            raise ConfigError(
                f"{_show(item)} is listed twice", file=where, key=key, hint="list each value once"
            )
        out.append(item)
    return tuple(out)


def _check_python(value: str, where: Any, key: str) -> None:
    match = PYTHON_RE.match(value)
    if not match:
        raise ConfigError(
            f"{_show(value)} is not a Python version",
            file=where,
            key=key,
            hint="write it as MAJOR.MINOR or MAJOR.MINOR.PATCH in ASCII digits without leading "
            "zeros, e.g. '3.12'",
        )
    if int(match.group(1)) < 9:
        raise ConfigError(
            f"Python {value} is not supported in cells",
            file=where,
            key=key,
            hint="cells run CPython 3.9 or newer",
        )


def _check_cuda(value: str, where: Any, key: str) -> None:
    if value != "cpu" and not CUDA_RE.match(value):
        raise ConfigError(
            f"{_show(value)} is not a CUDA variant",
            file=where,
            key=key,
            hint="use 'cpu' or a CUDA version such as '11.8' or '12.1' (ASCII digits, no "
            "leading zeros)",
        )


def _specs(value: Any, where: Any, key: str) -> tuple[str, ...]:
    # Imported here: rattler is a compiled extension and is only needed when specs are present.
    from rattler import MatchSpec

    specs = _strings(value, where, key)
    for i, spec in enumerate(specs):
        try:
            parsed = MatchSpec(spec, strict=False)  # conda also accepts name=version=build
        except Exception as exc:  # rattler raises its own InvalidMatchSpecError
            raise ConfigError(
                f"{_show(spec)} is not a valid conda match spec: {_show_text(str(exc))}",
                file=where,
                key=f"{key}[{i}]",
                hint="write specs like 'numpy', 'numpy >=1.24' or 'numpy=1.26'",
            ) from None
        name = parsed.name.normalized if parsed.name else ""
        if name == "python":
            raise ConfigError(
                f"{_show(spec)} pins Python, which the python axis decides",
                file=where,
                key=f"{key}[{i}]",
                hint="remove it and list the versions in python = [...]",
            )
    return specs


def _channels(value: Any, where: Any, key: str, root: Path) -> tuple[str, ...]:
    channels = _strings(value, where, key)
    if not channels:
        raise ConfigError("no channels listed", file=where, key=key, hint="e.g. ['conda-forge']")
    out: list[str] = []
    for i, channel in enumerate(channels):
        out.append(resolve_channel(channel, root, where=where, key=f"{key}[{i}]"))
    return tuple(out)


def resolve_channel(channel: str, root: Path, *, where: Any = None, key: str = "channels") -> str:
    """``channel`` as rattler takes it: names and URLs as they are, local folders absolute."""
    expanded = os.path.expandvars(channel)
    if "://" in expanded:
        return expanded
    looks_local = expanded.startswith((".", "/", "~")) or os.sep in expanded
    if not looks_local:
        return expanded  # a channel name such as conda-forge
    folder = validate.resolved(root / Path(expanded).expanduser())
    if not validate.is_dir(folder):
        raise ConfigError(
            f"local channel folder {_show(channel)} does not exist (looked at {folder})",
            file=where,
            key=key,
            hint="build one with `condamatrix local-channel DIR`, or fix the path",
        )
    return str(folder)


def _rules(value: Any, where: Any, key: str, *, allow_deps: bool) -> tuple[CellRule, ...]:
    rules: list[CellRule] = []
    for i, item in enumerate(_list(value, where, key)):
        item_key = f"{key}[{i}]"
        if not isinstance(item, dict) or not item:
            raise ConfigError(
                f"expected a table like {{python = '3.9', cuda = 'cpu'}}, got {_show(item)}",
                file=where,
                key=item_key,
            )
        allowed = RULE_KEYS if allow_deps else AXES
        _reject_unknown(item, allowed, where, prefix=item_key + ".")
        values: dict[str, str | None] = {}
        for axis in AXES:
            axis_value = item.get(axis)
            if axis_value is not None and not isinstance(axis_value, str):
                raise ConfigError(
                    f"{_show(axis_value)} is not a string",
                    file=where,
                    key=f"{item_key}.{axis}",
                    hint="quote the value, e.g. '3.10'",
                )
            values[axis] = axis_value
        if values["python"] is None and values["cuda"] is None:
            raise ConfigError(
                "names no axis value",
                file=where,
                key=item_key,
                hint="give python and/or cuda",
            )
        deps = _specs(item.get("dependencies", []), where, f"{item_key}.dependencies")
        rules.append(CellRule(python=values["python"], cuda=values["cuda"], dependencies=deps))
    return tuple(rules)


def _jobs(value: Any, where: Any, key: str = "jobs") -> int | None:
    if value is None or (value == "auto" and key == "jobs"):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOBS:
        hint = (
            "use e.g. jobs = 2, or 'auto' for one per CPU"
            if key == "jobs"
            else f"use e.g. {key} = 2 on a machine with two GPUs (default: 1)"
        )
        raise ConfigError(
            f"{_show(value)} is not a positive whole number (at most {MAX_JOBS})",
            file=where,
            key=key,
            hint=hint,
        )
    return value


def _timeout(value: Any, where: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TIMEOUT
    ):
        raise ConfigError(
            f"{_show(value)} is not a positive number of seconds (at most {MAX_TIMEOUT:g})",
            file=where,
            key="timeout",
            hint="use e.g. timeout = 900",
        )
    return float(value)


def _choice(value: Any, choices: Sequence[str], where: Any, key: str) -> str:
    if value not in choices:
        typed = value if isinstance(value, str) and len(value) <= 100 else ""
        guess = difflib.get_close_matches(typed, list(choices), n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"use one of: {', '.join(choices)}"
        raise ConfigError(f"{_show(value)} is not allowed", file=where, key=key, hint=hint)
    return str(value)


def _variants(value: Any, where: Any, root: Path) -> dict[str, CudaVariantSpec]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"expected a table keyed by variant, got {_show(value)}",
            file=where,
            key="cuda-variants",
        )
    out: dict[str, CudaVariantSpec] = {}
    for name, body in value.items():
        key = f"cuda-variants.{_key_text(name)}"
        if not isinstance(body, dict):
            raise ConfigError(f"expected a table, got {_show(body)}", file=where, key=key)
        _reject_unknown(body, VARIANT_KEYS, where, prefix=key + ".")
        deps = _specs(body.get("dependencies", []), where, f"{key}.dependencies")
        channels = tuple(
            resolve_channel(c, root, where=where, key=f"{key}.channels")
            for c in _strings(body.get("channels", []), where, f"{key}.channels")
        )
        out[str(name)] = CudaVariantSpec(dependencies=deps, channels=channels)
    return out


def _runners(value: Any, where: Any, cuda_values: set[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"expected a table keyed by CUDA variant, got {_show(value)}",
            file=where,
            key="runners",
            hint="e.g. runners = {cpu = 'ubuntu-latest', default-gpu = ['self-hosted', 'gpu']}",
        )
    out: dict[str, tuple[str, ...]] = {}
    for name, labels in value.items():
        key = f"runners.{_key_text(name)}"
        if not isinstance(name, str):
            # YAML reads an unquoted 12.1 as a number
            raise ConfigError(
                f"the variant {_show(name)} is not a string",
                file=where,
                key=key,
                hint=f"quote CUDA versions used as keys: '{_show(name)}'",
            )
        if name != DEFAULT_GPU and name not in cuda_values:
            hint = f"add {_show(name)} to cuda, or remove this entry"
            if isinstance(labels, dict) and name.isdigit():
                # TOML reads an unquoted 12.1 = ... as the nested key 12 -> 1
                hint = 'quote CUDA versions used as keys: "12.1" = [...]'
            raise ConfigError(
                f"variant {_show(name)} is not on the cuda axis {sorted(cuda_values)}",
                file=where,
                key=key,
                hint=hint + f" ({DEFAULT_GPU!r} stands for every CUDA variant not named)",
            )
        out[name] = _labels(labels, where, key)
    return out


def _labels(value: Any, where: Any, key: str) -> tuple[str, ...]:
    hint = "give a runner label such as 'ubuntu-latest' or a list such as ['self-hosted', 'gpu']"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(
            f"expected a label or a non-empty list of labels, got {_show(value)}",
            file=where,
            key=key,
            hint=hint,
        )
    labels: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip() or item != item.strip():
            raise ConfigError(
                f"{_show(item)} is not a runner label",
                file=where,
                key=key if isinstance(value, str) else f"{key}[{i}]",
                hint=hint + " (non-empty, no surrounding spaces)",
            )
        if item in labels:
            raise ConfigError(
                f"label {_show(item)} is listed twice", file=where, key=key, hint="list each once"
            )
        labels.append(item)
    return tuple(labels)
