"""``ClientEncryption`` and ``AsyncClientEncryption``: the specification's explicit encryption and
key management API, on mongocrypt's own I/O (concurrent KMS requests, proxies, on-demand
credentials, events).

Both classes share every rule in :class:`_ClientEncryptionCore`; they differ only in awaiting the
key vault and the state machine.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

import bson
import pymongo
from bson import Binary
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo.operations import UpdateOne

from mongocrypt.engine import (
    AsyncExplicitEncrypter,
    ExplicitEncrypter,
    MongoCryptOptions,
)
from mongocrypt.errors import EncryptedCollectionError
from mongocrypt.events import EncryptionEventListener, EventPublisher
from mongocrypt.io.credentials import AwsCredentialProvider, OnDemandCredentials
from mongocrypt.io.kms import AsyncKmsTransport, KmsTransport
from mongocrypt.io.pymongo_io import AsyncPymongoIO, PymongoIO, key_vault_collection
from mongocrypt.options import (
    DataKeyOpts,
    EncryptOpts,
    RewrapManyDataKeyOpts,
    RewrapManyDataKeyResult,
    key_id_binary,
)

__all__ = ["AsyncClientEncryption", "ClientEncryption"]

KeyId = Union[Binary, uuid.UUID]


class _ClientEncryptionCore:
    """Validation, request building and result shaping shared by the sync and async classes."""

    def __init__(
        self,
        kms_providers: Mapping[str, Any],
        key_vault_namespace: str,
        key_vault_client: Any,
        codec_options: Optional[CodecOptions[Any]],
        kms_tls_options: Optional[Mapping[str, Mapping[str, Any]]],
        key_expiration_ms: Optional[int],
        credential_providers: Optional[Mapping[str, AwsCredentialProvider]],
        timeout_ms: Optional[int],
        event_listeners: Optional[Sequence[EncryptionEventListener]],
    ) -> None:
        if (
            not isinstance(key_vault_namespace, str)
            or key_vault_namespace.count(".") < 1
            or (key_vault_namespace.startswith(".") or key_vault_namespace.endswith("."))
        ):
            raise ValueError(
                f"key_vault_namespace must be 'database.collection', not {key_vault_namespace!r}"
            )
        if timeout_ms is not None and (
            isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0
        ):
            raise ValueError(f"timeout_ms must be an int >= 0, not {timeout_ms!r}")
        if codec_options is not None and not isinstance(codec_options, CodecOptions):
            raise TypeError(
                f"codec_options must be CodecOptions, not {type(codec_options).__name__}"
            )
        self.options = MongoCryptOptions(
            kms_providers, bypass_encryption=True, key_expiration_ms=key_expiration_ms
        )
        self._aws_provider = _aws_provider(credential_providers, kms_providers)
        self.key_vault_namespace = key_vault_namespace
        database, collection = key_vault_namespace.split(".", 1)
        self._key_vault = key_vault_collection(key_vault_client[database][collection])
        self._codec_options = codec_options or CodecOptions(uuid_representation=STANDARD)
        self._timeout = None if timeout_ms is None else timeout_ms / 1000
        self._events = EventPublisher(event_listeners)
        self._tls_options = kms_tls_options

    def _deadline(self) -> contextlib.AbstractContextManager[Any]:
        """The client's ``timeout_ms`` for one operation (pymongo's own timeout() otherwise)."""
        return (
            pymongo.timeout(self._timeout)
            if self._timeout is not None
            else contextlib.nullcontext()
        )

    def _encode(self, document: Mapping[str, Any]) -> bytes:
        return bson.encode(document, codec_options=self._codec_options)

    def _value(self, value: Any) -> bytes:
        return self._encode({"v": value})

    def _unvalue(self, document: bytes) -> Any:
        return bson.decode(document, codec_options=self._codec_options)["v"]

    @staticmethod
    def _data_key_args(opts: Optional[DataKeyOpts]) -> dict[str, Any]:
        opts = opts or DataKeyOpts()
        if not isinstance(opts, DataKeyOpts):
            raise TypeError(f"opts must be DataKeyOpts, not {type(opts).__name__}")
        return {
            "master_key": opts.master_key,
            "key_alt_names": list(opts.key_alt_names),
            "key_material": opts.key_material,
        }

    @staticmethod
    def _encrypt_args(opts: EncryptOpts, is_expression: bool) -> dict[str, Any]:
        if not isinstance(opts, EncryptOpts):
            raise TypeError(f"opts must be EncryptOpts, not {type(opts).__name__}")
        return {
            "algorithm": opts.algorithm,
            "key_id": None if opts.key_id is None else bytes(key_id_binary(opts.key_id)),
            "key_alt_name": opts.key_alt_name,
            "query_type": opts.query_type,
            "contention_factor": opts.contention_factor,
            "range_opts": None
            if opts.range_opts is None
            else bson.encode(opts.range_opts.document),
            "is_expression": is_expression,
            "string_opts": None
            if opts.string_opts is None
            else bson.encode(opts.string_opts.document),
        }

    @staticmethod
    def _ciphertext(value: Any) -> Binary:
        if not (isinstance(value, Binary) and value.subtype == 6):
            raise TypeError(f"value to decrypt must be a bson Binary of subtype 6, not {value!r}")
        return value

    @staticmethod
    def _rewrap_target(opts: Optional[RewrapManyDataKeyOpts]) -> tuple[Optional[str], Any]:
        if opts is None:
            return None, None
        if not isinstance(opts, RewrapManyDataKeyOpts):
            raise TypeError(f"opts must be RewrapManyDataKeyOpts, not {type(opts).__name__}")
        return opts.provider, opts.master_key

    @staticmethod
    def _rewrap_updates(result: bytes) -> list[UpdateOne]:
        return [
            UpdateOne(
                {"_id": key["_id"]},
                {
                    "$set": {"masterKey": key["masterKey"], "keyMaterial": key["keyMaterial"]},
                    "$currentDate": {"updateDate": True},
                },
            )
            for key in bson.decode(result)["v"]
        ]

    @staticmethod
    def _remove_alt_name_update(name: str) -> list[dict[str, Any]]:
        """Drop ``name``; when it was the only one, drop the whole field."""
        return [
            {
                "$set": {
                    "keyAltNames": {
                        "$cond": [
                            {"$eq": ["$keyAltNames", [name]]},
                            "$$REMOVE",
                            {
                                "$filter": {
                                    "input": "$keyAltNames",
                                    "cond": {"$ne": ["$$this", name]},
                                }
                            },
                        ]
                    }
                }
            }
        ]

    @staticmethod
    def _fields_needing_keys(
        encrypted_fields: Mapping[str, Any],
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if not isinstance(encrypted_fields, Mapping):
            raise TypeError(
                f"encrypted_fields must be a mapping, not {type(encrypted_fields).__name__}"
            )
        filled = copy.deepcopy(dict(encrypted_fields))
        fields = filled.get("fields", [])
        needing = [f for f in fields if isinstance(f, dict) and f.get("keyId") is None]
        return filled, needing


def _aws_provider(
    credential_providers: Optional[Mapping[str, Any]], kms_providers: Mapping[str, Any]
) -> Optional[AwsCredentialProvider]:
    """The custom AWS credential provider, if any, checked against the spec's rules."""
    if not credential_providers:
        return None
    if not isinstance(credential_providers, Mapping) or set(credential_providers) - {"aws"}:
        raise ValueError("credential_providers may only hold an 'aws' credential provider")
    provider = credential_providers.get("aws")
    if provider is None:
        return None
    if not callable(provider):
        raise TypeError("credential_providers['aws'] must be callable")
    if kms_providers.get("aws") != {}:
        raise ValueError(
            "credential_providers['aws'] requires kms_providers['aws'] to be empty ({}), "
            "asking for credentials on demand"
        )
    return provider  # type: ignore[no-any-return]


