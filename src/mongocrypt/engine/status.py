"""The single boundary where a libmongocrypt status becomes a Python exception."""

from __future__ import annotations

from typing import Any, Callable, NoReturn

from mongocrypt.engine.native import ffi, lib
from mongocrypt.errors import MongoCryptError, MongoCryptKmsError, QueryAnalysisError, redact

__all__ = ["raise_status"]


def raise_status(
    read_status: Callable[[Any, Any], Any],
    owner: Any,
    error: type[MongoCryptError] = MongoCryptError,
) -> NoReturn:
    """Raise the error that ``owner`` (a handle, context or KMS context) holds.

    :param read_status: the libmongocrypt function that copies ``owner``'s status, e.g.
        ``lib.mongocrypt_ctx_status``.
    :param owner: the libmongocrypt object whose last call failed.
    :param error: the class to raise; a status of libmongocrypt's KMS type always raises
        :class:`MongoCryptKmsError`, one of its crypt_shared type :class:`QueryAnalysisError`.
    :raises MongoCryptError: always.
    """
    status = lib.mongocrypt_status_new()
    try:
        read_status(owner, status)
        length = ffi.new("uint32_t *")
        raw = lib.mongocrypt_status_message(status, length)
        message = ffi.string(raw, length[0]).decode("utf-8", "replace") if raw else ""
        code = int(lib.mongocrypt_status_code(status))
        kind = lib.mongocrypt_status_type(status)
    finally:
        lib.mongocrypt_status_destroy(status)
    message = redact(message) or "libmongocrypt reported a failure without a message"
    if kind == lib.MONGOCRYPT_STATUS_ERROR_KMS:
        error = MongoCryptKmsError
    elif kind == lib.MONGOCRYPT_STATUS_ERROR_CRYPT_SHARED:
        error = QueryAnalysisError
    raise error(message, code)
