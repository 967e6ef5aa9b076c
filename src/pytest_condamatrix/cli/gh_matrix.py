"""``condamatrix gh-matrix``: the configured cells as a GitHub Actions ``strategy.matrix``
(what it prints, and its keys: :mod:`..ci.gh_matrix`, imported when the command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import Subcommands, add_command, add_config_option


def add_parsers(sub: Subcommands) -> None:
    parser = add_command(
        sub,
        "gh-matrix",
        run,
        help="print the cells as a GitHub Actions strategy.matrix (JSON)",
        description="Print the selected cells as the JSON of a GitHub Actions "
        '`strategy.matrix`: {"include": [{"cell", "python", "cuda", "runs-on", '
        '"cache-key"}, ...]}. When $GITHUB_OUTPUT is set, `matrix=<json>` is also '
        'appended to it (once, even with `>> "$GITHUB_OUTPUT"`). runs-on comes from the '
        "`runners` table of the configuration.",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="GLOB",
        help="only cells whose id matches GLOB, e.g. 'py3.12-*' (repeatable)",
    )
    add_config_option(parser)
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument(
        "--platform",
        metavar="SUBDIR",
        help="conda platform of the test runners, e.g. linux-aarch64 (default: this machine's)",
    )
    parser.add_argument(
        "--runs-on",
        action="append",
        default=[],
        metavar="LABEL",
        help="run every cell on runners with LABEL, whatever `runners` says (repeatable), "
        "e.g. to try a CUDA matrix on hosted runners, where CUDA cells run without a GPU",
    )
    parser.add_argument(
        "--host-key",
        action="store_true",
        help="instead, print `host-key=<hash>` for this machine (its platform, glibc, CPU "
        "microarchitecture, cache folder and local channels' index): the workflow appends it "
        "to the cell's cache-key",
    )
    parser.add_argument(
        "pytest_args",
        nargs="*",
        metavar="-- PYTEST_ARGS",
        help="the pytest arguments of the test jobs: the channels and engine they give "
        "(--conda-matrix-channel, --conda-matrix-engine) go into the keys",
    )


def run(args: argparse.Namespace) -> int:
    from ..ci import gh_matrix

    return gh_matrix.run(args)
