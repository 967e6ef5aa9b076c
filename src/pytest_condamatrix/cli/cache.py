"""``condamatrix cache``: see, prune and remove the cached envs (logic in :mod:`.envs.inventory`,
:mod:`.envs.prune` and :mod:`.envs.usage`).

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
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..envs.inventory import DEFAULT_STALE_DAYS, CacheListing, is_stale, scan
from ..envs.prune import CleanResult, Say, remove_envs
from ..envs.prune import prune as prune_cache
from ..envs.usage import format_age, format_size, parse_size
from ..errors import ExitCode, UsageError
from ..report.terminal import make_console
from ..run.session import cache_root
from ..validate import check_days, check_path
from .usage_parser import UsageArgumentParser


def add_parser(sub: Any) -> None:
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

    def common(parser: argparse.ArgumentParser, *, json_output: bool = True) -> None:
        parser.add_argument(
            "--cache-dir",
            type=_cache_dir,  # an empty value would be the current folder: refused
            help="the cache folder (default: $CONDAMATRIX_CACHE_DIR, else the user cache folder)",
        )
        if json_output:
            parser.add_argument("--json", action="store_true", help="print JSON for scripts")

    common(
        commands.add_parser(
            "dir",
            help="print the cache folder",
            description="Print the cache folder: --cache-dir, else $CONDAMATRIX_CACHE_DIR, "
            "else the user cache folder.",
        ),
        json_output=False,
    )
    listing = commands.add_parser(
        "list",
        help="one row per cached env: cell, key, size, last used, built, stale",
        description="List the cached envs with their size (each file once), what removing "
        "them would free, when they were last used and built, and whether they are stale "
        f"(not used for --stale-days days, default {DEFAULT_STALE_DAYS:g}, or unfinished). "
        "Staleness is by age, not by the project in this folder: the cache is shared by "
        "all projects and CI jobs of the user.",
    )
    common(listing)
    listing.add_argument(
        "--stale-days",
        type=_days,
        default=DEFAULT_STALE_DAYS,
        metavar="DAYS",
        help=f"an env not used for DAYS days is stale (default: {DEFAULT_STALE_DAYS:g})",
    )

    prune = commands.add_parser(
        "prune",
        help="remove unfinished, old, or least recently used envs and leftovers",
        description="Remove unfinished envs (a build that never wrote its stamp), envs not "
        "used for --older-than days, then the least recently used envs until the cache fits "
        "in --max-size; also leftovers of killed builds (tmp/, trash/) and old run folders "
        f"(runs/). With neither --older-than nor --max-size, --older-than "
        f"{DEFAULT_STALE_DAYS:g} applies. Envs that another run holds are skipped.",
    )
    common(prune)
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

    remove = commands.add_parser(
        "remove",
        help="remove the envs of a cell, or the env whose key starts with KEY",
        description="Remove every cached env of cell CELL (there may be several: one per "
        "set of inputs), or the env whose folder name is given, or whose key starts with KEY "
        "(4 or more hex digits, as `cache list` shows). Envs another run holds are skipped, "
        "and the exit code is then 7.",
    )
    common(remove)
    remove.add_argument("target", metavar="CELL|KEY", help="a cell id, env folder or key prefix")


def _days(text: str) -> float:
    try:
        return check_days(text, "DAYS")  # nan and inf compare false with every age
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _cache_dir(text: str) -> Path:
    try:
        return check_path(text, "--cache-dir")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or make_console()
    root = cache_root(args.cache_dir)
    if args.cache_command == "dir":
        print(root)
        return int(ExitCode.OK)
    if args.cache_command == "list":
        return list_cache(root, args.stale_days, as_json=args.json, console=console)
    if args.cache_command == "prune":
        older = args.older_than
        if older is None and args.max_size is None:
            older = DEFAULT_STALE_DAYS
        say = _sayer(console, quiet=args.json)
        result = prune_cache(
            root,
            older_than_days=older,
            max_size=args.max_size,
            packages=args.packages,
            dry_run=args.dry_run,
            say=say,
        )
        return _finish(result, root, as_json=args.json, console=console, strict=False)
    if args.cache_command == "remove":
        say = _sayer(console, quiet=args.json)
        result, matched = remove_envs(root, args.target, say=say)
        if not matched:
            known = sorted({e.cell for e in scan(root).envs})
            raise UsageError(
                f"no cached env matches {args.target!r} (cache {root})",
                hint=f"cached cells: {', '.join(known)}" if known else "the cache holds no env",
            )
        return _finish(result, root, as_json=args.json, console=console, strict=True)
    raise UsageError(f"unknown cache command {args.cache_command!r}")  # pragma: no cover


def _sayer(console: Console, *, quiet: bool) -> Say:
    def say(message: str) -> None:
        if not quiet:
            style = "yellow" if "skipped" in message else ""
            console.print(Text(message, style=style))

    return say


def _finish(
    result: CleanResult, root: Path, *, as_json: bool, console: Console, strict: bool
) -> int:
    if as_json:
        data = result.to_json()
        data["root"] = str(root)
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        counts = dict.fromkeys(("env", "package", "leftover", "run"), 0)
        for action in result.actions:
            counts[action.kind] += action.done
        verb = "would free" if result.dry_run else "freed"
        line = (
            f"{counts['env']} envs removed, {len(result.skipped)} skipped, "
            f"{counts['package']} packages and {counts['leftover'] + counts['run']} "
            f"leftovers/run folders removed{' (dry run)' if result.dry_run else ''}; {verb} "
            f"{format_size(result.size_before - result.size_after)}, "
            f"cache {format_size(result.size_after)}"
        )
        if not result.actions:
            line = f"nothing to remove; cache {format_size(result.size_after)}"
        console.print(Text(line, style="bold"))
    if strict and result.skipped:
        return int(ExitCode.CACHE_ERROR)
    return int(ExitCode.OK)


def list_cache(root: Path, stale_days: float, *, as_json: bool, console: Console) -> int:
    listing = scan(root)
    now = time.time()
    if as_json:
        sys.stdout.write(json.dumps(listing.to_json(now, stale_days), indent=1) + "\n")
        return int(ExitCode.OK)
    render_listing(console, listing, now, stale_days)
    return int(ExitCode.OK)


RIGHT = ("size", "frees", "last used")


def render_listing(console: Console, listing: CacheListing, now: float, stale_days: float) -> None:
    if not listing.exists:
        console.print(f"no cache at {listing.root} (nothing was built there yet)")
        return
    table = Table(
        title=f"env cache {listing.root}",
        caption=f"total {format_size(listing.total)} on disk (hard-linked files counted once); "
        f"stale: not used for {stale_days:g} days, or unfinished",
        title_justify="left",
        caption_justify="left",
    )
    for name in ("cell", "key", "size", "frees", "last used", "built", "stale"):
        table.add_column(name, justify="right" if name in RIGHT else "left")
    for env in sorted(listing.envs, key=lambda e: (e.cell, -(e.built_at or 0.0))):
        stale = is_stale(env, now, stale_days)
        built = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(env.built_at))
            if env.built_at
            else "unfinished"
        )
        table.add_row(
            env.cell,
            env.key[:12],
            format_size(env.size),
            format_size(env.frees),
            format_age(now - env.last_used),
            built,
            Text("yes", style="yellow") if stale else "no",
        )
    table.add_section()
    table.add_row(
        f"pkgs/ ({len(listing.packages)} packages)", "", format_size(listing.package_cache_size)
    )
    table.add_row("other (runs, tmp, trash, ...)", "", format_size(listing.other_size))
    console.print(table)
    if not listing.envs:
        console.print("no envs cached")
