"""Run GitHub Actions workflows on this machine, job by job and step by step, as a runner would.

Enough of GitHub's runner for the workflows that ``condamatrix init-ci`` writes:

- ``run:`` steps in bash with GitHub's options (``bash --noprofile --norc -eo pipefail``),
  the step's, job's and workflow's ``env``, and the files and variables a runner sets:
  ``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_WORKSPACE``,
  ``RUNNER_TEMP``, ``CI``;
- expressions (``${{ }}`` and ``if:``): contexts ``inputs``, ``matrix``, ``steps``, ``needs``,
  ``runner``, ``github``, ``env``; operators ``! == != && ||``; object filters
  (``x.include.*.cell``); functions ``fromJSON toJSON join format contains startsWith
  endsWith`` and the status functions; an ``if:`` without a status function means
  ``success() && (...)``;
- the actions the templates use, by what they do: ``checkout`` copies the repository into the
  workspace, ``setup-python`` leaves the Python that runs the tests, ``cache/restore`` and
  ``cache/save`` use a folder per key, ``upload-artifact`` and ``download-artifact`` a folder
  per artifact (a name uploaded twice without ``overwrite`` fails, as on GitHub).

``python -m pip install`` runs through a stand-in that checks what a real install would need
(a local requirement such as ``.[test]`` must be a project folder, which it is only after a
checkout) and installs nothing: the package under test is already installed here.

Every job gets a fresh workspace and ``RUNNER_TEMP`` at the same paths, as GitHub's hosted
runners have: paths cached by one job are valid in another.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent  # condamatrix, pytest, actionlint
INHERITED_NOT = ("GITHUB_", "RUNNER_", "PYTEST_", "CONDAMATRIX_", "NO_COLOR", "FORCE_COLOR")


def load_workflow(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


# -- expressions -------------------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||<=|>=|[!<>().,\[\]*])"
    r"|(?P<name>[A-Za-z_][\w-]*))"
)


class _Filtered(list[Any]):
    """The result of ``.*``: a property of it is that property of each item."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read expression {text!r} at {pos}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b) or a is None or b is None:
        return bool(a == b)

    # GitHub turns both sides into numbers when their types differ
    def number(v: Any) -> float:
        if v is None or v == "":
            return 0.0
        if isinstance(v, bool):
            return float(v)
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    return number(a) == number(b)


class Evaluator:
    """GitHub's expression language, the part that workflows here use."""

    def __init__(self, contexts: Mapping[str, Any], status: Mapping[str, bool]) -> None:
        self.contexts = contexts
        self.status = status  # success, failure, cancelled, always
        self.functions: dict[str, Callable[..., Any]] = {
            "fromjson": lambda s: json.loads(s),
            "tojson": lambda v: json.dumps(v, indent=2),
            "join": lambda items, sep=",": (
                sep.join(to_string(i) for i in items)
                if isinstance(items, list)
                else to_string(items)
            ),
            "format": lambda f, *a: re.sub(r"\{(\d+)\}", lambda m: to_string(a[int(m[1])]), f),
            "contains": lambda h, n: (
                n in h if isinstance(h, list) else to_string(n).lower() in to_string(h).lower()
            ),
            "startswith": lambda s, p: to_string(s).lower().startswith(to_string(p).lower()),
            "endswith": lambda s, p: to_string(s).lower().endswith(to_string(p).lower()),
        }

    def evaluate(self, text: str) -> Any:
        self._tokens = _tokens(text)
        self._pos = 0
        value = self._or()
        if self._pos != len(self._tokens):
            raise ValueError(f"unexpected {self._tokens[self._pos]} in {text!r}")
        return value

    def _peek(self) -> str | None:
        return self._tokens[self._pos][1] if self._pos < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        token = self._tokens[self._pos]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, got {token[1]!r}")
        self._pos += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value or right
        return value

    def _and(self) -> Any:
        value = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            value = value and right
        return value

    def _compare(self) -> Any:
        value = self._unary()
        if self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._unary()
            return _equal(value, right) is (op == "==")
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not self._unary()
        return self._postfix(self._primary())

    def _postfix(self, value: Any) -> Any:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                _, name = self._take()
                if name == "*":
                    items = value.values() if isinstance(value, dict) else value or []
                    value = _Filtered(items)
                else:
                    value = self._property(value, name)
            else:
                key = self._or()
                self._take("]")
                value = self._property(value, to_string(key))
        return value

    @staticmethod
    def _property(value: Any, name: str) -> Any:
        if isinstance(value, _Filtered):
            return _Filtered(Evaluator._property(v, name) for v in value)
        if isinstance(value, dict):
            lowered = {str(k).lower(): v for k, v in value.items()}
            return lowered.get(name.lower())
        return None

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "name":
            raise ValueError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            name = text.lower()
            if name in ("success", "failure", "cancelled", "always"):
                return self.status[name]
            return self.functions[name](*args)
        return self.contexts.get(text)


