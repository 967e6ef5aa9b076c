"""The README and the guides say what the code does (as a newcomer reads them)."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_condamatrix.ci.init_ci import ACTIONS, USES
from pytest_condamatrix.cli.demo import DEMO_PYTHONS, demo_cells
from pytest_condamatrix.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
CI = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")


def test_the_readme_shows_the_demo_as_it_runs() -> None:
    _, cells = demo_cells(DEMO_PYTHONS, [])
    assert len(cells) == 9
    block = README[README.index("$ condamatrix demo") :]
    block = block[: block.index("```")]
    shown = re.findall(r"^│ (py[\w.-]+) ", block, re.MULTILINE)
    assert shown == cells
    assert f"{len(cells)} cells ({len(cells)} passed)" in block
    assert "in nine real\nconda environments" in README
    assert "three real" not in README and "3 cells" not in README


def test_the_readme_names_every_command_a_newcomer_needs() -> None:
    subparsers = build_parser()._subparsers
    assert subparsers is not None
    commands = set(subparsers._group_actions[0].choices or ())
    for command in ("demo", "local-channel", "run", "shell", "env"):
        assert command in commands
        assert f"condamatrix {command}" in README, command


def test_the_ci_guide_names_the_actions_the_templates_use() -> None:
    named = {(repo, ref) for _, repo, _, ref in USES.findall(CI)}
    named |= set(re.findall(r"`(actions/[\w-]+)(?:/[\w-]+)?@(v\d+)`", CI))
    assert named
    for repo, ref in named:
        assert ACTIONS[repo].major == ref, f"{repo}@{ref}"
    assert "--pin-sha" in CI and "report-artifact" in CI
