"""A local channel build killed halfway leaves its work folder beside the channel (under the
cache for the demo and the tests), never in /tmp, and the next build removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pytest_condamatrix.localchannel.channel import _scratch

from .conftest import Figures
from .helpers import wait_for

BUILD = """
import sys
from pathlib import Path
from pytest_condamatrix.localchannel import build_local_channel
build_local_channel(Path(sys.argv[1]), ("3.12",), wheel_cache=Path(sys.argv[2]))
"""


def temp_leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("condamatrix-channel-*")}


@pytest.mark.integration
def test_a_killed_channel_build_leaves_nothing_in_tmp(
    tmp_path: Path, local_channel: object, figures: Figures
) -> None:
    from conftest import test_cache_root

    wheels = test_cache_root() / "channels" / "wheels"  # shared, only read when complete
    dest = tmp_path / "channels" / "local"
    before = temp_leftovers()
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(dest), str(wheels)], start_new_session=True
    )
    try:
        wait_for(lambda: list(dest.parent.glob(".local.build-*")), 60, "the build's work folder")
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert temp_leftovers() <= before, "the build worked in /tmp"
    left = list(dest.parent.glob(".local.build-*"))
    assert left  # killed: it stays, where the next build looks for it
    with _scratch(dest) as work:
        assert work.exists()
    assert not list(dest.parent.glob(".local.build-*")), "a stale work folder survived"
    figures.record("channel build killed", kills=1, left_in_tmp=0, swept=len(left))
