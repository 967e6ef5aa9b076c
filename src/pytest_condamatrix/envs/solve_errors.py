"""A failed solve, explained: every spec with no candidate at all, or a network failure.

rattler's solver stops at the first conflict it can word; users then fix one spec per run.
Asking the channels (already in the gateway's cache) which specs match no package gives the
whole list at once. A download that failed is a network problem, not a spec problem, and is
said as such with the URL and the channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..config.envfile import loaded_environment, spec_name
from ..errors import EnvBuildError

_URL = re.compile(r"(?:https?|file)://[^\s'\")]+")
_NETWORK = (
    "error sending request",
    "dns error",
    "connection refused",
    "connection reset",
    "timed out",
    "failed to lookup address",
    "network is unreachable",
    "tls",
)


def explain(
    cell_id: str,
    specs: Sequence[str],
    channels: Sequence[str],
    exc: BaseException,
    find_missing: Callable[[], list[str]],
    detail: str,
    environment_file: str = "",
) -> EnvBuildError:
    """The error for a failed solve; ``environment_file``: the content hash of the cell's
    environment file, whose specs are then marked as coming from it."""
    text = str(exc)
    if any(word in text.lower() for word in _NETWORK):
        url = _URL.search(text)
        where = f" {url.group(0)}" if url else ""
        channel = next((c for c in channels if url and c.rstrip("/") in url.group(0)), None)
        of = f" of the channel {channel}" if channel else f" (channels: {', '.join(channels)})"
        return EnvBuildError(
            f"cannot solve the env of {cell_id}: a network failure: could not fetch{where}{of}: "
            f"{detail}",
            hint="check the connection or proxy settings (HTTPS_PROXY), or use a local channel "
            "(condamatrix local-channel DIR --wheel ...); the specs are not the problem",
        )
    try:
        missing = find_missing()
    except Exception:  # the explanation must never hide the solver's message
        missing = []
    if missing:
        env = loaded_environment(environment_file) if environment_file else None
        from_file = {spec_name(s) for s in env.dependencies} if env else set()
        named = [
            repr(m) + (f" (from {env.path.name})" if env and spec_name(m) in from_file else "")
            for m in missing
        ]
        return EnvBuildError(
            f"cannot solve the env of {cell_id}: no package in the channels matches "
            f"{', '.join(named)} ({len(missing)} of {len(specs)} specs)",
            hint=f"fix or remove those specs, or add a channel that has them (searched: "
            f"{', '.join(channels)})",
        )
    return EnvBuildError(
        f"cannot solve the env of {cell_id}: {detail}",
        hint=f"check the specs {list(specs)} against the channels {list(channels)}",
    )


async def unmatched_specs(
    gateway: Any, channels: Sequence[Any], platforms: Sequence[Any], specs: Sequence[str]
) -> list[str]:
    """The specs (as written) that no record of ``channels`` matches."""
    from rattler import MatchSpec

    parsed = [(s, MatchSpec(s, strict=False)) for s in specs]
    wanted = [(s, m) for s, m in parsed if m.name and not m.name.normalized.startswith("__")]
    found = await gateway.query(channels, platforms, [m for _, m in wanted], recursive=False)
    records = [record for per_channel in found for record in per_channel]
    return [s for s, m in wanted if not any(m.matches(r) for r in records)]
