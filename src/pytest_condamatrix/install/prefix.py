"""Where a cell's env keeps its Python: its full version, and its site-packages.

Apart from requirements.py: a run that installs nothing but the project's metadata needs
these, and not the requirement parsing that imports ``packaging``.
"""

from __future__ import annotations

import json
from pathlib import Path


def env_python_version(prefix: Path, minor: str) -> str:
    """The full version of the env's Python, from its conda record (no interpreter start)."""
    for record in sorted((prefix / "conda-meta").glob("python-3*.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("name") == "python":
            return str(data.get("version", minor))
    return minor


def site_packages(prefix: Path, minor: str) -> Path:
    return prefix / "lib" / f"python{minor}" / "site-packages"
