"""Compile `.py` files to `.pyc` with a target interpreter, in parallel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pytest_condamatrix import processes
from pytest_condamatrix.localchannel.errors import ChannelBuildError

__all__ = ["compile_pyc"]

# Runs in the target interpreter (CPython >= 3.7): old syntax, stdlib only. Written to a file
# rather than passed with -c so that process pools also work with the spawn start method.
# Unchecked-hash pycs are never compared with their source's mtime: the installer may give the
# files any mtime, and the environments are never edited afterwards.
_DRIVER = """\
import json, os, py_compile, sys
from concurrent.futures import ProcessPoolExecutor

def work(pairs):
    failed = []
    for source, target in pairs:
        try:
            py_compile.compile(source, cfile=target, doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        except (py_compile.PyCompileError, SyntaxError, UnicodeError, ValueError):
            failed.append(source)
    return failed

if __name__ == "__main__":
    pairs = json.load(sys.stdin)
    workers = os.cpu_count() or 1
    size = max(1, len(pairs) // (workers * 4) + 1)
    chunks = [pairs[i:i + size] for i in range(0, len(pairs), size)]
    failed = []
    if len(chunks) > 1 and workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(work, chunks):
                failed.extend(part)
    else:
        for chunk in chunks:
            failed.extend(work(chunk))
    json.dump(failed, sys.stdout)
"""


def compile_pyc(python: Path, pairs: Sequence[tuple[Path, Path]], workdir: Path) -> set[Path]:
    """Compile each (source, target .pyc) pair with `python`; return the sources that failed
    to compile (files with syntax errors are shipped without a .pyc, as compileall does)."""
    if not pairs:
        return set()
    driver = workdir / "_condamatrix_compile.py"
    driver.write_text(_DRIVER, encoding="utf-8")
    payload = json.dumps([[str(s), str(t)] for s, t in pairs])
    proc = processes.run([str(python), "-I", str(driver)], input=payload, timeout=1800)
    if proc.returncode != 0:
        raise ChannelBuildError(
            f"compiling {len(pairs)} files with {python} failed "
            f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    return {Path(p) for p in json.loads(proc.stdout)}
