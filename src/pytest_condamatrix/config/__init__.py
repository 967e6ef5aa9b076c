"""The matrix's configuration: ``[tool.condamatrix]`` in pyproject.toml or ``condamatrix.yml``,
loaded into frozen dataclasses.

``model`` holds the dataclasses and the keys, ``load`` finds and reads the file and assembles the
model, ``fields`` parses and checks each key, ``envfile`` reads a conda environment file. Every
problem raises :class:`~pytest_condamatrix.errors.ConfigError` naming the file, the key, the bad
value and a fix.
"""

from .fields import resolve_channel
from .load import YAML_NAMES, find_config_file, load_config, parse_config
from .model import (
    CUDA_POLICIES,
    DEFAULT_CHANNELS,
    DEFAULT_GPU,
    DEFAULT_RUNNERS,
    ENGINES,
    INSTALL_MODES,
    TOP_LEVEL_KEYS,
    CellRule,
    CudaVariantSpec,
    MatrixConfig,
)

__all__ = [
    "CUDA_POLICIES",
    "DEFAULT_CHANNELS",
    "DEFAULT_GPU",
    "DEFAULT_RUNNERS",
    "ENGINES",
    "INSTALL_MODES",
    "TOP_LEVEL_KEYS",
    "YAML_NAMES",
    "CellRule",
    "CudaVariantSpec",
    "MatrixConfig",
    "find_config_file",
    "load_config",
    "parse_config",
    "resolve_channel",
]
