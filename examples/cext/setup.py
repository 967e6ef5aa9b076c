from setuptools import Extension, setup

# The metadata is in pyproject.toml; only the extension module needs setup.py.
setup(ext_modules=[Extension("cext._add", ["src/cext/_add.c"])])
