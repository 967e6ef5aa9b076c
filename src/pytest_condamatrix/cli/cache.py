"""``condamatrix cache``: see, prune and remove the cached envs (logic in :mod:`.envs.manage`,
output in :mod:`.cache_view`, imported when a subcommand runs).

    condamatrix cache dir                      the cache folder in use
    condamatrix cache list [--json]            one row per env, the package cache, the total
    condamatrix cache prune [--older-than D] [--max-size S] [--packages] [--dry-run] [--json]
    condamatrix cache remove CELL|KEY [--json]

The cache folder is found as the matrix run finds it: ``--cache-dir``, else
``$CONDAMATRIX_CACHE_DIR``, else the user cache folder. Nothing here ever waits for, or
removes, an env that another run holds the lock of.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..envs import manage
from ..envs.manage import DEFAULT_STALE_DAYS
from ..errors import ExitCode, UsageError
from ..validate import check_days
from .options import Handler, Subcommands, add_cache_dir_option, add_command
from .usage_parser import UsageArgumentParser


def add_parsers(sub: Subcommands) -> None:
    """Add ``cache`` and its subcommands to the ``condamatrix`` subparsers ``sub``."""
    cache = sub.add_parser(
        "cache",
        help="list, prune or remove cached envs; print the cache folder",
        description="Inspect and clean the env cache. Envs another run is using (its lock is "
        "held) are never removed: they are skipped, and the output says so. Sizes count "
        "hard-linked files once: envs are hard-linked from the package cache (pkgs/), so "
        "removing an env frees only its own files ('frees'); `prune --packages` also removes "
        "package-cache entries that no env uses any more.",
    )
    commands = cache.add_subparsers(
        dest="cache_command",
        metavar="SUBCOMMAND",
        required=True,
        parser_class=UsageArgumentParser,  # a bad value exits 4, as the exit code table says
    )

    def command(
        name: str, handler: Handler, help: str, description: str, *, json_output: bool = True
    ) -> argparse.ArgumentParser:
        parser = add_command(commands, name, handler, help=help, description=description)
        add_cache_dir_option(parser, checked=True)
        if json_output:
            parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        return parser

    command(
        "dir",
        print_dir,
        "print the cache folder",
        "Print the cache folder: --cache-dir, else $CONDAMATRIX_CACHE_DIR, "
        "else the user cache folder.",
        json_output=False,
    )
    listing = command(
        "list",
        list_envs,
        "one row per cached env: cell, key, size, last used, built, stale",
        "List the cached envs with their size (each file once), what removing "
        "them would free, when they were last used and built, and whether they are stale "
        f"(not used for --stale-days days, default {DEFAULT_STALE_DAYS:g}, or unfinished). "
        "Staleness is by age, not by the project in this folder: the cache is shared by "
        "all projects and CI jobs of the user.",
    )
    listing.add_argument(
        "--stale-days",
        type=_days,
        default=DEFAULT_STALE_DAYS,
        metavar="DAYS",
        help=f"an env not used for DAYS days is stale (default: {DEFAULT_STALE_DAYS:g})",
    )

    prune = command(
        "prune",
        prune_envs,
        "remove unfinished, old, or least recently used envs and leftovers",
        "Remove unfinished envs (a build that never wrote its stamp), envs not "
        "used for --older-than days, then the least recently used envs until the cache fits "
        "in --max-size; also leftovers of killed builds (tmp/, trash/) and old run folders "
        f"(runs/). With neither --older-than nor --max-size, --older-than "
        f"{DEFAULT_STALE_DAYS:g} applies. Envs that another run holds are skipped.",
    )
    prune.add_argument(
        "--older-than",
        type=_days,
        metavar="DAYS",
        help="remove envs not used for more than DAYS days (fractions allowed)",
    )
    prune.add_argument(
        "--max-size",
        type=_size,
        metavar="SIZE",
        help="remove least recently used envs (then unused packages) until the whole cache "
        "takes at most SIZE, e.g. 10G or 500M (powers of 1024)",
    )
    prune.add_argument(
        "--packages",
        action="store_true",
        help="also remove package-cache entries that no remaining env was installed from",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be removed, remove nothing"
    )

    remove = command(
        "remove",
        remove_envs,
        "remove the envs of a cell, or the env whose key starts with KEY",
        "Remove every cached env of cell CELL (there may be several: one per "
        "set of inputs), or the env whose folder name is given, or whose key starts with KEY "
        "(4 or more hex digits, as `cache list` shows). Envs another run holds are skipped, "
        "and the exit code is then 7.",
    )
    remove.add_argument("target", metavar="CELL|KEY", help="a cell id, env folder or key prefix")


def _days(text: str) -> float:
    try:
        return check_days(text, "DAYS")  # nan and inf compare false with every age
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _size(text: str) -> int:
    try:
        return manage.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _root(args: argparse.Namespace) -> Path:
    from ..run.session import cache_root

    return cache_root(args.cache_dir)


def print_dir(args: argparse.Namespace) -> int:
    print(_root(args))
    return int(ExitCode.OK)


def list_envs(args: argparse.Namespace) -> int:
    from .cache_view import list_cache

    return list_cache(_root(args), args.stale_days, as_json=args.json)


def prune_envs(args: argparse.Namespace) -> int:
    from .cache_view import prune_cache

    older = args.older_than
    if older is None and args.max_size is None:
        older = DEFAULT_STALE_DAYS
    return prune_cache(
        _root(args),
        older_than=older,
        max_size=args.max_size,
        packages=args.packages,
        dry_run=args.dry_run,
        as_json=args.json,
    )


def remove_envs(args: argparse.Namespace) -> int:
    from .cache_view import remove_from_cache

    return remove_from_cache(_root(args), args.target, as_json=args.json)
