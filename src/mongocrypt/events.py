"""Events for KMS requests and key-vault operations, in the spirit of pymongo's monitoring.

Register listeners with ``ClientEncryption(..., event_listeners=[...])``. A listener implements any
of the methods of :class:`EncryptionEventListener`; each receives a frozen event. Events describe
traffic only: provider, endpoint, operation, timings, attempts, outcomes. They never carry key
material, credentials, tokens, request or reply bodies, or plaintext.

Listeners run synchronously on the thread doing the I/O; an exception a listener raises is logged
on the ``mongocrypt.events`` logger and never breaks the operation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

__all__ = [
    "EncryptionEventListener",
    "EventPublisher",
    "KeyVaultOperationFailed",
    "KeyVaultOperationStarted",
    "KeyVaultOperationSucceeded",
    "KmsRequestFailed",
    "KmsRequestStarted",
    "KmsRequestSucceeded",
]

LOGGER = logging.getLogger("mongocrypt.events")


@dataclass(frozen=True)
class KmsRequestStarted:
    """A KMS request is about to be sent.

    :param provider: the full provider name (``"aws"``, ``"kmip:backup"``).
    :param endpoint: ``host:port`` of the KMS.
    :param attempt: 1 for the first attempt, more for libmongocrypt's retries.
    """

    provider: str
    endpoint: str
    attempt: int


@dataclass(frozen=True)
class KmsRequestSucceeded:
    """A KMS reply was received and consumed; ``duration`` is in seconds."""

    provider: str
    endpoint: str
    attempt: int
    duration: float


@dataclass(frozen=True)
class KmsRequestFailed:
    """A KMS attempt failed; ``retrying`` says whether libmongocrypt will try again.

    :param failure: the exception's type and message (never a reply body).
    """

    provider: str
    endpoint: str
    attempt: int
    duration: float
    failure: str
    retrying: bool


@dataclass(frozen=True)
class KeyVaultOperationStarted:
    """A key-vault operation (``find``, ``insert``, ``update``, ``delete``, ...) begins.

    :param namespace: the key vault, ``db.collection``.
    """

    operation: str
    namespace: str


@dataclass(frozen=True)
class KeyVaultOperationSucceeded:
    """A key-vault operation finished; ``documents`` counts keys read or written."""

    operation: str
    namespace: str
    duration: float
    documents: int


@dataclass(frozen=True)
class KeyVaultOperationFailed:
    """A key-vault operation failed: ``failure`` is the error's type and message."""

    operation: str
    namespace: str
    duration: float
    failure: str


Event = Union[
    KmsRequestStarted,
    KmsRequestSucceeded,
    KmsRequestFailed,
    KeyVaultOperationStarted,
    KeyVaultOperationSucceeded,
    KeyVaultOperationFailed,
]


class EncryptionEventListener:
    """Base class for listeners: override the methods for the events you want."""

    def kms_request_started(self, event: KmsRequestStarted) -> None:
        """Called before a KMS request is sent."""

    def kms_request_succeeded(self, event: KmsRequestSucceeded) -> None:
        """Called after a KMS reply was consumed."""

    def kms_request_failed(self, event: KmsRequestFailed) -> None:
        """Called when a KMS attempt failed."""

    def key_vault_operation_started(self, event: KeyVaultOperationStarted) -> None:
        """Called before a key-vault operation."""

    def key_vault_operation_succeeded(self, event: KeyVaultOperationSucceeded) -> None:
        """Called after a key-vault operation succeeded."""

    def key_vault_operation_failed(self, event: KeyVaultOperationFailed) -> None:
        """Called after a key-vault operation failed."""


_METHODS = {
    KmsRequestStarted: "kms_request_started",
    KmsRequestSucceeded: "kms_request_succeeded",
    KmsRequestFailed: "kms_request_failed",
    KeyVaultOperationStarted: "key_vault_operation_started",
    KeyVaultOperationSucceeded: "key_vault_operation_succeeded",
    KeyVaultOperationFailed: "key_vault_operation_failed",
}


class EventPublisher:
    """Delivers events to the registered listeners (does nothing without listeners)."""

    __slots__ = ("listeners",)

    def __init__(self, listeners: Optional[Sequence[EncryptionEventListener]] = None) -> None:
        self.listeners = tuple(listeners or ())
        for listener in self.listeners:
            if not isinstance(listener, EncryptionEventListener):
                raise TypeError(
                    "event_listeners must be EncryptionEventListener instances, "
                    f"not {type(listener).__name__}"
                )

    def __bool__(self) -> bool:
        return bool(self.listeners)

    def publish(self, event: Event) -> None:
        method = _METHODS[type(event)]
        for listener in self.listeners:
            try:
                getattr(listener, method)(event)
            except Exception:
                LOGGER.exception("event listener %r failed on %s", listener, type(event).__name__)