STATUS_FUNCTION = re.compile(r"\b(success|failure|cancelled|always)\s*\(", re.IGNORECASE)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def substitute(text: str, evaluator: Evaluator) -> str:
    return EXPRESSION.sub(lambda m: to_string(evaluator.evaluate(m.group(1))), text)


def condition(text: Any, evaluator: Evaluator) -> bool:
    if isinstance(text, bool):
        return text
    text = str(text).strip()
    match = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.DOTALL)
    if match:
        text = match.group(1)
    if not STATUS_FUNCTION.search(text):
        text = f"success() && ({text})"
    return bool(evaluator.evaluate(text))


# -- the runner --------------------------------------------------------------------------------

PIP_STAND_IN = """\
import os, sys
args = sys.argv[1:]
if args[:3] == ["-m", "pip", "install"]:
    for req in args[3:]:
        if req.startswith("-"):
            continue
        local = req.split("[")[0]
        if local.startswith((".", "/")) or os.sep in local:
            if not any(os.path.isfile(os.path.join(local, f)) for f in ("pyproject.toml", "setup.py")):
                sys.exit(f"ERROR: Directory {local!r} is not installable. Neither 'setup.py' nor "
                         "'pyproject.toml' found.")
        print(f"(pip stand-in) would install {req}")
    sys.exit(0)
os.execv(REAL, [REAL, *args])
"""


@dataclass
class JobRun:
    """What a job left: its result, outputs, log and step summary."""

    name: str
    result: str = "success"  # or failure, skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def text(self) -> str:
        return "\n".join(self.log)


