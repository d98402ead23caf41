"""``AsyncClientEncryption``: the specification's explicit encryption and key management API, on
mongocrypt's own I/O (concurrent KMS requests, proxies, on-demand credentials, events)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

import pymongo
from bson import Binary
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import DeleteResult

from mongocrypt._client_encryption import ClientEncryptionCore
from mongocrypt.credentials import AwsCredentialProvider, OnDemandCredentials
from mongocrypt.engine import AsyncExplicitEncrypter, ExplicitEncryptOptions
from mongocrypt.errors import EncryptedCollectionError
from mongocrypt.events import EncryptionEventListener
from mongocrypt.io.asynchronous.pymongo_io import AsyncPymongoIO
from mongocrypt.io.kms import AsyncKmsTransport
from mongocrypt.options import (
    DataKeyOpts,
    EncryptOpts,
    RewrapManyDataKeyOpts,
    RewrapManyDataKeyResult,
    RewrapProgress,
    key_id_binary,
)

__all__ = ["AsyncClientEncryption"]


class AsyncKeyCursor(AsyncCursor[RawBSONDocument]):
    """A cursor over every key document whose reads all end by ``deadline`` (CSOT's cursor
    lifetime mode).

    :param collection: the key vault collection.
    :param deadline: ``time.monotonic()`` when the budget runs out.
    """

    def __init__(self, collection: AsyncCollection[RawBSONDocument], deadline: float) -> None:
        super().__init__(collection, {})
        self._deadline = deadline

    def _budget(self) -> Any:
        return pymongo.timeout(max(self._deadline - time.monotonic(), 1e-6))

    async def next(self) -> RawBSONDocument:
        with self._budget():
            return await super().next()

    async def to_list(self, length: Optional[int] = None) -> list[RawBSONDocument]:
        with self._budget():
            return await super().to_list(length)


KeyId = Union[Binary, uuid.UUID]


class AsyncClientEncryption(ClientEncryptionCore):
    """Explicit encryption, decryption and data key management.

    :param kms_providers: provider name -> settings (``{}`` asks for credentials on demand).
    :param key_vault_namespace: ``"database.collection"`` of the key vault.
    :param key_vault_client: the pymongo ``AsyncMongoClient`` holding the key vault.
    :param codec_options: how values are encoded and decoded (default: standard UUIDs).
    :param kms_tls_options: provider name -> TLS options (``tlsCAFile``,
        ``tlsCertificateKeyFile``...).
    :param key_expiration_ms: how long decrypted data keys stay cached (0: for ever).
    :param credential_providers: ``{"aws": callable}`` returning AWS credentials on demand.
    :param kms_connect_callback: opens KMS connections (see :mod:`mongocrypt.io.proxy`; a
        coroutine function with asyncio).
    :param timeout_ms: bound on every operation, KMS requests included.
    :param event_listeners: :class:`~mongocrypt.events.EncryptionEventListener` instances.
    :raises ValueError: or TypeError naming the offending option.
    """

    _client_type = pymongo.AsyncMongoClient

    def __init__(
        self,
        kms_providers: Mapping[str, Any],
        key_vault_namespace: str,
        key_vault_client: Any,
        codec_options: Optional[CodecOptions[Any]] = None,
        *,
        kms_tls_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
        key_expiration_ms: Optional[int] = None,
        credential_providers: Optional[Mapping[str, AwsCredentialProvider]] = None,
        kms_connect_callback: Optional[Callable[..., Any]] = None,
        timeout_ms: Optional[int] = None,
        event_listeners: Optional[Sequence[EncryptionEventListener]] = None,
    ) -> None:
        super().__init__(
            kms_providers,
            key_vault_namespace,
            key_vault_client,
            codec_options,
            key_expiration_ms,
            credential_providers,
            timeout_ms,
            event_listeners,
        )
        self._io = AsyncPymongoIO(
            self._key_vault,
            AsyncKmsTransport(kms_tls_options, kms_connect_callback, self._events),
            events=self._events,
            credentials=OnDemandCredentials(self._aws_provider),
        )
        self._encrypter = AsyncExplicitEncrypter(self._io, self.options)

    async def __aenter__(self) -> AsyncClientEncryption:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the libmongocrypt handle and the KMS threads (the key vault client stays
        open)."""
        self._encrypter.close()
        await self._io.close()

    async def create_data_key(
        self, kms_provider: str, opts: Optional[DataKeyOpts] = None
    ) -> Binary:
        """Create a data key wrapped by ``kms_provider``; returns its id (Binary subtype 4)."""
        options = self._data_key_options(kms_provider, opts)
        with self._deadline():
            key_id = await self._encrypter.create_data_key(options)
        return key_id_binary(key_id)

    async def encrypt(self, value: Any, opts: EncryptOpts) -> Binary:
        """Encrypt one BSON value; returns the ciphertext (Binary subtype 6).

        A key named by ``key_alt_name`` for the Indexed, Unindexed, Range or String algorithms
        (which libmongocrypt takes by id only) is looked up in the key vault, and its id
        remembered as long as keys are cached (``key_expiration_ms``).
        """
        options = self._encrypt_options(opts, False)
        with self._deadline():
            options = await self._by_key_id(options)
            result = await self._encrypter.encrypt(self._value(value), options)
        return self._unvalue(result)  # type: ignore[no-any-return]

    async def encrypt_expression(
        self, expression: Mapping[str, Any], opts: EncryptOpts
    ) -> dict[str, Any]:
        """Encrypt the bounds of a Range query expression (``$and`` of ``$gt``/``$lt`` forms);
        a ``key_alt_name`` is resolved as :meth:`encrypt` does."""
        options = self._encrypt_options(opts, True)
        with self._deadline():
            options = await self._by_key_id(options)
            result = await self._encrypter.encrypt(self._value(expression), options)
        return self._unvalue(result)  # type: ignore[no-any-return]

    async def _by_key_id(self, options: ExplicitEncryptOptions) -> ExplicitEncryptOptions:
        """``options`` naming the key by id where libmongocrypt needs one."""
        name = self._name_to_resolve(options)
        if name is None:
            return options
        key_id = self._cached_key_id(name)
        if key_id is None:
            with self._io.operation("find") as op:
                document = await self._key_vault.find_one({"keyAltNames": name}, {"_id": 1})
                op.count = document is not None
            key_id = self._remember_key_id(name, document)
        return self._with_key_id(options, key_id)

    async def decrypt(self, value: Binary) -> Any:
        """The plaintext of a ciphertext (no key or algorithm needed)."""
        ciphertext = self._ciphertext(value)
        with self._deadline():
            return self._unvalue(await self._encrypter.decrypt(self._value(ciphertext)))

    async def rewrap_many_data_key(
        self,
        filter: Mapping[str, Any],
        opts: Optional[RewrapManyDataKeyOpts] = None,
        *,
        progress: Optional[RewrapProgress] = None,
    ) -> RewrapManyDataKeyResult:
        """Re-wrap the matching keys under ``opts``'s master key (or each key's own).

        :param progress: called with (keys matched, keys rewrapped): once the keys are
            re-encrypted (rewrapped 0), and again once the key vault is updated.
        """
        provider, master_key = self._rewrap_target(opts)
        self._check_progress(progress)
        with self._deadline():
            result = await self._encrypter.rewrap_many_data_key(
                self._encode(filter), provider, master_key
            )
            updates = self._rewrap_updates(result)
            if progress is not None:
                progress(len(updates), 0)
            if not updates:
                return RewrapManyDataKeyResult()
            with self._io.operation("update") as op:
                written = await self._key_vault.bulk_write(updates)
                op.count = written.modified_count
        if progress is not None:
            progress(len(updates), written.modified_count)
        return RewrapManyDataKeyResult(written)

    async def delete_key(self, id: KeyId) -> DeleteResult:
        """Delete a data key.

        Clients that have the key cached (this one included) go on using it until their cache
        expires (``key_expiration_ms``); after that, what it encrypted cannot be decrypted.
        """
        with self._deadline(), self._io.operation("delete") as op:
            result: DeleteResult = await self._key_vault.delete_one(
                {"_id": key_id_binary(id, "id")}
            )
            op.count = result.deleted_count
        return result

    async def get_key(self, id: KeyId) -> Optional[RawBSONDocument]:
        """The key document with this id, or None."""
        with self._deadline(), self._io.operation("find") as op:
            document: Optional[RawBSONDocument] = await self._key_vault.find_one(
                {"_id": key_id_binary(id, "id")}
            )
            op.count = document is not None
        return document

    def get_keys(self) -> AsyncCursor[RawBSONDocument]:
        """A cursor over every key document (read concern majority); with ``timeout_ms``, the
        cursor's whole lifetime (its find and getMores) fits in it."""
        if self._timeout is None:
            cursor: AsyncCursor[RawBSONDocument] = self._key_vault.find({})
            return cursor
        return AsyncKeyCursor(self._key_vault, time.monotonic() + self._timeout)

    async def get_key_by_alt_name(self, key_alt_name: str) -> Optional[RawBSONDocument]:
        """The key document with this alternate name, or None."""
        with self._deadline(), self._io.operation("find") as op:
            document: Optional[RawBSONDocument] = await self._key_vault.find_one(
                {"keyAltNames": key_alt_name}
            )
            op.count = document is not None
        return document

    async def add_key_alt_name(self, id: KeyId, key_alt_name: str) -> Optional[RawBSONDocument]:
        """Add an alternate name; returns the document as it was before, or None.

        :raises KeyVaultError: with code 11000 if another key has that name (unique index).
        """
        with self._deadline(), self._io.operation("update") as op:
            document: Optional[RawBSONDocument] = await self._key_vault.find_one_and_update(
                {"_id": key_id_binary(id, "id")}, {"$addToSet": {"keyAltNames": key_alt_name}}
            )
            op.count = document is not None
        return document

    async def remove_key_alt_name(self, id: KeyId, key_alt_name: str) -> Optional[RawBSONDocument]:
        """Remove an alternate name (the field goes once empty); returns the previous document."""
        with self._deadline(), self._io.operation("update") as op:
            document: Optional[RawBSONDocument] = await self._key_vault.find_one_and_update(
                {"_id": key_id_binary(id, "id")}, self._remove_alt_name_update(key_alt_name)
            )
            op.count = document is not None
        return document

    async def create_encrypted_collection(
        self,
        database: AsyncDatabase[Any],
        name: str,
        encrypted_fields: Mapping[str, Any],
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]] = None,
        **create_options: Any,
    ) -> tuple[AsyncCollection[Any], dict[str, Any]]:
        """Create the data keys an encryptedFields document lacks, then the QE collection.

        Existing clients' automatic encryption settings do not change: configure them after.
        ``timeout_ms`` bounds the whole operation, not each data key.

        :returns: the collection and the encryptedFields with every keyId filled in.
        :raises EncryptedCollectionError: carrying the encryptedFields filled so far.
        """
        filled, needing = self._fields_needing_keys(encrypted_fields)
        try:
            with self._deadline():  # one budget for every data key and the create
                for field in needing:
                    field["keyId"] = await self.create_data_key(
                        kms_provider, DataKeyOpts(master_key)
                    )
                collection = await database.create_collection(
                    name, encryptedFields=filled, **create_options
                )
        except Exception as exc:
            raise EncryptedCollectionError(
                f"create_encrypted_collection({name!r}) failed: {exc}", filled
            ) from exc
        return collection, filled
