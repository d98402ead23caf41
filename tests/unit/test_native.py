"""Smoke tests of the compiled extension: it imports, links the pinned library, crypto is native."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest

import mongocrypt
from mongocrypt.engine import native

PINS = Path(__file__).resolve().parents[2] / "vendor" / "pins.toml"

pytestmark = pytest.mark.smoke


def expected_libmongocrypt() -> str:
    """The upstream version of the pin this build should link (Debian revision dropped).

    ``MONGOCRYPT_EXPECT_LIBMONGOCRYPT`` names a pin role ("primary", "fallback") or a version;
    system-library builds set it to the system version.
    """
    wanted = os.environ.get("MONGOCRYPT_EXPECT_LIBMONGOCRYPT", "primary")
    if re.fullmatch(r"\d+\.\d+\.\d+", wanted):
        return wanted
    pin = tomllib.loads(PINS.read_text())["libmongocrypt-dev"][wanted]
    return str(pin["version"]).split("-")[0].split("+")[0]


def test_reports_the_pinned_libmongocrypt_version() -> None:
    assert mongocrypt.libmongocrypt_version() == expected_libmongocrypt()


def test_crypto_is_native() -> None:
    assert mongocrypt.is_crypto_available() is True


def test_extension_was_built_for_this_package_version() -> None:
    built_for = native.ffi.string(native.lib.mongocrypt_py_build_version()).decode()
    assert built_for == mongocrypt.__version__


def test_feature_flags_match_the_linked_library() -> None:
    """1.13 (the fallback pin) lacks both; every newer pin has both."""
    major, minor, _ = (int(p) for p in mongocrypt.libmongocrypt_version().split("."))
    newer = (major, minor) > (1, 13)
    assert mongocrypt.has_string_algorithm is newer
    assert mongocrypt.has_kms_in_place_retry is newer


@pytest.mark.requirement("CSE-LMC-05", "CSE-XOPT-05")
def test_log_messages_reach_python_logging(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """libmongocrypt warns when a crypt_shared candidate is not a library; the warning must
    arrive on the mongocrypt.libmongocrypt logger, at WARNING, with its text."""
    from mongocrypt.engine import MongoCrypt, MongoCryptOptions

    not_a_library = tmp_path / "mongo_crypt_v1.so"
    not_a_library.write_bytes(b"not an ELF file")
    options = MongoCryptOptions(
        {"local": {"key": os.urandom(96)}}, crypt_shared_lib_path=str(not_a_library)
    )
    caplog.set_level(logging.DEBUG, logger="mongocrypt.libmongocrypt")
    with pytest.raises(mongocrypt.MongoCryptError, match="override path"):
        MongoCrypt(options)
    records = [r for r in caplog.records if r.name == "mongocrypt.libmongocrypt"]
    assert [r.levelno for r in records] == [logging.WARNING]
    assert str(not_a_library) in records[0].getMessage()


@pytest.mark.requirement("CSE-SHL-01", "CSE-SHL-06")
def test_a_failed_system_search_for_crypt_shared_is_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The spec: a failed search is not an error. Only an explicit path that fails warns."""
    from mongocrypt.engine import MongoCrypt, MongoCryptOptions

    caplog.set_level(logging.DEBUG, logger="mongocrypt.libmongocrypt")
    MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}})).close()  # "$SYSTEM" search
    misses = [r for r in caplog.records if "mongo_crypt_v1" in r.getMessage()]
    assert misses and all(r.levelno == logging.DEBUG for r in misses)
