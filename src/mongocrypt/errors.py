"""Exceptions raised by mongocrypt.

The tree::

    Exception
    ├── MongoCryptError            any client-side encryption failure; raised as is when
    │   │                          libmongocrypt refused or failed an operation (``.code`` and its
    │   │                          message verbatim)
    │   ├── MongoCryptKmsError     the failure came from a KMS exchange (reply, retry budget)
    │   ├── MongoCryptClosedError  a handle or context was used after ``close()``
    │   ├── MongoCryptTimeoutError an operation ran out of its time budget (also a TimeoutError,
    │   │                          and a pymongo error whose ``timeout`` is True)
    │   ├── CredentialsError       on-demand KMS credentials could not be obtained
    │   ├── QueryAnalysisError     query analysis (mongocryptd, crypt_shared or the embedded
    │   │                          analyzer) refused a command (an automatic-encryption
    │   │                          limit) or failed (mongocryptd unreachable); also a pymongo
    │   │                          error
    │   ├── KeyVaultError          a key-vault read or write failed; keeps the server's code,
    │   │                          details and error labels (e.g. 11000 for a duplicate alt name);
    │   │                          also pymongo's OperationFailure
    │   └── EncryptedCollectionError  create_encrypted_collection failed; carries the
    │                                 encryptedFields filled in so far
    ├── TypeError                  an option has the wrong type (the message names the option)
    └── ValueError                 an option has a value libmongocrypt would reject (names it too)

Errors never carry key material, credentials or plaintext values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from pymongo.errors import OperationFailure, PyMongoError

from mongocrypt._secrets import REDACTED, is_secret_name

__all__ = [
    "CredentialsError",
    "EncryptedCollectionError",
    "KeyVaultError",
    "MongoCryptClosedError",
    "MongoCryptError",
    "MongoCryptKmsError",
    "MongoCryptTimeoutError",
    "QueryAnalysisError",
    "redact",
]

#: A JSON member: key, separator, then a string (possibly unterminated) or a bare value.
_JSON_MEMBER = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[^\s,}\]]+)')
#: An XML element's opening tag and its text.
_XML_TEXT = re.compile(r"<([\w:.-]+)([^>]*)>([^<]*)")
#: libmongocrypt's Range bound errors end with the plaintext being encrypted ("value: 1234").
_RANGE_VALUE = re.compile(r"(\bvalue: )\S+")


def _redact_json_member(match: re.Match[str]) -> str:
    if is_secret_name(match.group(1)):
        return f'"{match.group(1)}"{match.group(2)}"{REDACTED}"'
    return match.group(0)


def _redact_xml_text(match: re.Match[str]) -> str:
    if is_secret_name(match.group(1).rpartition(":")[2]) and match.group(3).strip():
        return f"<{match.group(1)}{match.group(2)}>{REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    """``text`` with secret JSON members, secret XML elements and quoted Range values replaced.

    Which names are secret is :func:`mongocrypt._secrets.is_secret_name`'s policy.

    Applied to every message that quotes something a peer or libmongocrypt wrote (a KMS or
    credential-endpoint reply body, a libmongocrypt status), so the promise above holds.
    """
    text = _JSON_MEMBER.sub(_redact_json_member, text)
    text = _XML_TEXT.sub(_redact_xml_text, text)
    return _RANGE_VALUE.sub(rf"\g<1>{REDACTED}", text)


class MongoCryptError(Exception):
    """An error reported by libmongocrypt or by the engine driving it.

    :param message: the error message (libmongocrypt's text, unchanged).
    :param code: libmongocrypt's error code, 0 when the engine raised it itself.
    """

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class MongoCryptKmsError(MongoCryptError):
    """A KMS exchange failed: an error reply, a malformed reply, or retries exhausted."""


class MongoCryptClosedError(MongoCryptError):
    """The handle or context was already closed."""


class CredentialsError(MongoCryptError):
    """Fetching on-demand KMS credentials failed (the message carries the endpoint's reply)."""


class MongoCryptTimeoutError(MongoCryptError, PyMongoError, TimeoutError):
    """The operation's time budget (``timeout_ms`` or ``pymongo.timeout()``) ran out.

    Also a pymongo error whose ``timeout`` is True, so pymongo's ``EncryptionError.timeout``
    reports it as a timeout when it is the cause.
    """

    @property
    def timeout(self) -> bool:
        return True


class KeyVaultError(MongoCryptError, OperationFailure):
    """A key-vault operation failed on the server or on the way to it.

    Also pymongo's ``OperationFailure`` with the server's code, details and labels, so code
    written for pymongo (reading ``EncryptionError.cause``, catching ``OperationFailure``) sees
    the server's error as it would without mongocrypt.

    :param message: what failed.
    :param code: the server's error code (0 when there is none, e.g. a network error).
    :param details: the server's error document, if any.
    :param error_labels: the server's error labels.
    :param timeout: whether the failure was a timeout (e.g. no server selected in time).
    """

    def __init__(
        self,
        message: str,
        code: int = 0,
        details: Optional[Mapping[str, Any]] = None,
        error_labels: Sequence[str] = (),
        timeout: bool = False,
    ) -> None:
        # OperationFailure owns ``code`` and ``details`` (read-only properties).
        OperationFailure.__init__(self, message, code, details)
        self._error_labels = set(error_labels)
        self._timed_out = timeout

    @property
    def error_labels(self) -> tuple[str, ...]:
        """The server's error labels, sorted."""
        return tuple(sorted(self._error_labels))

    @property
    def timeout(self) -> bool:
        return self._timed_out or super().timeout


class EncryptedCollectionError(MongoCryptError):
    """Creating an encrypted collection failed part way.

    :param encrypted_fields: the encryptedFields document as far as it was filled in: the data keys
        already created are in it, so they can be reused or deleted.
    """

    def __init__(self, message: str, encrypted_fields: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.encrypted_fields = encrypted_fields


class QueryAnalysisError(MongoCryptError, PyMongoError):
    """Query analysis refused or failed to mark a command for automatic encryption.

    Raised for commands or constructs automatic encryption cannot handle safely (the analyzer
    fails closed), and for mongocryptd or crypt_shared failing (mongocryptd unreachable, its error
    replies, crypt_shared's errors), with mongocryptd's error code where one exists; nothing was
    sent to the server. A pymongo error too, so pymongo's ``EncryptionError`` around it still
    reports ``timeout`` when mongocryptd could not be reached in time.

    :param message: what failed.
    :param code: mongocryptd's (or libmongocrypt's) error code, 0 when there is none.
    :param timeout: whether the analyzer ran out of time (mongocryptd's server selection).
    """

    def __init__(self, message: str, code: int = 0, timeout: bool = False) -> None:
        super().__init__(message, code)
        self._timeout = timeout

    @property
    def timeout(self) -> bool:
        return self._timeout
