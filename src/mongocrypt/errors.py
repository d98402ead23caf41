"""Exceptions raised by mongocrypt.

The tree::

    Exception
    ├── MongoCryptError            any client-side encryption failure; raised as is when libmongocrypt
    │   │                          refused or failed an operation (``.code`` and its message verbatim)
    │   ├── MongoCryptKmsError     the failure came from a KMS exchange (reply, retry budget)
    │   ├── MongoCryptClosedError  a handle or context was used after ``close()``
    │   └── CredentialsError       on-demand KMS credentials could not be obtained
    ├── TypeError                  an option has the wrong type (the message names the option)
    └── ValueError                 an option has a value libmongocrypt would reject (names it too)

Errors never carry key material, credentials or plaintext values.
"""

from __future__ import annotations

__all__ = ["CredentialsError", "MongoCryptClosedError", "MongoCryptError", "MongoCryptKmsError"]


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
