"""The built extension is self-contained: libmongocrypt is linked in, nothing is left undefined
but Python's own API, and it needs no shared library beyond libc, libm, libpthread, libdl and
libcrypto."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from mongocrypt import _libmongocrypt

ALLOWED = {"linux-vdso", "ld-linux", "libc", "libm", "libpthread", "libdl", "libcrypto"}

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def ldd_output() -> str:
    if shutil.which("ldd") is None:
        pytest.skip("needs ldd (glibc's, Linux only)")
    result = subprocess.run(
        ["ldd", "-r", _libmongocrypt.__file__], capture_output=True, text=True, check=True
    )
    return result.stdout + result.stderr


def test_no_undefined_symbols_but_pythons(ldd_output: str) -> None:
    undefined = re.findall(r"undefined symbol: (\S+)", ldd_output)
    foreign = [s for s in undefined if not re.match(r"_?Py", s)]
    assert foreign == [], foreign


def test_only_allowed_shared_libraries(ldd_output: str) -> None:
    libraries = {
        line.split()[0].split("/")[-1].split(".so")[0]
        for line in ldd_output.splitlines()
        if ".so" in line and "undefined symbol" not in line
    }
    unexpected = {lib for lib in libraries if not lib.startswith(tuple(ALLOWED))}
    assert unexpected == set(), ldd_output
    # native crypto comes from OpenSSL's libcrypto (grafted as libcrypto-<hash> in wheels)
    assert any(lib.startswith("libcrypto") for lib in libraries), ldd_output


def test_static_archives_symbols_are_not_exported() -> None:
    """libbson and libmongocrypt symbols stay private, so another libbson in the process
    (a C extension linking its own) cannot clash with ours."""
    if shutil.which("nm") is None:
        pytest.skip("needs nm (binutils)")
    out = subprocess.run(
        ["nm", "-D", "--defined-only", _libmongocrypt.__file__],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert not {s for s in exported if s.startswith(("bson_", "mongocrypt_", "kms_"))}
