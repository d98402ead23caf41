"""The compiled binding: import, version check, compile-time features and the log bridge.

This is the only module that imports ``mongocrypt._libmongocrypt``; the rest of the engine gets
``ffi`` and ``lib`` from here.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from mongocrypt import _env
from mongocrypt._libmongocrypt import ffi, lib
from mongocrypt._version import __version__

__all__ = [
    "LOGGER",
    "crypto_hooks_wanted",
    "crypto_in_use",
    "ffi",
    "has_kms_in_place_retry",
    "has_string_algorithm",
    "is_crypto_available",
    "lib",
    "libmongocrypt_version",
    "live_objects",
]

_built_for = ffi.string(lib.mongocrypt_py_build_version()).decode()
if _built_for != __version__:
    raise ImportError(
        f"mongocrypt {__version__} found an extension built for mongocrypt {_built_for}; "
        "rebuild it (pip install --force-reinstall --no-cache-dir .) so both match"
    )

#: Whether the linked libmongocrypt has the "string" (text) algorithm for prefix/suffix/substring.
has_string_algorithm: bool = bool(lib.MONGOCRYPT_PY_HAS_ALGORITHM_TEXT)
#: Whether the linked libmongocrypt can ask for an in-place KMS retry while feeding a reply.
has_kms_in_place_retry: bool = bool(lib.MONGOCRYPT_PY_HAS_FEED_WITH_RETRY)

#: libmongocrypt's own log messages arrive on this logger.
LOGGER = logging.getLogger("mongocrypt.libmongocrypt")

_LEVELS = {
    lib.MONGOCRYPT_LOG_LEVEL_FATAL: logging.CRITICAL,
    lib.MONGOCRYPT_LOG_LEVEL_ERROR: logging.ERROR,
    lib.MONGOCRYPT_LOG_LEVEL_WARNING: logging.WARNING,
    lib.MONGOCRYPT_LOG_LEVEL_INFO: logging.INFO,
    lib.MONGOCRYPT_LOG_LEVEL_TRACE: logging.DEBUG,
}


# libmongocrypt warns when the "$SYSTEM" search finds no crypt_shared (the bare library name):
# the specification says a failed search is not an error, so that one is only debug output.
_SYSTEM_SEARCH_MISS = ("Error while opening candidate for ", " dynamic library [mongo_crypt_v1")


@ffi.def_extern()  # type: ignore[untyped-decorator]  # called from csrc/gil.c
def _mongocrypt_py_log(level: int, message: object, message_len: int, _ctx: object) -> None:
    """Forward one libmongocrypt log message to :data:`LOGGER`."""
    text = ffi.string(message, message_len).decode("utf-8", "replace")
    py_level = _LEVELS.get(level, logging.DEBUG)
    if text.startswith(_SYSTEM_SEARCH_MISS[0]) and _SYSTEM_SEARCH_MISS[1] in text:
        py_level = logging.DEBUG
    if LOGGER.isEnabledFor(py_level):
        LOGGER.log(py_level, "%s", text)


def libmongocrypt_version() -> str:
    """The version of the linked libmongocrypt, e.g. ``"1.21.1"``."""
    return str(ffi.string(lib.mongocrypt_version(ffi.NULL)).decode())


def is_crypto_available() -> bool:
    """Whether libmongocrypt does its cryptography natively (it does when built with OpenSSL)."""
    return bool(lib.mongocrypt_is_crypto_available())


def live_objects() -> dict[str, int]:
    """How many libmongocrypt handles and contexts exist now (for leak checks in tests)."""
    return {
        "handles": int(lib.mongocrypt_py_live_handles()),
        "contexts": int(lib.mongocrypt_py_live_contexts()),
    }


#: ``0`` makes new handles use libmongocrypt's built-in crypto instead of our hooks on OpenSSL
#: (bindings/csrc/hooks.c), for comparison and as an escape hatch; unset or ``1``: the hooks.


def crypto_hooks_wanted() -> bool:
    """Whether a handle created now registers mongocrypt's crypto hooks (read from
    :data:`_env.CRYPTO_HOOKS` each time; a handle reads it once, when it is created).

    :raises ValueError: if the variable is set to anything but ``0`` or ``1``.
    """
    value = os.environ.get(_env.CRYPTO_HOOKS, "1").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"{_env.CRYPTO_HOOKS} must be 0 or 1, not {value!r}")
    return value != "0"


def crypto_in_use(hooks: Optional[bool] = None) -> str:
    """Which cryptography a handle uses, in words (for the log and ``mongocrypt doctor``).

    :param hooks: the handle's choice; None: what a handle created now would use.
    """
    if hooks is None:
        try:
            hooks = crypto_hooks_wanted()
        except ValueError as exc:
            return f"invalid setting: {exc}"
    openssl = ffi.string(lib.mongocrypt_py_openssl_version()).decode()
    if hooks:
        return f"mongocrypt's crypto hooks on {openssl}"
    return f"libmongocrypt's built-in crypto ({_env.CRYPTO_HOOKS}=0)"
