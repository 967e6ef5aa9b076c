"""Build a real local conda channel from the CPython interpreters on this machine.

Used by the integration tests and the demo: real solves, real installs, no conda server.
Needs the `channel` extra (`pip install 'pytest-condamatrix[channel]'`) to build packages.
"""

from __future__ import annotations

from pytest_condamatrix.localchannel.channel import LocalChannel, build_local_channel
from pytest_condamatrix.localchannel.errors import ChannelBuildError
from pytest_condamatrix.localchannel.interpreters import find_interpreters

__all__ = ["ChannelBuildError", "LocalChannel", "build_local_channel", "find_interpreters"]