class ClientEncryption(_ClientEncryptionCore):
    """Explicit encryption, decryption and data key management.

    :param kms_providers: provider name -> settings (``{}`` asks for credentials on demand).
    :param key_vault_namespace: ``"database.collection"`` of the key vault.
    :param key_vault_client: the ``pymongo.MongoClient`` holding the key vault.
    :param codec_options: how values are encoded and decoded (default: standard UUIDs).
    :param kms_tls_options: provider name -> TLS options (``tlsCAFile``,
        ``tlsCertificateKeyFile``...).
    :param key_expiration_ms: how long decrypted data keys stay cached (0: for ever).
    :param credential_providers: ``{"aws": callable}`` returning AWS credentials on demand.
    :param kms_connect_callback: opens KMS connections (see :mod:`mongocrypt.io.proxy`).
    :param timeout_ms: bound on every operation, KMS requests included.
    :param event_listeners: :class:`~mongocrypt.events.EncryptionEventListener` instances.
    :raises ValueError: or TypeError naming the offending option.
    """

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
            kms_tls_options,
            key_expiration_ms,
            credential_providers,
            timeout_ms,
            event_listeners,
        )
        self._io = PymongoIO(
            self._key_vault,
            KmsTransport(kms_tls_options, kms_connect_callback, self._events),
            events=self._events,
            credentials=OnDemandCredentials(self._aws_provider),
        )
        self._encrypter = ExplicitEncrypter(self._io, self.options)

    def __enter__(self) -> ClientEncryption:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the libmongocrypt handle and KMS threads (the key vault client stays open)."""
        self._encrypter.close()

    def create_data_key(self, kms_provider: str, opts: Optional[DataKeyOpts] = None) -> Binary:
        """Create a data key wrapped by ``kms_provider``; returns its id (Binary subtype 4)."""
        with self._deadline():
            key_id = self._encrypter.create_data_key(kms_provider, **self._data_key_args(opts))
        return key_id_binary(key_id)

    def encrypt(self, value: Any, opts: EncryptOpts) -> Binary:
        """Encrypt one BSON value; returns the ciphertext (Binary subtype 6)."""
        with self._deadline():
            result = self._encrypter.encrypt(self._value(value), **self._encrypt_args(opts, False))
        return self._unvalue(result)  # type: ignore[no-any-return]

    def encrypt_expression(
        self, expression: Mapping[str, Any], opts: EncryptOpts
    ) -> dict[str, Any]:
        """Encrypt the bounds of a Range query expression (``$and`` of ``$gt``/``$lt`` forms)."""
        with self._deadline():
            result = self._encrypter.encrypt(
                self._value(expression), **self._encrypt_args(opts, True)
            )
        return self._unvalue(result)  # type: ignore[no-any-return]

    def decrypt(self, value: Binary) -> Any:
        """The plaintext of a ciphertext (no key or algorithm needed)."""
        ciphertext = self._ciphertext(value)
        with self._deadline():
            return self._unvalue(self._encrypter.decrypt(self._value(ciphertext)))

    def rewrap_many_data_key(
        self, filter: Mapping[str, Any], opts: Optional[RewrapManyDataKeyOpts] = None
    ) -> RewrapManyDataKeyResult:
        """Re-wrap the matching keys under ``opts``'s master key (or each key's own)."""
        provider, master_key = self._rewrap_target(opts)
        with self._deadline():
            result = self._encrypter.rewrap_many_data_key(
                self._encode(filter), provider, master_key
            )
            if result is None:
                return RewrapManyDataKeyResult()
            with self._io.operation("update") as op:
                written = self._key_vault.bulk_write(self._rewrap_updates(result))
                op.count = written.modified_count
        return RewrapManyDataKeyResult(written)

    def delete_key(self, id: KeyId) -> Any:
        """Delete a data key; returns pymongo's ``DeleteResult``."""
        with self._deadline(), self._io.operation("delete") as op:
            result = self._key_vault.delete_one({"_id": key_id_binary(id, "id")})
            op.count = result.deleted_count
        return result

    def get_key(self, id: KeyId) -> Optional[Any]:
        """The key document with this id, or None."""
        with self._deadline(), self._io.operation("find") as op:
            document = self._key_vault.find_one({"_id": key_id_binary(id, "id")})
            op.count = document is not None
        return document

    def get_keys(self) -> Any:
        """A cursor over every key document (read concern majority)."""
        return self._key_vault.find({})

    def get_key_by_alt_name(self, key_alt_name: str) -> Optional[Any]:
        """The key document with this alternate name, or None."""
        with self._deadline(), self._io.operation("find") as op:
            document = self._key_vault.find_one({"keyAltNames": key_alt_name})
            op.count = document is not None
        return document

    def add_key_alt_name(self, id: KeyId, key_alt_name: str) -> Optional[Any]:
        """Add an alternate name; returns the document as it was before, or None.

        :raises KeyVaultError: with code 11000 if another key has that name (unique index).
        """
        with self._deadline(), self._io.operation("update") as op:
            document = self._key_vault.find_one_and_update(
                {"_id": key_id_binary(id, "id")}, {"$addToSet": {"keyAltNames": key_alt_name}}
            )
            op.count = document is not None
        return document

    def remove_key_alt_name(self, id: KeyId, key_alt_name: str) -> Optional[Any]:
        """Remove an alternate name (the field goes once empty); returns the previous document."""
        with self._deadline(), self._io.operation("update") as op:
            document = self._key_vault.find_one_and_update(
                {"_id": key_id_binary(id, "id")}, self._remove_alt_name_update(key_alt_name)
            )
            op.count = document is not None
        return document

    def create_encrypted_collection(
        self,
        database: Any,
        name: str,
        encrypted_fields: Mapping[str, Any],
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]] = None,
        **create_options: Any,
    ) -> tuple[Any, dict[str, Any]]:
        """Create the data keys an encryptedFields document lacks, then the QE collection.

        Existing clients' automatic encryption settings do not change: configure them after.

        :returns: the collection and the encryptedFields with every keyId filled in.
        :raises EncryptedCollectionError: carrying the encryptedFields filled so far.
        """
        filled, needing = self._fields_needing_keys(encrypted_fields)
        try:
            for field in needing:
                field["keyId"] = self.create_data_key(kms_provider, DataKeyOpts(master_key))
            with self._deadline():
                collection = database.create_collection(
                    name, encryptedFields=filled, **create_options
                )
        except Exception as exc:
            raise EncryptedCollectionError(
                f"create_encrypted_collection({name!r}) failed: {exc}", filled
            ) from exc
        return collection, filled


