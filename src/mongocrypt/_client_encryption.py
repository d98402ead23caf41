"""What ``ClientEncryption`` and ``AsyncClientEncryption`` share: validation, request building and
result shaping (the classes themselves only add the I/O)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import bson
import pymongo
from bson import Binary
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo.operations import UpdateOne

from mongocrypt.credentials import AwsCredentialProvider
from mongocrypt.engine import DataKeyOptions, ExplicitEncryptOptions, MongoCryptOptions
from mongocrypt.errors import MongoCryptError
from mongocrypt.events import EncryptionEventListener, EventPublisher
from mongocrypt.io.key_vault import key_vault_collection
from mongocrypt.options import (
    Algorithm,
    DataKeyOpts,
    EncryptOpts,
    RewrapManyDataKeyOpts,
    check_namespace,
)

__all__ = ["ClientEncryptionCore", "check_client", "checked_credential_providers"]


def check_client(value: object, option: str, expected: tuple[type, ...]) -> None:
    """Refuse anything but a client of the ``expected`` classes (a ``Database`` given as a client
    would put the keys in ``db.db.collection``).

    A class named as an expected one in the value's MRO also passes, as pymongo's own
    ``ClientEncryption`` lets mocked and subclassed clients (mongomock's, say) through.

    :raises TypeError: naming ``option``, the expected classes and the class given.
    """
    names_in_mro = {cls.__name__ for cls in type(value).__mro__}
    if not isinstance(value, expected) and names_in_mro.isdisjoint(c.__name__ for c in expected):
        names = " or ".join(cls.__name__ for cls in expected)
        raise TypeError(f"{option} must be a pymongo {names}, not {type(value).__name__}")


#: Algorithms libmongocrypt takes a key id for, never an alternate name.
_BY_ID_ONLY = (Algorithm.INDEXED, Algorithm.UNINDEXED, Algorithm.RANGE, Algorithm.STRING)
#: libmongocrypt's key cache lifetime when ``key_expiration_ms`` is not given.
_DEFAULT_KEY_EXPIRATION_MS = 60_000


class ClientEncryptionCore:
    """Validation, request building and result shaping shared by the sync and async classes."""

    #: The client class the key vault client must be (each subclass names its own).
    _client_type: type = object

    def __init__(
        self,
        kms_providers: Mapping[str, Any],
        key_vault_namespace: str,
        key_vault_client: Any,
        codec_options: Optional[CodecOptions[Any]],
        key_expiration_ms: Optional[int],
        credential_providers: Optional[Mapping[str, AwsCredentialProvider]],
        timeout_ms: Optional[int],
        event_listeners: Optional[Sequence[EncryptionEventListener]],
    ) -> None:
        check_client(key_vault_client, "key_vault_client", (self._client_type,))
        database, collection = check_namespace(key_vault_namespace)
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
        self._aws_provider = checked_credential_providers(credential_providers, kms_providers)
        self.key_vault_namespace = key_vault_namespace
        self._key_vault = key_vault_collection(key_vault_client[database][collection])
        self._codec_options = codec_options or CodecOptions(uuid_representation=STANDARD)
        self._timeout = None if timeout_ms is None else timeout_ms / 1000
        self._events = EventPublisher(event_listeners)
        expiration = _DEFAULT_KEY_EXPIRATION_MS if key_expiration_ms is None else key_expiration_ms
        #: how long an alternate name's key id is remembered, in seconds (None: for ever)
        self._name_lifetime = expiration / 1000 if expiration else None
        self._key_ids_by_name: dict[str, tuple[Binary, float]] = {}

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
    def _data_key_options(kms_provider: str, opts: Optional[DataKeyOpts]) -> DataKeyOptions:
        opts = opts or DataKeyOpts()
        if not isinstance(opts, DataKeyOpts):
            raise TypeError(f"opts must be DataKeyOpts, not {type(opts).__name__}")
        return opts.engine_options(kms_provider)

    @staticmethod
    def _encrypt_options(opts: EncryptOpts, is_expression: bool) -> ExplicitEncryptOptions:
        if not isinstance(opts, EncryptOpts):
            raise TypeError(f"opts must be EncryptOpts, not {type(opts).__name__}")
        return opts.engine_options(is_expression)

    @staticmethod
    def _name_to_resolve(options: ExplicitEncryptOptions) -> Optional[str]:
        """The alternate name to look up: Queryable Encryption algorithms take key ids only."""
        if options.key_alt_name is not None and options.algorithm in _BY_ID_ONLY:
            return options.key_alt_name
        return None

    def _cached_key_id(self, name: str) -> Optional[Binary]:
        """The key id ``name`` was resolved to, while it is as fresh as a cached key."""
        entry = self._key_ids_by_name.get(name)
        if entry is None or (entry[1] and entry[1] < time.monotonic()):
            return None
        return entry[0]

    def _remember_key_id(self, name: str, document: Optional[Mapping[str, Any]]) -> Binary:
        """The id of the key ``document`` found for ``name``, cached like the key.

        :raises MongoCryptError: naming the alternate name and the key vault when none has it.
        """
        if document is None:
            raise MongoCryptError(
                f"no data key in key vault {self.key_vault_namespace} has the alternate name "
                f"{name!r}"
            )
        key_id: Binary = document["_id"]
        expires = 0.0 if self._name_lifetime is None else time.monotonic() + self._name_lifetime
        self._key_ids_by_name[name] = (key_id, expires)
        return key_id

    @staticmethod
    def _with_key_id(options: ExplicitEncryptOptions, key_id: Binary) -> ExplicitEncryptOptions:
        return dataclasses.replace(options, key_id=bytes(key_id), key_alt_name=None)

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
    def _check_progress(progress: object) -> None:
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, not {type(progress).__name__}")

    @staticmethod
    def _rewrap_updates(result: Optional[bytes]) -> list[UpdateOne]:
        """The key vault updates of libmongocrypt's rewrapped keys (none when none matched)."""
        if result is None:
            return []
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


def checked_credential_providers(
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
