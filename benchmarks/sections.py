"""Sections of docs/benchmarks.md that commands other than ``python -m benchmarks`` write.

Each lies between its two markers; regenerating the page keeps them as they are.
"""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).parents[1] / "docs" / "benchmarks.md"
INSTALL_COST = ("<!-- install-cost:start -->", "<!-- install-cost:end -->")
REPORTS_COST = ("<!-- reports-cost:start -->", "<!-- reports-cost:end -->")
KEPT = (INSTALL_COST, REPORTS_COST)


def kept_sections(page: Path) -> str:
    """The kept sections of ``page``, for the page's generator to append."""
    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        return ""
    found = []
    for start, end in KEPT:
        if start in text and end in text:
            found.append("\n" + text[text.index(start) : text.index(end) + len(end)] + "\n")
    return "".join(found)


def write_section(text: str, markers: tuple[str, str], page: Path = PAGE) -> None:
    """Put ``text`` (which starts and ends with ``markers``) in place of its old section."""
    start, end = markers
    old = page.read_text(encoding="utf-8")
    if start in old and end in old:
        new = old[: old.index(start)] + text.strip() + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    page.write_text(new, encoding="utf-8")
