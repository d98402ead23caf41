"""The engine's I/O done through pymongo: key vault, listCollections, KMS, credentials.

:class:`PymongoIO` (sync) and :class:`AsyncPymongoIO` (asyncio) implement the engine's callback
contract for mongocrypt's own API. Key-vault reads use read concern majority and writes write
concern majority; every key-vault failure becomes a :class:`~mongocrypt.errors.KeyVaultError` that
keeps the server's code, details and labels.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Callable, Optional, TypeVar

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from mongocrypt.engine import AsyncMongoCryptCallback, KmsContext, MongoCryptCallback
from mongocrypt.errors import KeyVaultError, MongoCryptError
from mongocrypt.events import (
    EventPublisher,
    KeyVaultOperationFailed,
    KeyVaultOperationStarted,
    KeyVaultOperationSucceeded,
)
from mongocrypt.io.credentials import OnDemandCredentials
from mongocrypt.io.kms import AsyncKmsTransport, KmsTransport

__all__ = [
    "KEY_VAULT_CODEC_OPTIONS",
    "AsyncPymongoIO",
    "KeyVaultOperation",
    "PymongoIO",
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
    return KeyVaultError(
        f"key vault {operation} on {namespace} failed: {error}",
        code=getattr(error, "code", None) or 0,
        details=details if isinstance(details, Mapping) else None,
        error_labels=sorted(getattr(error, "_error_labels", ()) or ()),
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


class _Shared:
    """What the sync and async I/O have in common."""

    def __init__(
        self,
        key_vault: Any,
        events: Optional[EventPublisher],
        credentials: Optional[OnDemandCredentials],
        marker: Optional[Callable[..., Any]],
    ) -> None:
        self.key_vault = key_vault_collection(key_vault)
        self.namespace = f"{key_vault.database.name}.{key_vault.name}"
        self.events = events or EventPublisher()
        self.credentials = credentials or OnDemandCredentials()
        self.marker = marker

    def operation(self, name: str) -> KeyVaultOperation:
        return KeyVaultOperation(self.events, name, self.namespace)

    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        return bson.encode(doc)

    def _no_marker(self) -> MongoCryptError:
        return MongoCryptError(
            "this client has no query analysis configured, so it cannot mark commands for "
            "automatic encryption"
        )


class PymongoIO(_Shared, MongoCryptCallback):
    """The engine's I/O over a synchronous pymongo client.

    :param key_vault: the key vault collection (a ``pymongo.collection.Collection``).
    :param kms: the KMS transport.
    :param metadata_client: runs listCollections for automatic encryption (None for explicit only).
    :param events: where key-vault events go.
    :param credentials: fetches on-demand KMS credentials.
    :param marker: query analysis for automatic encryption: ``(database, command) -> reply``.
    """

    def __init__(
        self,
        key_vault: Any,
        kms: KmsTransport,
        *,
        metadata_client: Any = None,
        events: Optional[EventPublisher] = None,
        credentials: Optional[OnDemandCredentials] = None,
        marker: Optional[Callable[[str, bytes], bytes]] = None,
    ) -> None:
        super().__init__(key_vault, events, credentials, marker)
        self.kms = kms
        self.metadata_client = metadata_client

    def kms_request(self, kms_context: KmsContext) -> None:
        self.kms.service([kms_context])

    def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        self.kms.service(kms_contexts)

    def collection_info(self, database: str, filter: bytes) -> list[bytes]:
        if self.metadata_client is None:
            raise MongoCryptError("no metadata client: this client cannot look up collections")
        database_ = self.metadata_client.get_database(
            database, codec_options=KEY_VAULT_CODEC_OPTIONS
        )
        with database_.list_collections(filter=RawBSONDocument(filter)) as cursor:
            return [info.raw for info in cursor]

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        if self.marker is None:
            raise self._no_marker()
        reply: bytes = self.marker(database, cmd)
        return reply

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        with self.operation("find") as op, self.key_vault.find(RawBSONDocument(filter)) as cursor:
            keys = [key.raw for key in cursor]
            op.count = len(keys)
        return iter(keys)

    def insert_data_key(self, data_key: bytes) -> Any:
        document = RawBSONDocument(data_key, KEY_VAULT_CODEC_OPTIONS)
        with self.operation("insert") as op:
            self.key_vault.insert_one(document)
            op.count = 1
        return document["_id"]

    def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        return self.credentials.fetch(providers)

    def close(self) -> None:
        self.kms.close()


class AsyncPymongoIO(_Shared, AsyncMongoCryptCallback):
    """:class:`PymongoIO` over pymongo's ``AsyncMongoClient``."""

    def __init__(
        self,
        key_vault: Any,
        kms: AsyncKmsTransport,
        *,
        metadata_client: Any = None,
        events: Optional[EventPublisher] = None,
        credentials: Optional[OnDemandCredentials] = None,
        marker: Optional[Callable[..., Any]] = None,
    ) -> None:
        super().__init__(key_vault, events, credentials, marker)
        self.kms = kms
        self.metadata_client = metadata_client

    async def kms_request(self, kms_context: KmsContext) -> None:
        await self.kms.service([kms_context])

    async def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        await self.kms.service(kms_contexts)

    async def collection_info(self, database: str, filter: bytes) -> list[bytes]:
        if self.metadata_client is None:
            raise MongoCryptError("no metadata client: this client cannot look up collections")
        database_ = self.metadata_client.get_database(
            database, codec_options=KEY_VAULT_CODEC_OPTIONS
        )
        cursor = await database_.list_collections(filter=RawBSONDocument(filter))
        async with cursor:
            return [info.raw async for info in cursor]

    async def mark_command(self, database: str, cmd: bytes) -> bytes:
        if self.marker is None:
            raise self._no_marker()
        reply: bytes = await self.marker(database, cmd)
        return reply

    async def fetch_keys(self, filter: bytes) -> AsyncIterator[bytes]:
        with self.operation("find") as op:
            cursor = self.key_vault.find(RawBSONDocument(filter))
            async with cursor:
                keys = [key.raw async for key in cursor]
            op.count = len(keys)
        for key in keys:
            yield key

    async def insert_data_key(self, data_key: bytes) -> Any:
        document = RawBSONDocument(data_key, KEY_VAULT_CODEC_OPTIONS)
        with self.operation("insert") as op:
            await self.key_vault.insert_one(document)
            op.count = 1
        return document["_id"]

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        return await self.credentials.fetch_async(providers)

    async def close(self) -> None:
        self.kms.close()
