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
) -> EnvBuildError:
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
        return EnvBuildError(
            f"cannot solve the env of {cell_id}: no package in the channels matches "
            f"{', '.join(repr(m) for m in missing)} ({len(missing)} of {len(specs)} specs)",
            hint=f"fix or remove those specs, or add a channel that has them (searched: "
            f"{', '.join(channels)})",
        )
    return EnvBuildError(
        f"cannot solve the env of {cell_id}: {detail}",
        hint=f"check the specs {list(specs)} against the channels {list(channels)}",
    )


async def unmatched_specs(
    gateway: Any, channels: Sequence[Any], platforms: Sequence[Any], specs: Sequence[Any]
) -> list[str]:
    """The specs (rattler MatchSpecs) no record of ``channels`` matches."""
    wanted = [s for s in specs if s.name is not None and not s.name.normalized.startswith("__")]
    found = await gateway.query(channels, platforms, wanted, recursive=False)
    records = [record for per_channel in found for record in per_channel]
    return [str(s) for s in wanted if not any(s.matches(r) for r in records)]
