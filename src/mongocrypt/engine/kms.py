"""One KMS request of a context: what to send where, and the reply fed back byte by byte."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn, Optional

from mongocrypt.engine.binary import BinaryView, BufferLike, new_out, read_out
from mongocrypt.engine.native import ffi, lib
from mongocrypt.engine.status import raise_status
from mongocrypt.errors import MongoCryptKmsError

if TYPE_CHECKING:
    from mongocrypt.engine.context import MongoCryptContext

__all__ = ["KmsContext"]

#: The end of an HTTP reply's headers, and its Content-Length.
_HEADERS_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length:\s*([0-9]+)\s*$", re.IGNORECASE | re.MULTILINE)


#: What C's isspace() matches, which libmongocrypt's base64 decoder skips (Python's str.split()
#: would also drop characters such as U+001C, which that decoder refuses).
_C_WHITESPACE = dict.fromkeys(map(ord, " \t\n\v\f\r"))


class _Members(list[tuple[str, Any]]):
    """A JSON object's members as (name, value) pairs, every duplicate kept."""


def _check_gcp_reply(head: bytes, body: bytes) -> None:
    """Refuse a complete GCP reply (``head``, ``body``) whose key field is not base64.

    libmongocrypt (1.13 to 1.21 at least) reads an uninitialised length when a GCP
    ``ciphertext`` or ``plaintext`` fails to decode, which can abort the process; this check
    turns that reply into an error before it reaches the native parser. Every top-level member
    of that name is checked, since libmongocrypt reads the first and Python's ``json`` keeps the
    last of duplicates; control characters in strings are accepted, as libbson's parser does.
    The value must be base64 as libmongocrypt's decoder reads it: only C's six whitespace
    characters are skipped, and the encoding must be canonical (the bits after the last whole
    byte zero), as that decoder refuses any other.
    """
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        return
    try:
        document = json.loads(body, object_pairs_hook=_Members, strict=False)
    except ValueError:
        return  # libmongocrypt reports unparsable JSON itself
    if not isinstance(document, _Members):
        return
    for field, value in document:
        if field in ("ciphertext", "plaintext") and isinstance(value, str):
            text = value.translate(_C_WHITESPACE)
            try:
                canonical = base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
            except (binascii.Error, ValueError):
                canonical = False
            if not canonical:
                raise MongoCryptKmsError(
                    f"GCP KMS reply's {field!r} is not valid base64 (value not shown)"
                )


class _ReplyGuard:
    """Collects a GCP reply until its Content-Length is met, then checks it whole."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen = bytearray()

    def before_feed(self, data: BufferLike) -> None:
        self._seen += data
        head, found, body = bytes(self._seen).partition(_HEADERS_END)
        length = _CONTENT_LENGTH.search(head) if found else None
        if length is not None and len(body) >= int(length.group(1)):
            _check_gcp_reply(head, body[: int(length.group(1))])


class KmsContext:
    """A KMS request owned by a :class:`~mongocrypt.engine.context.MongoCryptContext`.

    Valid until its context completes the KMS state; the I/O layer opens a TLS connection to
    :attr:`endpoint`, sends :attr:`message`, and feeds the reply until :attr:`bytes_needed` is 0.
    """

    __slots__ = ("_guard", "_kms", "_owner", "attempt")

    def __init__(self, kms: Any, owner: MongoCryptContext, attempt: int = 1) -> None:
        self._kms = kms
        self._owner = owner  # its memory belongs to the owning context
        #: 1 for the first attempt at this request, 2 and more for libmongocrypt's retries
        self.attempt = attempt
        provider = self.kms_provider
        gcp = provider == "gcp" or provider.startswith("gcp:")
        self._guard: Optional[_ReplyGuard] = _ReplyGuard() if gcp else None

    @property
    def _live(self) -> Any:
        self._owner.check_open()
        return self._kms

    def _raise(self) -> NoReturn:
        raise_status(lib.mongocrypt_kms_ctx_status, self._kms, MongoCryptKmsError)

    @property
    def endpoint(self) -> str:
        """``host:port`` to connect to (libmongocrypt always includes the port)."""
        out = ffi.new("char **")
        if not lib.mongocrypt_kms_ctx_endpoint(self._live, out):
            self._raise()
        return str(ffi.string(out[0]).decode())

    @property
    def message(self) -> bytes:
        """The HTTP (or KMIP) request to send."""
        out = new_out()
        if not lib.mongocrypt_kms_ctx_message(self._live, out):
            self._raise()
        return read_out(out)

    @property
    def bytes_needed(self) -> int:
        """How many more reply bytes libmongocrypt wants; 0 when the reply is complete."""
        return int(lib.mongocrypt_kms_ctx_bytes_needed(self._live))

    @property
    def kms_provider(self) -> str:
        """The full provider name, e.g. ``"aws"`` or ``"aws:eu"`` (keys the TLS options)."""
        raw = lib.mongocrypt_kms_ctx_get_kms_provider(self._live, ffi.NULL)
        return str(ffi.string(raw).decode())

    @property
    def usleep(self) -> int:
        """Microseconds to wait before sending (libmongocrypt's retry backoff)."""
        return int(lib.mongocrypt_kms_ctx_usleep(self._live))

    def feed(self, data: BufferLike) -> None:
        """Give libmongocrypt reply bytes (at most :attr:`bytes_needed`).

        A retryable reply (HTTP 429/5xx) is retried through the context: the request comes back
        from the next round of :meth:`MongoCryptContext.kms_contexts`.

        :raises MongoCryptKmsError: for an error reply that cannot be retried.
        """
        if self._guard is not None:
            self._guard.before_feed(data)
        with BinaryView(data) as binary:
            if not lib.mongocrypt_kms_ctx_feed(self._live, binary):
                self._raise()

    def feed_with_retry(self, data: BufferLike) -> bool:
        """Like :meth:`feed`, but returns True when the reply was retryable (HTTP 429/5xx).

        On True this attempt is over: close the connection and stop reading. The request comes
        back, reset, in the context's next :meth:`~MongoCryptContext.kms_contexts` batch, to be
        sent after :attr:`usleep`. With a libmongocrypt that lacks this call
        (``has_kms_in_place_retry`` is False) it behaves like :meth:`feed` and returns False.
        """
        if self._guard is not None:
            self._guard.before_feed(data)
        retry = ffi.new("bool *")
        with BinaryView(data) as binary:
            if not lib.mongocrypt_kms_ctx_feed_with_retry(self._live, binary, retry):
                self._raise()
        return bool(retry[0])

    def fail(self) -> None:
        """Report a network failure; libmongocrypt schedules a retry if any are left.

        :raises MongoCryptKmsError: when the retry budget is spent.
        """
        if not lib.mongocrypt_kms_ctx_fail(self._live):
            self._raise()

    def __repr__(self) -> str:
        if self._owner.closed:
            return "<KmsContext of a closed context>"
        return f"<KmsContext {self.kms_provider} {self.endpoint}>"
