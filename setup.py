"""Only what setuptools needs to run the cffi builder; all metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