class LocalRunner:
    """Runs the jobs of workflows from ``repo`` on this machine; see the module docstring."""

    def __init__(self, root: Path, repo: Path, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.repo = repo
        self.workspace = root / "runner" / "work" / "repo"
        self.temp = root / "runner" / "temp"
        self.artifacts = root / "artifacts"  # a folder per artifact, for the whole run
        self.caches = root / "caches"  # a folder per cache key
        self.shims = root / "shims"
        self.shims.mkdir(parents=True, exist_ok=True)
        (self.shims / "python").write_text(
            f"#!{sys.executable}\nREAL = {sys.executable!r}\n" + PIP_STAND_IN
        )
        (self.shims / "python").chmod(0o755)
        self.env = dict(env or {})
        self.run_id = "4242"

    # One job, one matrix combination.
    def run_job(
        self,
        workflow: dict[str, Any],
        job_id: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        matrix: Mapping[str, Any] | None = None,
        needs: Mapping[str, JobRun] | None = None,
    ) -> JobRun:
        job = workflow["jobs"][job_id]
        run = JobRun(name=f"{job_id} {json.dumps(dict(matrix or {}))}")
        needs_context = {
            name: {"result": done.result, "outputs": done.outputs}
            for name, done in (needs or {}).items()
        }
        for dir_ in (self.workspace, self.temp):
            shutil.rmtree(dir_, ignore_errors=True)
            dir_.mkdir(parents=True)
        contexts: dict[str, Any] = {
            "inputs": dict(inputs or {}),
            "matrix": dict(matrix or {}),
            "needs": needs_context,
            "steps": run.steps,
            "runner": {"temp": str(self.temp), "os": "Linux"},
            "github": {
                "workspace": str(self.workspace),
                "job": job_id,
                "run_id": self.run_id,
                "run_attempt": "1",
                "ref": "refs/heads/main",
                "workflow": workflow.get("name", ""),
            },
            "env": {},
        }
        needs_ok = all(done.result == "success" for done in (needs or {}).values())
        status = {"success": needs_ok, "failure": not needs_ok, "cancelled": False, "always": True}
        evaluator = Evaluator(contexts, status)
        if not condition(job.get("if", "success()"), evaluator):
            run.result = "skipped"
            return run
        env: dict[str, str] = {}
        for scope in (workflow.get("env", {}), job.get("env", {})):
            env.update({k: substitute(to_string(v), evaluator) for k, v in scope.items()})
        defaults = {
            **workflow.get("defaults", {}).get("run", {}),
            **job.get("defaults", {}).get("run", {}),
        }
        github_env = self.temp / "_github_env"
        github_env.write_text("")
        failed = False
        for index, step in enumerate(job["steps"]):
            step_id = step.get("id", f"__{index}")
            label = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
            contexts["env"] = {**env, **_read_env(github_env)}
            status["success"], status["failure"] = not failed, failed
            if not condition(step.get("if", "success()"), evaluator):
                run.log.append(f"-- skipped: {label}")
                run.steps[step_id] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            run.log.append(f"-- {label}")
            outputs, ok = self._step(step, evaluator, contexts["env"], defaults, github_env, run)
            outcome = "success" if ok else "failure"
            run.steps[step_id] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}
            if not ok:
                run.log.append(f"-- failed: {label}")
                failed = True
        run.result = "failure" if failed else "success"
        status["success"], status["failure"] = not failed, failed
        run.outputs = {
            k: substitute(to_string(v), evaluator) for k, v in job.get("outputs", {}).items()
        }
        return run

    def _step(
        self,
        step: dict[str, Any],
        evaluator: Evaluator,
        env: dict[str, str],
        defaults: dict[str, Any],
        github_env: Path,
        run: JobRun,
    ) -> tuple[dict[str, str], bool]:
        with_ = {k: substitute(to_string(v), evaluator) for k, v in step.get("with", {}).items()}
        if "uses" in step:
            return self._action(step["uses"], with_, run)
        output = self.temp / "_github_output"
        summary = self.temp / "_step_summary"
        output.write_text("")
        summary.write_text("")
        step_env = {k: substitute(to_string(v), evaluator) for k, v in step.get("env", {}).items()}
        workdir = substitute(
            str(step.get("working-directory", defaults.get("working-directory", "."))), evaluator
        )
        shell = step.get("shell", defaults.get("shell", "bash"))
        assert shell == "bash", f"only bash steps are run here, not {shell}"
        script = self.temp / "_step.sh"
        script.write_text(substitute(step["run"], evaluator))
        full_env = {
            # a runner has none of this machine's GitHub, pytest or condamatrix settings
            **{k: v for k, v in os.environ.items() if not k.startswith(INHERITED_NOT)},
            "PATH": os.pathsep.join([str(self.shims), str(BIN), os.environ.get("PATH", "")]),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_ENV": str(github_env),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(self.temp),
            **self.env,
            **env,
            **step_env,
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace / workdir,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        run.log.append(proc.stdout + proc.stderr)
        run.summary += summary.read_text()
        return _read_outputs(output), proc.returncode == 0

    def _action(self, uses: str, with_: dict[str, str], run: JobRun) -> tuple[dict[str, str], bool]:
        name = uses.split("@")[0]
        if name == "actions/checkout":
            shutil.copytree(self.repo, self.workspace, dirs_exist_ok=True)
            return {}, True
        if name == "actions/setup-python":
            return {"python-version": with_.get("python-version", "")}, True
        if name == "actions/cache/restore":
            stored = self.caches / with_["key"]
            if not stored.is_dir():
                run.log.append(f"cache miss: {with_['key']}")
                return {"cache-hit": "false"}, True
            shutil.copytree(stored, self._path(with_["path"]), dirs_exist_ok=True, symlinks=True)
            run.log.append(f"cache restored: {with_['key']}")
            return {"cache-hit": "true", "cache-matched-key": with_["key"]}, True
        if name == "actions/cache/save":
            stored = self.caches / with_["key"]
            if stored.exists():  # GitHub warns and keeps the first entry
                run.log.append(f"cache entry {with_['key']} exists: not saved")
                return {}, True
            shutil.copytree(self._path(with_["path"]), stored, symlinks=True)
            run.log.append(f"cache saved: {with_['key']}")
            return {}, True
        if name == "actions/upload-artifact":
            return self._upload(with_, run)
        if name == "actions/download-artifact":
            return self._download(with_, run)
        raise AssertionError(f"no local stand-in for {uses}")

    def _path(self, text: str) -> Path:
        return self.workspace / Path(text).expanduser()  # an absolute path stays one

    def _upload(self, with_: dict[str, str], run: JobRun) -> tuple[dict[str, str], bool]:
        name = with_.get("name", "artifact")
        files = [
            p
            for line in with_["path"].splitlines()
            if line.strip()
            for p in [self._path(line.strip())]
            if p.exists()
        ]
        if not files:
            run.log.append(f"no files for artifact {name}")
            return {}, with_.get("if-no-files-found", "warn") != "error"
        target = self.artifacts / name
        if target.exists():
            if with_.get("overwrite", "false") != "true":
                run.log.append(f"an artifact named {name} exists already (409 Conflict)")
                return {}, False
            shutil.rmtree(target)
        base = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in files]))
        for path in files:
            dest = target / path.relative_to(base)
            if path.is_dir():
                shutil.copytree(path, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
        run.log.append(f"uploaded artifact {name}")
        return {"artifact-id": name}, True

    def _download(self, with_: dict[str, str], run: JobRun) -> tuple[dict[str, str], bool]:
        names = sorted(p.name for p in self.artifacts.iterdir()) if self.artifacts.is_dir() else []
        if "name" in with_:
            names = [n for n in names if n == with_["name"]] or [with_["name"]]
        elif "pattern" in with_:
            names = [n for n in names if fnmatch.fnmatchcase(n, with_["pattern"])]
        dest = self._path(with_.get("path", "."))
        merge = with_.get("merge-multiple", "false") == "true" or "name" in with_
        for name in names:
            source = self.artifacts / name
            if not source.is_dir():
                run.log.append(f"artifact {name} not found")
                return {}, False
            shutil.copytree(source, dest if merge else dest / name, dirs_exist_ok=True)
        run.log.append(f"downloaded {', '.join(names) or 'no artifact'}")
        return {"download-path": str(dest)}, True

    # A whole workflow: jobs in the order of their `needs`, a matrix job once per entry.
    def run_workflow(
        self, workflow: dict[str, Any], inputs: Mapping[str, Any] | None = None
    ) -> dict[str, list[JobRun]]:
        given = dict(inputs or {})
        declared = (workflow["on"] or {}).get("workflow_call", {}) or {}
        for name, spec in (declared.get("inputs") or {}).items():
            given.setdefault(name, spec.get("default"))
        done: dict[str, list[JobRun]] = {}
        for job_id in _job_order(workflow["jobs"]):
            job = workflow["jobs"][job_id]
            needs = {n: _combined(done[n]) for n in _needs(job)}
            matrix = job.get("strategy", {}).get("matrix")
            if matrix is None:
                done[job_id] = [self.run_job(workflow, job_id, inputs=given, needs=needs)]
                continue
            needs_ok = all(r.result == "success" for r in needs.values())
            status = {"success": needs_ok, "failure": not needs_ok, "cancelled": False}
            status["always"] = True
            evaluator = Evaluator(
                {
                    "inputs": given,
                    "needs": {
                        n: {"result": r.result, "outputs": r.outputs} for n, r in needs.items()
                    },
                },
                status,
            )
            if not condition(job.get("if", "success()"), evaluator):
                done[job_id] = [JobRun(name=job_id, result="skipped")]
                continue
            if isinstance(matrix, str):
                matrix = evaluator.evaluate(EXPRESSION.fullmatch(matrix.strip()).group(1))  # type: ignore[union-attr]  # no match: a malformed matrix fails loudly
            entries = matrix.get("include", [])
            done[job_id] = [
                self.run_job(workflow, job_id, inputs=given, matrix=entry, needs=needs)
                for entry in entries
            ]
        return done

    def run_caller(self, caller: dict[str, Any]) -> dict[str, dict[str, list[JobRun]]]:
        """A workflow whose jobs call local reusable workflows (``uses: ./...``): each call
        runs in this one workflow run, so the calls share its artifacts."""
        calls: dict[str, dict[str, list[JobRun]]] = {}
        for job_id in _job_order(caller["jobs"]):
            job = caller["jobs"][job_id]
            assert job["uses"].startswith("./"), "only local reusable workflows run here"
            called = load_workflow((self.repo / job["uses"]).read_text())
            calls[job_id] = self.run_workflow(called, job.get("with", {}))
        return calls


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _job_order(jobs: dict[str, Any]) -> list[str]:
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [j for j in jobs if j not in order and all(n in order for n in _needs(jobs[j]))]
        assert ready, "jobs' needs form a cycle"
        order.extend(ready)
    return order


def _combined(runs: list[JobRun]) -> JobRun:
    """A matrix job as `needs` sees it: failed if one entry failed; the last outputs."""
    result = "success"
    if any(r.result == "failure" for r in runs):
        result = "failure"
    elif runs and all(r.result == "skipped" for r in runs):
        result = "skipped"
    outputs: dict[str, str] = {}
    for r in runs:
        outputs.update({k: v for k, v in r.outputs.items() if v})
    return JobRun(name=runs[0].name if runs else "", result=result, outputs=outputs)


def _read_outputs(path: Path) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` blocks, as GitHub reads them."""
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


def _read_env(path: Path) -> dict[str, str]:
    return _read_outputs(path) if path.exists() else {}


def caller_workflow(calls: Mapping[str, Mapping[str, str]], path: str) -> str:
    """A workflow that calls the reusable one at ``path`` once per entry of ``calls``."""
    jobs = {job: {"uses": path, "with": dict(inputs)} for job, inputs in calls.items()}
    data = {"name": "calls", "on": {"push": None}, "permissions": {"contents": "read"}}
    return yaml.safe_dump({**data, "jobs": jobs}, sort_keys=False)
