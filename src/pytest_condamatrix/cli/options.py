"""Options shared by several ``condamatrix`` subcommands, worded once."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="pyproject.toml or condamatrix.yml to read (default: found from the current "
        "folder upwards)",
    )


def add_cache_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="the cache folder (default: $CONDAMATRIX_CACHE_DIR, else the user cache folder)",
    )