class AsyncClientEncryption(_ClientEncryptionCore):
    """:class:`ClientEncryption` for asyncio, over pymongo's ``AsyncMongoClient``.

    Same parameters; ``kms_connect_callback`` is a coroutine function.
    """

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
            kms_tls_options,
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
        """Release the libmongocrypt handle and the KMS threads."""
        self._encrypter.close()
        await self._io.close()

    async def create_data_key(
        self, kms_provider: str, opts: Optional[DataKeyOpts] = None
    ) -> Binary:
        with self._deadline():
            key_id = await self._encrypter.create_data_key(
                kms_provider, **self._data_key_args(opts)
            )
        return key_id_binary(key_id)

    async def encrypt(self, value: Any, opts: EncryptOpts) -> Binary:
        with self._deadline():
            result = await self._encrypter.encrypt(
                self._value(value), **self._encrypt_args(opts, False)
            )
        return self._unvalue(result)  # type: ignore[no-any-return]

    async def encrypt_expression(
        self, expression: Mapping[str, Any], opts: EncryptOpts
    ) -> dict[str, Any]:
        with self._deadline():
            result = await self._encrypter.encrypt(
                self._value(expression), **self._encrypt_args(opts, True)
            )
        return self._unvalue(result)  # type: ignore[no-any-return]

    async def decrypt(self, value: Binary) -> Any:
        ciphertext = self._ciphertext(value)
        with self._deadline():
            return self._unvalue(await self._encrypter.decrypt(self._value(ciphertext)))

    async def rewrap_many_data_key(
        self, filter: Mapping[str, Any], opts: Optional[RewrapManyDataKeyOpts] = None
    ) -> RewrapManyDataKeyResult:
        provider, master_key = self._rewrap_target(opts)
        with self._deadline():
            result = await self._encrypter.rewrap_many_data_key(
                self._encode(filter), provider, master_key
            )
            if result is None:
                return RewrapManyDataKeyResult()
            with self._io.operation("update") as op:
                written = await self._key_vault.bulk_write(self._rewrap_updates(result))
                op.count = written.modified_count
        return RewrapManyDataKeyResult(written)

    async def delete_key(self, id: KeyId) -> Any:
        with self._deadline(), self._io.operation("delete") as op:
            result = await self._key_vault.delete_one({"_id": key_id_binary(id, "id")})
            op.count = result.deleted_count
        return result

    async def get_key(self, id: KeyId) -> Optional[Any]:
        with self._deadline(), self._io.operation("find") as op:
            document = await self._key_vault.find_one({"_id": key_id_binary(id, "id")})
            op.count = document is not None
        return document

    def get_keys(self) -> Any:
        """An async cursor over every key document."""
        return self._key_vault.find({})

    async def get_key_by_alt_name(self, key_alt_name: str) -> Optional[Any]:
        with self._deadline(), self._io.operation("find") as op:
            document = await self._key_vault.find_one({"keyAltNames": key_alt_name})
            op.count = document is not None
        return document

    async def add_key_alt_name(self, id: KeyId, key_alt_name: str) -> Optional[Any]:
        with self._deadline(), self._io.operation("update") as op:
            document = await self._key_vault.find_one_and_update(
                {"_id": key_id_binary(id, "id")}, {"$addToSet": {"keyAltNames": key_alt_name}}
            )
            op.count = document is not None
        return document

    async def remove_key_alt_name(self, id: KeyId, key_alt_name: str) -> Optional[Any]:
        with self._deadline(), self._io.operation("update") as op:
            document = await self._key_vault.find_one_and_update(
                {"_id": key_id_binary(id, "id")}, self._remove_alt_name_update(key_alt_name)
            )
            op.count = document is not None
        return document

    async def create_encrypted_collection(
        self,
        database: Any,
        name: str,
        encrypted_fields: Mapping[str, Any],
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]] = None,
        **create_options: Any,
    ) -> tuple[Any, dict[str, Any]]:
        filled, needing = self._fields_needing_keys(encrypted_fields)
        try:
            for field in needing:
                field["keyId"] = await self.create_data_key(kms_provider, DataKeyOpts(master_key))
            with self._deadline():
                collection = await database.create_collection(
                    name, encryptedFields=filled, **create_options
                )
        except Exception as exc:
            raise EncryptedCollectionError(
                f"create_encrypted_collection({name!r}) failed: {exc}", filled
            ) from exc
        return collection, filled
