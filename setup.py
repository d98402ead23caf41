"""Only what setuptools needs beyond pyproject.toml: the cffi builder, and the licence files of the
libraries linked in, which depend on the library chosen at build time."""

import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_ffi import license_files

setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    license_files=license_files(),
    # cffi builds the extension against the stable ABI: one wheel serves CPython 3.9 and later.
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
