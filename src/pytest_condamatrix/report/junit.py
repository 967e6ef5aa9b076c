"""One JUnit XML file for the whole matrix: one ``<testsuite>`` per cell, named by its id.

The file follows the schema that pytest's own ``junit_family=xunit2`` output follows
(``junit-10.xsd``). Many readers (GitHub test-report actions, Jenkins, GitLab) look only at
a test case's ``classname`` and ``name``, so the cell leads the ``classname``:
``py3.9-cpu.tests.test_x.TestK`` + ``test_y[1]``. The same test in two cells is then two
test cases, each with its own history, grouped by cell, and ``name`` stays pytest's. Every
suite also has ``python``, ``cuda`` and ``env_key`` properties. A cell that never ran tests
(its env failed, it crashed before collecting) gets one ``<error>`` test case so that the
failure is visible in any viewer.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from xml.etree import ElementTree as ET

from .. import atomic
from ..results import Category, CellResult, CellStatus, RunResult

#: statuses of a cell that ran no test case and is not broken
OK_WITHOUT_TESTS = (CellStatus.PASSED, CellStatus.NO_TESTS, CellStatus.NOT_RUN)

# XML 1.0 forbids most control characters; test output can contain any of them.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text)


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``tests/test_a.py::TestX::test_y[1]`` -> (``tests.test_a.TestX``, ``test_y[1]``)."""
    parts = nodeid.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".").replace("\\", ".")
    if len(parts) == 1:
        return module, parts[0]
    return ".".join([module, *parts[1:-1]]), parts[-1]


def classname_in_cell(cell: str, nodeid: str) -> tuple[str, str]:
    """(``classname``, ``name``) of a test in a cell: the cell leads the classname."""
    classname, name = split_nodeid(nodeid)
    return f"{cell}.{classname}", name


def _suite(cell: CellResult, hostname: str) -> ET.Element:
    # the suite's counts are those of its testcases (deselected tests or warnings have none)
    outcomes = [t.outcome for t in cell.tests]
    failures = outcomes.count(Category.FAILED)
    errors = outcomes.count(Category.ERROR)
    skipped = outcomes.count(Category.SKIPPED) + outcomes.count(Category.XFAILED)
    no_tests_but_broken = not cell.tests and cell.status not in OK_WITHOUT_TESTS
    if no_tests_but_broken:
        errors += 1
    suite = ET.Element(
        "testsuite",
        {
            "name": cell.cell,
            "tests": str(len(cell.tests) + (1 if no_tests_but_broken else 0)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": str(skipped),
            "time": f"{cell.test_seconds:.3f}",
            "hostname": hostname,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("python", cell.python),
        ("cuda", cell.cuda),
        ("env_key", cell.env_key),
        ("env_status", cell.env_status),
        ("cell_status", cell.status),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
    for test in cell.tests:
        classname, name = classname_in_cell(cell.cell, test.nodeid)
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": _clean(classname), "name": _clean(name), "time": f"{test.duration:.3f}"},
        )
        if test.outcome == Category.FAILED:
            element = ET.SubElement(case, "failure", {"message": _clean(test.message)})
            element.text = _clean(test.longrepr)
        elif test.outcome == Category.ERROR:
            element = ET.SubElement(
                case, "error", {"message": _clean(test.message or f"error in {test.when}")}
            )
            element.text = _clean(test.longrepr)
        elif test.outcome in ("skipped", "xfailed"):
            ET.SubElement(case, "skipped", {"message": _clean(test.message)})
    if no_tests_but_broken:
        case = ET.SubElement(suite, "testcase", {"classname": cell.cell, "name": "environment"})
        element = ET.SubElement(
            case,
            "error",
            {"message": _clean(cell.message.splitlines()[0] if cell.message else cell.status)},
        )
        element.text = _clean(cell.message)
    return suite


def to_junit(run: RunResult) -> ET.ElementTree[ET.Element]:
    hostname = socket.gethostname()
    root = ET.Element("testsuites", {"name": "conda matrix", "time": f"{run.duration:.3f}"})
    totals = {"tests": 0, "failures": 0, "errors": 0}  # the schema has no total of skipped
    for cell in run.cells:
        suite = _suite(cell, hostname)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    return ET.ElementTree(root)


def write_junit(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = to_junit(run)
    ET.indent(tree)
    with atomic.open_atomic(path, "wb") as fh:
        tree.write(fh, encoding="utf-8", xml_declaration=True)
