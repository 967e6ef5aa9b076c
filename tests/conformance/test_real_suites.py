"""The matrix says what pytest says: real projects' suites, cell by cell, category by category.

Each suite is a pinned sdist from PyPI (downloaded once, kept by its sha256 under the test
cache). It runs once through ``pytest --conda-matrix``, then directly with
``<prefix>/bin/python -m pytest`` in every cell's own env prefix, with the same arguments and
import path; the counts of the matrix for each cell must equal those of pytest's own summary
line there. Together the suites cover unittest ``subTest`` on pytest 9 (counted as subtests)
and pytest 8 (not), xfail, heavy parametrize, ``--doctest-modules``, a conftest.py that
pytest 9 refuses while pytest 8 takes it (cells that end before reporting),
``--strict-config`` with ``-p no:cacheprovider``, and pytest-xdist and pytest-cov inside
the cells.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_condamatrix.localchannel import LocalChannel

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Suite:
    sdist: str  # name==version
    sha256: str
    args: tuple[str, ...]
    pythonpath: str = "."
    pip: tuple[str, ...] = ()
    covers: str = ""
    #: pytest summary categories expected in some cell (proves the case is exercised)
    expect: tuple[str, ...] = field(default=())


SUITES = (
    Suite(
        "more-itertools==10.7.0",
        "9fddd5403be01a94b204faadcff459ec3568cf110265d3c54323e1e866ad29d3",
        # -q: pytest 9 counts passed subtests unless at its default verbosity
        (
            "tests",
            "--doctest-modules",
            "more_itertools",
            "-q",
            "-k",
            "not test_primes and not test_large and not test_nested_remainder",
        ),
        covers="unittest subTest (subtests on pytest 9, not on 8), doctests, -q",
        expect=("subtests passed",),
    ),
    Suite(
        "toolz==1.0.0",
        "2c86e3d9a04798ac556793bced838816296a2f085017664e4995cb40a1047a02",
        ("--doctest-modules", "toolz"),
        covers="--doctest-modules over a package with its tests inside",
    ),
    Suite(
        "boltons==25.0.0",
        "e110fbdc30b7b9868cb604e3f71d4722dd8f4dcb4a5ddd06028ba8f1ab0b5ace",
        ("tests",),
        covers="a conftest.py that pytest 9 refuses (an old hook signature): those cells end "
        "before reporting, and must say why",
    ),
    Suite(
        "six==1.17.0",
        "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
        ("test_six.py", "-k", "not test_lazy"),
        covers="parametrize, skips by Python version, -k deselection",
        expect=("deselected",),
    ),
    Suite(
        "exceptiongroup==1.3.0",
        "b241f5885f560bc56a59ee63ca4c6a8bfa46ae4ad651af316d4e81817bb9fd88",
        ("-p", "no:cacheprovider"),
        pythonpath="src",
        pip=("typing-extensions>=4.6.0",),  # its declared requirement, checked in every mode
        covers="subTest, --strict-config in addopts with -p no:cacheprovider",
    ),
    Suite(
        "chardet==5.2.0",
        "1b3b6ff479a8c414bc3fa2c0852995695c4a026dcd6d0633b2dd092ca39c1cf7",
        ("test.py", "-k", "turkish or IBM855"),
        covers="xfail, heavy parametrize over data files, -k, warnings",
        expect=("xfailed", "deselected", "warnings"),
    ),
    Suite(
        "semver==3.0.4",
        "afc7d8c584a5ed0a11033af086e8af226a9c0b206f313e0301f8dd7b6b589602",
        ("tests",),
        pythonpath="src",
        pip=("pytest-cov==6.2.1",),  # its .pytest.ini asks for --cov
        covers="heavy parametrize, a conftest that imports the project, pytest-cov in cells",
    ),
    Suite(
        "cachetools==6.1.0",
        "b4c4f404392848db3ce7aac34950d17be4d864da4b8b66911008e430bc544587",
        ("tests", "-n", "2"),
        pythonpath="src",
        pip=("pytest-xdist==3.8.0",),
        covers="pytest-xdist inside the cells (-n 2)",
    ),
)

#: pytest's summary line: "==== 3 failed, 10 passed, 2 subtests passed in 0.12s ===="
SUMMARY = re.compile(r"^=*\s*(?P<body>(?:\d+ [a-z][a-z ]*?(?:, )?)+) in [\d.]+s\b")
PART = re.compile(r"(\d+) ([a-z][a-z ]*?)(?:,|$)")


def pytest_counts(output: str) -> dict[str, int]:
    """The counts of pytest's own last summary line, keyed as pytest's categories."""
    for line in reversed(output.splitlines()):
        match = SUMMARY.match(line.strip())
        if match:
            counts = {}
            for n, word in PART.findall(match.group("body")):
                word = word.strip()
                word = {"errors": "error", "warning": "warnings"}.get(word, word)
                counts[word] = int(n)
            return counts
    return {}  # "no tests ran", or pytest ended before its summary


def test_summary_line_parsing() -> None:
    line = "===== 1 failed, 663 passed, 1 skipped, 2332 subtests passed, 2 errors in 3.20s ====="
    assert pytest_counts(line) == {
        "failed": 1,
        "passed": 663,
        "skipped": 1,
        "subtests passed": 2332,
        "error": 2,
    }
    assert pytest_counts("5 passed, 1 warning in 0.01s") == {"passed": 5, "warnings": 1}


def fetch_sdist(spec: str, sha256: str, cache: Path) -> Path:
    """The sdist, from the cache (by content) or downloaded once from the package index."""
    cache.mkdir(parents=True, exist_ok=True)
    kept = cache / f"{sha256}.tar.gz"
    if kept.is_file() and hashlib.sha256(kept.read_bytes()).hexdigest() == sha256:
        return kept
    download = cache / f"download-{os.getpid()}"
    shutil.rmtree(download, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
         ":all:", spec, "-d", str(download)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    files = list(download.glob("*.tar.gz")) if proc.returncode == 0 else []
    if not files:
        shutil.rmtree(download, ignore_errors=True)
        pytest.skip(f"cannot download the sdist of {spec}: {proc.stderr.strip()[-300:]}")
    digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert digest == sha256, f"{spec}: sdist sha256 {digest}, pinned {sha256}"
    files[0].replace(kept)
    shutil.rmtree(download, ignore_errors=True)
    return kept


def unpack(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    (root,) = [p for p in dest.iterdir() if p.is_dir()]
    return root


@pytest.mark.parametrize("suite", SUITES, ids=[s.sdist for s in SUITES])
def test_every_cell_counts_what_pytest_counts(
    suite: Suite, tmp_path: Path, local_channel: LocalChannel, warm_cache: Path
) -> None:
    pythons = list(local_channel.pythons)
    project = unpack(fetch_sdist(suite.sdist, suite.sha256, warm_cache / "sdists"), tmp_path)
    pip = "".join(f"\n  - {p}" for p in suite.pip)
    (project / "condamatrix.yml").write_text(
        textwrap.dedent(f"""\
        python: [{", ".join(f'"{p}"' for p in pythons)}]
        cuda: [cpu]
        channels: ["{local_channel.path}"]
        dependencies: [pytest]
        pythonpath: ["{suite.pythonpath}"]
        install: none  # the direct runs import the sources the same way
        """)
        + (f"pip:{pip}\n" if pip else ""),
        encoding="utf-8",
    )
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONDAMATRIX_"))}
    env["CONDAMATRIX_CACHE_DIR"] = str(warm_cache)
    matrix = subprocess.run(
        [sys.executable, "-m", "pytest", "--conda-matrix", "--conda-matrix-json", str(results),
         *suite.args],
        cwd=project, env=env, capture_output=True, text=True, check=False, timeout=1200,
    )  # fmt: skip
    assert results.is_file(), matrix.stdout[-3000:] + matrix.stderr[-3000:]
    data = json.loads(results.read_text(encoding="utf-8"))
    assert [c["cell"] for c in data["cells"]] == [f"py{p}-cpu" for p in pythons]
    seen: set[str] = set()
    for cell in data["cells"]:
        prefix = Path(cell["env_prefix"])
        direct_env = dict(env, PYTHONPATH=str(project / suite.pythonpath), PYTHONNOUSERSITE="1")
        direct = subprocess.run(
            [str(prefix / "bin" / "python"), "-m", "pytest", *suite.args],
            cwd=project, env=direct_env, capture_output=True, text=True, check=False,
            timeout=600,
        )  # fmt: skip
        expected = pytest_counts(direct.stdout)
        assert cell["counts"] == expected, (
            f"{suite.sdist} in {cell['cell']}: the matrix counted {cell['counts']}, "
            f"pytest itself {expected}\n{direct.stdout[-2000:]}"
        )
        assert cell["exit_code"] == direct.returncode, cell["message"]
        if not any(SUMMARY.match(line.strip()) for line in direct.stdout.splitlines()):
            # pytest ended before its summary: the cell must say why, in pytest's words
            said = [line for line in cell["message"].splitlines()[1:] if len(line) > 10]
            first = cell["message"].splitlines()[0].partition(": ")[2]
            assert any(part in direct.stdout + direct.stderr for part in [first, *said]), (
                f"{cell['cell']}: {cell['message']!r}"
            )
        ids = [(t["nodeid"], t["when"], t["subtest"]) for t in cell["tests"] if not t["subtest"]]
        assert len(ids) == len(set(ids)), "a report was counted twice"
        seen.update(expected)
    missing = [c for c in suite.expect if c not in seen]
    assert not missing, f"{suite.sdist} ({suite.covers}) never showed {missing}"
