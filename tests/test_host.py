"""The host's facts (platform, virtual packages, driver) kept between runs, per user and boot,
so that a warm run never imports rattler; never taken from a file another user could plant."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_condamatrix.envs import host
from pytest_condamatrix.errors import UsageError

FAKE = host.HostFacts("linux-64", (("__glibc", "2.99", "0"), ("__unix", "0", "0")), "")


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    host.keep_facts_in(tmp_path)
    yield tmp_path
    host.keep_facts_in(None)


def test_facts_are_detected_once_then_read_back(
    kept: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = host.facts()
    (written,) = kept.iterdir()
    assert host.HostFacts.from_json(json.loads(written.read_text())) == real
    host.keep_facts_in(kept)  # a new run: its memory is empty, the file is there

    def no_detection() -> host.HostFacts:
        raise AssertionError("detected again")

    monkeypatch.setattr(host, "_detect", no_detection)
    assert host.facts() == real
    assert host.virtual_packages("12.1") == tuple(
        sorted(
            [
                *(n if n in host.UNVERSIONED else f"{n}={v}={b}" for n, v, b in real.packages),
                "__cuda=12.1=0",
            ]
        )
    )


def test_an_override_detects_anew(kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host.facts()
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.17")
    assert ("__glibc", "2.17", "0") in host.facts().packages
    assert len(list(kept.iterdir())) == 2


@pytest.mark.parametrize(
    "damage",
    [
        *("garbage", "wrong shape", "link", "another user's", "fifo", "too deep"),
        *("not a version", "too large"),
    ],
)
def test_a_damaged_or_planted_file_is_not_believed(
    kept: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    damage: str,
) -> None:
    host.facts()
    (written,) = kept.iterdir()
    if damage == "garbage":
        written.write_text("{not json")
    elif damage == "wrong shape":
        written.write_text(json.dumps({"platform": "linux-64", "packages": [["__glibc"]]}))
    elif damage == "fifo":  # opening it to read would wait for a writer, for ever
        written.unlink()
        os.mkfifo(written)
        _fail_if_blocked(request)
    elif damage == "too deep":  # json's parser recurses: a RecursionError, no ValueError
        written.write_text("[" * 100_000)
    elif damage == "not a version":  # rattler would refuse it when solving, a traceback
        written.write_text(
            json.dumps({**FAKE.to_json(), "packages": [["__glibc", "2.99 or so", "0"]]})
        )
    elif damage == "too large":  # ours hold a few hundred bytes: this one is no file of ours
        written.write_text(written.read_text() + " " * 100_000)
    elif damage == "another user's":  # in a shared cache, under this user's name
        if os.getuid() != 0:
            pytest.skip("needs root to give the file to another user")
        written.write_text(json.dumps(FAKE.to_json()))
        os.chown(written, 65534, -1)
        monkeypatch.setattr(host, "_detect", lambda: dataclasses.replace(FAKE, driver="12.4"))
        host.keep_facts_in(kept)
        assert host.facts().driver == "12.4"
        return
    else:  # a link to facts someone else wrote
        elsewhere = tmp_path_factory.mktemp("planted") / "facts.json"
        elsewhere.write_text(json.dumps(FAKE.to_json()))
        written.unlink()
        written.symlink_to(elsewhere)
    host.keep_facts_in(kept)
    monkeypatch.setattr(host, "_detect", lambda: FAKE)
    assert host.facts() == FAKE  # detected again, not read from the file
    assert not written.is_symlink()  # and written anew in its place


def _fail_if_blocked(request: pytest.FixtureRequest) -> None:
    """Fail the test, rather than hang it, if it blocks for 5 s."""

    def blocked(signum: int, frame: object) -> None:
        raise AssertionError("blocked reading the facts file")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(5)
    request.addfinalizer(lambda: (signal.alarm(0), signal.signal(signal.SIGALRM, previous)))


def test_an_override_rattler_cannot_read_is_a_usage_error(
    kept: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not rattler's traceback: the user is told which variable to correct."""
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.17=0")
    with pytest.raises(UsageError, match=r"CONDA_OVERRIDE_GLIBC='2\.17=0'") as caught:
        host.facts()
    assert "2.17=0" in str(caught.value) and caught.value.hint
    assert not list(kept.iterdir())  # nothing kept: a corrected value is detected
