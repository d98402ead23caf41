"""The key vault through pymongo: codec options, concerns, events and errors.

Key-vault reads use read concern majority and writes write concern majority; every key-vault
failure becomes a :class:`~mongocrypt.errors.KeyVaultError` that keeps the server's code, details
and labels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Optional, TypeVar

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from mongocrypt.errors import KeyVaultError
from mongocrypt.events import (
    EventPublisher,
    KeyVaultOperationFailed,
    KeyVaultOperationStarted,
    KeyVaultOperationSucceeded,
)

__all__ = [
    "KEY_VAULT_CODEC_OPTIONS",
    "KeyVaultOperation",
    "key_vault_collection",
    "key_vault_error",
]

#: Key documents stay raw BSON (they are fed to libmongocrypt as they are); key ids read from them
#: stay bson Binary subtype 4, as create_data_key returns them.
KEY_VAULT_CODEC_OPTIONS: CodecOptions[RawBSONDocument] = CodecOptions(
    document_class=RawBSONDocument
)
C = TypeVar("C")


def key_vault_collection(collection: C) -> C:
    """``collection`` with the key vault's codec options and majority read/write concerns."""
    return collection.with_options(  # type: ignore[attr-defined, no-any-return]
        codec_options=KEY_VAULT_CODEC_OPTIONS,
        read_concern=ReadConcern("majority"),
        write_concern=WriteConcern(w="majority"),
    )


def key_vault_error(operation: str, namespace: str, error: PyMongoError) -> KeyVaultError:
    """A :class:`KeyVaultError` carrying the server's code, details and labels."""
    details = getattr(error, "details", None)
    if not isinstance(details, Mapping):
        details = None
    # KeyVaultError, an OperationFailure, appends the server's document itself.
    reason = details.get("errmsg", error) if details is not None else error
    return KeyVaultError(
        f"key vault {operation} on {namespace} failed: {reason}",
        code=getattr(error, "code", None) or 0,
        details=details,
        error_labels=sorted(getattr(error, "_error_labels", ()) or ()),
        timeout=error.timeout,
    )


class KeyVaultOperation:
    """Times one key-vault operation, publishes its events and translates its errors."""

    __slots__ = ("count", "events", "namespace", "operation", "started")

    def __init__(self, events: EventPublisher, operation: str, namespace: str) -> None:
        self.events, self.operation, self.namespace = events, operation, namespace
        self.count = 0

    def __enter__(self) -> KeyVaultOperation:
        self.started = time.monotonic()
        if self.events:
            self.events.publish(KeyVaultOperationStarted(self.operation, self.namespace))
        return self

    def __exit__(self, kind: Optional[type], error: Optional[BaseException], tb: Any) -> None:
        duration = time.monotonic() - self.started
        if error is None:
            if self.events:
                self.events.publish(
                    KeyVaultOperationSucceeded(self.operation, self.namespace, duration, self.count)
                )
            return
        if self.events:
            self.events.publish(
                KeyVaultOperationFailed(
                    self.operation, self.namespace, duration, f"{type(error).__name__}: {error}"
                )
            )
        if isinstance(error, PyMongoError):
            raise key_vault_error(self.operation, self.namespace, error) from error
