"""The install overlay's parts, without envs: sources, requirements, overlay, settings."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_condamatrix.config import parse_config
from pytest_condamatrix.errors import ConfigError, InstallError
from pytest_condamatrix.install import InstallSettings
from pytest_condamatrix.install.metadata import requires_dist, write_static_metadata
from pytest_condamatrix.install.overlay import install_wheel
from pytest_condamatrix.install.project import read_project
from pytest_condamatrix.install.requirements import fix_for, installed, missing
from pytest_condamatrix.install.sources import scan_sources


def test_sources_skip_outputs_and_see_changes(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "src" / "pkg" / "_c.cpython-312-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    for skipped in ("build", ".tox", "src/pkg.egg-info", "src/pkg/__pycache__"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "f.py").write_text("")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    before = scan_sources(tmp_path)
    assert list(before.files) == ["src/pkg/__init__.py"]
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("x = 2\n")
    after = scan_sources(tmp_path)
    assert after.digest != before.digest
    assert after.changes_since(before.files) == ["src/pkg/__init__.py"]


def test_editable_installs_ignore_edits_of_python_modules(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "_c.c").write_text("int x;\n")
    first = scan_sources(tmp_path).editable_digest
    (tmp_path / "pkg" / "__init__.py").write_text("x = 2\n")
    assert scan_sources(tmp_path).editable_digest == first  # imported from the tree
    (tmp_path / "pkg" / "new.py").write_text("")
    second = scan_sources(tmp_path).editable_digest
    assert second != first  # a new module may need a new editable wheel
    (tmp_path / "pkg" / "_c.c").write_text("int y;\n")
    assert scan_sources(tmp_path).editable_digest != second  # compiled code is rebuilt


def test_sources_follow_git_ignore(tmp_path: Path) -> None:
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    if subprocess.run([*git, "init", "-q", str(tmp_path)], check=False).returncode != 0:
        pytest.skip("git is not usable here")
    (tmp_path / ".gitignore").write_text("results-*.json\n")
    (tmp_path / "mod.py").write_text("")
    (tmp_path / "results-1.json").write_text("{}")
    assert sorted(scan_sources(tmp_path).files) == [".gitignore", "mod.py"]


def test_missing_requirements_follow_markers_and_extras() -> None:
    have = installed([])
    assert missing(["numpy; python_version < '3.0'"], have, "3.12.1") == []
    lacking = missing(["numpy>=1.24", "hypothesis; extra == 'test'"], have, "3.12.1", ["test"])
    assert [r.name for r in lacking] == ["numpy", "hypothesis"]
    assert missing(["hypothesis; extra == 'test'"], have, "3.12.1") == []
    hint = fix_for(lacking[0])
    assert "'numpy >=1.24' to dependencies" in hint and "'numpy>=1.24' to pip" in hint


def test_installed_reads_dist_info_names(tmp_path: Path) -> None:
    (tmp_path / "typing_extensions-4.16.0.dist-info").mkdir()
    have = installed([tmp_path])
    assert str(have["typing-extensions"]) == "4.16.0"
    assert missing(["typing_extensions>=4"], have, "3.11.4") == []
    assert [str(r) for r in missing(["typing-extensions>=5"], have, "3.11.4")] == [
        "typing-extensions>=5"
    ]


def _wheel(path: Path) -> Path:
    wheel = path / "tool-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tool/__init__.py", "def main():\n    print('hi')\n    return 3\n")
        zf.writestr("tool-1.0.dist-info/METADATA", "Name: tool\nVersion: 1.0\nRequires-Dist: a\n")
        zf.writestr("tool-1.0.dist-info/entry_points.txt", "[console_scripts]\ntool = tool:main\n")
        zf.writestr("tool-1.0.data/scripts/raw", "#!python\nprint('raw')\n")
        zf.writestr("extra.pth", "import sys; sys.condamatrix_pth = True\n")
    return wheel


def test_overlay_install_scripts_and_pth(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    scripts = install_wheel(_wheel(tmp_path), overlay, Path(sys.executable))
    assert scripts == ["tool"]
    assert requires_dist(overlay / "site") == ("a",)
    assert (overlay / "bin" / "raw").read_text().startswith(f"#!{sys.executable}\n")
    # the console script finds the overlay without PYTHONPATH
    proc = subprocess.run([str(overlay / "bin" / "tool")], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (3, "hi\n")
    # sitecustomize makes the overlay a site dir: its .pth files run
    code = "import sys, importlib.metadata as m; print(sys.condamatrix_pth, m.version('tool'))"
    env = {"PYTHONPATH": f"{overlay / 'boot'}:{overlay / 'site'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.stdout.strip() == "True 1.0", proc.stderr


def test_static_metadata_for_install_none(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'My_Tool'\nversion = '2.0'\ndependencies = ['a>=1']\n"
        "[project.optional-dependencies]\ntest = ['b; python_version > \"3\"']\n"
        "[project.scripts]\nmy-tool = 'my_tool.cli:main'\n"
    )
    project = read_project(tmp_path)
    requirements = write_static_metadata(project, tmp_path / "o", Path(sys.executable))
    assert requirements == ("a>=1", 'b; (python_version > "3") and extra == "test"')
    assert (tmp_path / "o" / "site" / "my_tool-2.0.dist-info" / "METADATA").is_file()
    assert (tmp_path / "o" / "bin" / "my-tool").is_file()
    assert not project.has_build_system


def test_config_install_keys(tmp_path: Path) -> None:
    config = parse_config(
        {"python": ["3.12"], "install": "editable", "install-extras": ["test"]},
        source=None,
        root=tmp_path,
    )
    assert (config.install, config.install_extras) == ("editable", ("test",))
    with pytest.raises(ConfigError, match="install: 'wheels' is not allowed") as err:
        parse_config({"python": ["3.12"], "install": "wheels"}, source=None, root=tmp_path)
    assert "did you mean 'wheel'" in str(err.value)


def test_default_mode_follows_the_build_system(tmp_path: Path) -> None:
    config = parse_config({"python": ["3.12"]}, source=None, root=tmp_path)
    assert InstallSettings.from_config(config, None, tmp_path).mode == "none"
    (tmp_path / "pyproject.toml").write_text("[build-system]\nrequires = ['setuptools']\n")
    assert InstallSettings.from_config(config, None, tmp_path).mode == "wheel"
    assert InstallSettings.from_config(config, "none", tmp_path).mode == "none"


def _slip_wheel(path: Path) -> Path:
    """A wheel with a member that would land outside the target (a "zip slip")."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "slip-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: slip\nVersion: 1.0\n"
        )
        zf.writestr(
            "slip-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("slip-1.0.dist-info/RECORD", "")
        zf.writestr("../../escaped.py", "print('out')\n")
    return path


def test_a_wheel_member_outside_the_target_is_refused_by_the_overlay_and_the_channel(
    tmp_path: Path,
) -> None:
    from pytest_condamatrix.localchannel.errors import ChannelBuildError
    from pytest_condamatrix.localchannel.wheels import extract_wheel, read_wheel

    wheel = _slip_wheel(tmp_path / "slip-1.0-py3-none-any.whl")
    with pytest.raises(InstallError, match=r"unsafe path '\.\./\.\./escaped\.py'"):
        install_wheel(wheel, tmp_path / "overlay", Path(sys.executable))
    with pytest.raises(ChannelBuildError, match=r"unsafe member path '\.\./\.\./escaped\.py'"):
        extract_wheel(read_wheel(wheel), tmp_path / "channel")
    assert not (tmp_path.parent / "escaped.py").exists()
    assert not list(tmp_path.rglob("escaped.py"))
