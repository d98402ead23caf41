"""One KMS request of a context: what to send where, and the reply fed back byte by byte."""

from __future__ import annotations

from typing import Any

from mongocrypt.engine.binary import BufferLike, new_out, read_out, to_binary
from mongocrypt.engine.native import ffi, lib
from mongocrypt.engine.status import raise_status

__all__ = ["KmsContext"]


class KmsContext:
    """A KMS request owned by a :class:`~mongocrypt.engine.context.MongoCryptContext`.

    Valid until its context completes the KMS state; the I/O layer opens a TLS connection to
    :attr:`endpoint`, sends :attr:`message`, and feeds the reply until :attr:`bytes_needed` is 0.
    """

    __slots__ = ("_kms", "_owner")

    def __init__(self, kms: Any, owner: object) -> None:
        self._kms = kms
        self._owner = owner  # keeps the owning context (and its memory) alive

    def _raise(self) -> None:
        raise_status(lib.mongocrypt_kms_ctx_status, self._kms)

    @property
    def endpoint(self) -> str:
        """``host:port`` to connect to (libmongocrypt always includes the port)."""
        out = ffi.new("char **")
        if not lib.mongocrypt_kms_ctx_endpoint(self._kms, out):
            self._raise()
        return str(ffi.string(out[0]).decode())

    @property
    def message(self) -> bytes:
        """The HTTP (or KMIP) request to send."""
        out = new_out()
        if not lib.mongocrypt_kms_ctx_message(self._kms, out):
            self._raise()
        return read_out(out)

    @property
    def bytes_needed(self) -> int:
        """How many more reply bytes libmongocrypt wants; 0 when the reply is complete."""
        return int(lib.mongocrypt_kms_ctx_bytes_needed(self._kms))

    @property
    def kms_provider(self) -> str:
        """The full provider name, e.g. ``"aws"`` or ``"aws:eu"`` (keys the TLS options)."""
        raw = lib.mongocrypt_kms_ctx_get_kms_provider(self._kms, ffi.NULL)
        return str(ffi.string(raw).decode())

    @property
    def usleep(self) -> int:
        """Microseconds to wait before sending (libmongocrypt's retry backoff)."""
        return int(lib.mongocrypt_kms_ctx_usleep(self._kms))

    def feed(self, data: BufferLike) -> None:
        """Give libmongocrypt reply bytes (at most :attr:`bytes_needed`).

        A retryable reply (HTTP 429/5xx) is retried through the context: the request comes back
        from the next round of :meth:`MongoCryptContext.kms_contexts`.

        :raises MongoCryptKmsError: for an error reply that cannot be retried.
        """
        binary, _keep = to_binary(data)
        if not lib.mongocrypt_kms_ctx_feed(self._kms, binary):
            self._raise()

    def feed_with_retry(self, data: BufferLike) -> bool:
        """Like :meth:`feed`, but returns True when the request must be sent again at once.

        On True the context has reset itself: sleep :attr:`usleep`, reconnect and resend
        :attr:`message`. With a libmongocrypt that lacks it (``has_kms_in_place_retry`` is False) it never
        returns True.
        """
        binary, _keep = to_binary(data)
        retry = ffi.new("bool *")
        if not lib.mongocrypt_kms_ctx_feed_with_retry(self._kms, binary, retry):
            self._raise()
        return bool(retry[0])

    def fail(self) -> None:
        """Report a network failure; libmongocrypt schedules a retry if any are left.

        :raises MongoCryptKmsError: when the retry budget is spent.
        """
        if not lib.mongocrypt_kms_ctx_fail(self._kms):
            self._raise()

    def __repr__(self) -> str:
        return f"<KmsContext {self.kms_provider} {self.endpoint}>"
