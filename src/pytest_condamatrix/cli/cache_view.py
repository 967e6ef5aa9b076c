"""What ``condamatrix cache`` (:mod:`.cache`) does and prints: the cache's table or JSON,
and what a prune or a removal did (the logic itself is in :mod:`.envs.manage`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..envs import manage
from ..envs.manage import CacheListing, CleanResult, format_age, format_size
from ..errors import ExitCode, UsageError
from ..report.terminal import make_console


def prune_cache(
    root: Path,
    *,
    older_than: float | None,
    max_size: int | None,
    packages: bool,
    dry_run: bool,
    as_json: bool,
) -> int:
    console = make_console()
    result = manage.prune(
        root,
        older_than_days=older_than,
        max_size=max_size,
        packages=packages,
        dry_run=dry_run,
        say=_sayer(console, quiet=as_json),
    )
    return _finish(result, root, as_json=as_json, console=console, strict=False)


def remove_from_cache(root: Path, target: str, *, as_json: bool) -> int:
    console = make_console()
    result, matched = manage.remove_envs(root, target, say=_sayer(console, quiet=as_json))
    if not matched:
        known = sorted({e.cell for e in manage.scan(root).envs})
        raise UsageError(
            f"no cached env matches {target!r} (cache {root})",
            hint=f"cached cells: {', '.join(known)}" if known else "the cache holds no env",
        )
    return _finish(result, root, as_json=as_json, console=console, strict=True)


def _sayer(console: Console, *, quiet: bool) -> manage.Say:
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


def list_cache(root: Path, stale_days: float, *, as_json: bool) -> int:
    console = make_console()
    listing = manage.scan(root)
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
        stale = manage.is_stale(env, now, stale_days)
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
