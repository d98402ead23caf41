"""The built wheel: manylinux-valid, self-contained, and holding only what it should.

Runs where the wheel was installed by `make test-wheel` (.ci/test-wheel), which names it in
MONGOCRYPT_WHEEL; elsewhere there is no wheel to check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.smoke,
    pytest.mark.skipif(
        "MONGOCRYPT_WHEEL" not in os.environ,
        reason="needs a built wheel named by MONGOCRYPT_WHEEL (make test-wheel)",
    ),
]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return Path(os.environ["MONGOCRYPT_WHEEL"])


def test_wheel_tag_is_abi3_manylinux(wheel: Path) -> None:
    assert re.fullmatch(
        r"mongocrypt-[\w.]+-cp39-abi3-manylinux_2_\d+_(x86_64|aarch64)\.whl", wheel.name
    )


def test_auditwheel_finds_nothing_outside_the_policy(wheel: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    text = " ".join(shown.split())
    tag = re.search(r'consistent with the following platform tag: "(manylinux_2_\d+_\w+)"', text)
    assert tag, shown
    assert tag.group(1) in wheel.name
    external = set(re.findall(r"(\S+\.so[.\d]*) with versions", text))
    grafted = {
        Path(n).name for n in zipfile.ZipFile(wheel).namelist() if n.startswith("mongocrypt.libs/")
    }
    assert external - grafted == {"libc.so.6", "libm.so.6"}, shown


def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top - {"mongocrypt", "pymongocrypt", "mongocrypt.libs"} == {
        n for n in top if n.endswith(".dist-info")
    }
    assert not [n for n in names if n.endswith((".h", ".c", ".a"))], "no sources or archives"
    assert not [n for n in names if n.startswith(("vendor/", "bindings/"))]
    libs = [n for n in names if n.startswith("mongocrypt.libs/") and not n.endswith("/")]
    assert [Path(n).name.split("-")[0] for n in libs] == ["libcrypto"], libs
    licences = {Path(n).name for n in names if "/licenses/" in n}
    assert {
        "LICENSE",
        "OpenSSL-NOTICE.txt",
        "libmongocrypt.copyright",
        "intelrdfpmath.copyright",
    } <= licences
    assert "mongocrypt/py.typed" in names


def test_installed_extension_is_the_wheels() -> None:
    from mongocrypt import _libmongocrypt

    assert "site-packages" in _libmongocrypt.__file__
