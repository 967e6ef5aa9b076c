"""Benchmarks of pytest-condamatrix against direct runs, nox and tox: ``python -m benchmarks``."""
