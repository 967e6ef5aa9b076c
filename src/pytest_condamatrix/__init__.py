"""Run a pytest suite in every cell of a Python x CUDA matrix of cached conda environments."""

from __future__ import annotations

__version__ = "0.1.0"
