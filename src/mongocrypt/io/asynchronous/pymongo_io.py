"""The engine's I/O for mongocrypt's own ``ClientEncryption``: key vault, KMS, credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn, Optional

import bson
from bson.raw_bson import RawBSONDocument

from mongocrypt.credentials import OnDemandCredentials
from mongocrypt.engine import AsyncMongoCryptCallback, KmsContext
from mongocrypt.errors import MongoCryptError
from mongocrypt.events import EventPublisher
from mongocrypt.io.key_vault import KEY_VAULT_CODEC_OPTIONS, KeyVaultOperation, key_vault_collection
from mongocrypt.io.kms import AsyncKmsTransport

__all__ = ["AsyncPymongoIO"]


class AsyncPymongoIO(AsyncMongoCryptCallback):
    """The engine's I/O over a pymongo client, for explicit encryption and key management.

    :param key_vault: the key vault collection.
    :param kms: the KMS transport.
    :param events: where key-vault events go.
    :param credentials: fetches on-demand KMS credentials.
    """

    def __init__(
        self,
        key_vault: Any,
        kms: AsyncKmsTransport,
        *,
        events: Optional[EventPublisher] = None,
        credentials: Optional[OnDemandCredentials] = None,
    ) -> None:
        self.key_vault = key_vault_collection(key_vault)
        self.namespace = f"{key_vault.database.name}.{key_vault.name}"
        self.kms = kms
        self.events = events or EventPublisher()
        self.credentials = credentials or OnDemandCredentials()

    def operation(self, name: str) -> KeyVaultOperation:
        """Time one key-vault operation, publish its events and translate its errors."""
        return KeyVaultOperation(self.events, name, self.namespace)

    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        return bson.encode(doc)

    async def kms_request(self, kms_context: KmsContext) -> None:
        await self.kms.service([kms_context])

    async def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        await self.kms.service(kms_contexts)

    async def collection_info(self, database: str, filter: bytes) -> NoReturn:
        raise _explicit_only("look up collections")

    async def mark_command(self, database: str, cmd: bytes) -> NoReturn:
        raise _explicit_only("mark commands")

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


def _explicit_only(what: str) -> MongoCryptError:
    return MongoCryptError(f"this I/O serves explicit encryption only: it cannot {what}")
