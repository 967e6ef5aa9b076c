"""The report files a run writes (JSON, JUnit XML, Markdown, the GitHub step summary), and
the check, before the run, that their paths can be written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from .. import validate
from ..errors import UsageError
from ..results import RunResult, write_json


class ReportPaths(Protocol):
    """The report paths asked for (SessionOptions has them), relative to ``cwd``."""

    @property
    def cwd(self) -> Path: ...
    @property
    def json_path(self) -> Path | None: ...
    @property
    def junit_path(self) -> Path | None: ...
    @property
    def markdown_path(self) -> Path | None: ...


def check_report_paths(options: ReportPaths) -> None:
    """Refuse report paths that cannot be written, or that two reports share, with the
    option that named them."""
    validate.check_distinct_outputs(
        {
            "--conda-matrix-json": options.json_path and options.cwd / options.json_path,
            "--conda-matrix-junit (or --junitxml)": options.junit_path
            and options.cwd / options.junit_path,
            "--conda-matrix-markdown": options.markdown_path
            and options.cwd / options.markdown_path,
        }
    )
    for label, value in (
        ("--conda-matrix-json", options.json_path),
        ("--conda-matrix-junit (or --junitxml)", options.junit_path),
        ("--conda-matrix-markdown", options.markdown_path),
    ):
        if value is None:
            continue
        path = options.cwd / value
        why = "it is a folder" if path.is_dir() else ""
        for parent in path.parents:
            if not parent.exists():
                continue
            if not parent.is_dir():
                why = f"{parent} is a file, not a folder"
            elif not os.access(parent, os.W_OK):
                why = f"the folder {parent} is not writable"
            break
        if why:
            raise UsageError(f"{label} {value}: cannot write there: {why}", hint="give a file path")


def write_reports(run: RunResult, options: ReportPaths) -> list[str]:
    """Write the requested report files; returns one note per file written."""
    from ..report.junit import write_junit  # here: most runs write no report file
    from ..report.markdown import write_markdown

    notes = []
    try:
        if options.json_path:
            write_json(run, options.cwd / options.json_path)
            notes.append(f"results: {options.cwd / options.json_path}")
        if options.junit_path:
            write_junit(run, options.cwd / options.junit_path)
            notes.append(f"junit: {options.cwd / options.junit_path}")
        if options.markdown_path:
            write_markdown(run, options.cwd / options.markdown_path)
            notes.append(f"markdown: {options.cwd / options.markdown_path}")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            write_markdown(run, Path(summary), append=True)
            notes.append("summary appended to $GITHUB_STEP_SUMMARY")
    except OSError as exc:  # a full disk, or a path that changed since the run began
        raise UsageError(
            f"cannot write a report to {exc.filename}: {exc.strerror or exc}",
            hint="check the report paths given, and the free disk space",
        ) from None
    return notes
