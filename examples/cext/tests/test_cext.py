"""Tests that pass only when the project is installed, not imported from its sources."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig

import cext


def test_extension_adds():
    assert cext.add(2, 3) == 5


def test_extension_fits_this_interpreter():
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    assert cext._add.__file__.endswith(suffix)


def test_metadata_is_visible():
    assert importlib.metadata.version("cext") == "0.3.0"
    points = importlib.metadata.distribution("cext").entry_points
    assert ("cext-add", "cext.cli:main") in {(ep.name, ep.value) for ep in points}


def test_console_script_on_path():
    exe = shutil.which("cext-add")
    assert exe is not None
    out = subprocess.run([exe, "2", "40"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"


def test_not_the_env_of_the_cell():
    # The project is in the run's overlay, never in the cached env.
    assert not cext.__file__.startswith(sys.prefix + os.sep)
