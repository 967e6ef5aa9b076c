"""The one error type of the local-channel builder."""

from __future__ import annotations

__all__ = ["ChannelBuildError"]

INSTALL_HINT = "install it with: pip install 'pytest-condamatrix[channel]'"


class ChannelBuildError(Exception):
    """Building the local conda channel failed; the message says what failed and what to do."""
