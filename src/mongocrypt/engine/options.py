"""Options for a :class:`~mongocrypt.engine.handle.MongoCrypt` handle and for its contexts.

Validation here catches what Python can name precisely (wrong types, impossible values); what only
libmongocrypt knows (a provider's required fields, key lengths) it reports itself, verbatim.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import bson
import bson.errors

from mongocrypt._namespaces import check_namespace
from mongocrypt._secrets import shown

__all__ = [
    "BsonLike",
    "DataKeyOptions",
    "ExplicitEncryptOptions",
    "MongoCryptOptions",
    "check_data_key_fields",
    "check_kms_providers",
    "check_maps",
    "encode_bson",
]

#: A BSON document given either encoded or as a mapping.
BsonLike = Union[bytes, bytearray, memoryview, Mapping[str, Any]]


def encode_bson(value: BsonLike, option: str) -> bytes:
    """``value`` as BSON bytes.

    :param option: the option's name, for the error message.
    :raises TypeError: if ``value`` is neither a mapping nor BSON bytes.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Mapping):
        return bson.encode(value)
    raise TypeError(f"{option} must be a mapping or BSON bytes, not {type(value).__name__}")


#: Bytes of a local master key (and of a data key's key material).
KEY_BYTES = 96


def check_kms_providers(kms_providers: object) -> None:
    """The checks of ``kms_providers`` Python can make precisely (a local key's length included).

    :raises TypeError: or ValueError naming the provider and setting.
    """
    if not isinstance(kms_providers, Mapping):
        raise TypeError(f"kms_providers must be a mapping, not {type(kms_providers).__name__}")
    if not kms_providers:
        raise ValueError("kms_providers must configure at least one KMS provider")
    for name, settings in kms_providers.items():
        if not isinstance(name, str):
            raise TypeError(f"kms_providers keys must be str, not {type(name).__name__}")
        if not isinstance(settings, Mapping):
            raise TypeError(
                f"kms_providers[{name!r}] must be a mapping, not {type(settings).__name__}"
            )
        if (name == "local" or name.startswith("local:")) and "key" in settings:
            _check_local_key(settings["key"], f"kms_providers[{name!r}]['key']")


def _check_local_key(key: object, option: str) -> None:
    """A local master key: 96 bytes, or their base64 text (as libmongocrypt accepts)."""
    if isinstance(key, str):
        try:
            decoded = base64.b64decode(key, validate=True)
        except binascii.Error:
            decoded = b""
        if len(decoded) != KEY_BYTES:
            raise TypeError(
                f"{option} must be {KEY_BYTES} bytes or their base64 text, not a str of "
                f"{len(key)} characters (read a key file in binary mode, or decode its base64)"
            )
    elif isinstance(key, (bytes, bytearray, memoryview)):
        if len(key) != KEY_BYTES:
            raise ValueError(f"{option} must be {KEY_BYTES} bytes, not {len(key)}")
    else:
        raise TypeError(f"{option} must be {KEY_BYTES} bytes, not {type(key).__name__}")


def check_maps(schema_map: object, encrypted_fields_map: object) -> None:
    """Both maps (mappings or BSON) map ``database.collection`` namespaces to documents, and
    every ``keyId`` in them has the type the specification gives it.

    A key that is not a namespace would match no command, so the collection's fields would be
    written in clear: it is refused.

    :raises ValueError: naming the first key that is not ``database.collection``.
    :raises TypeError: for a map or value that is not a document, or a ``keyId`` of the wrong
        type, naming its path, e.g. ``schema_map['db.coll'].properties.ssn.encrypt.keyId``.
    """
    for option, value in (
        ("schema_map", schema_map),
        ("encrypted_fields_map", encrypted_fields_map),
    ):
        if value is None:
            continue
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                value = bson.decode(bytes(value))
            except bson.errors.InvalidBSON:
                continue  # libmongocrypt says what is wrong with it
        if not isinstance(value, Mapping):
            raise TypeError(f"{option} must be a mapping or BSON bytes, not {type(value).__name__}")
        for namespace, document in value.items():
            check_namespace(namespace, f"{option} key")
            if not isinstance(document, Mapping):
                raise TypeError(
                    f"{option}[{namespace!r}] must be a document, not {type(document).__name__}"
                )
            _check_key_ids(document, f"{option}[{namespace!r}]", option == "schema_map")


def _is_uuid(value: object) -> bool:
    return isinstance(value, uuid.UUID) or (
        isinstance(value, bson.Binary) and value.subtype == bson.binary.UUID_SUBTYPE
    )


def _check_key_ids(node: object, path: str, schema: bool) -> None:
    if isinstance(node, Sequence) and not isinstance(node, (str, bytes)):
        for i, item in enumerate(node):
            _check_key_ids(item, f"{path}[{i}]", schema)
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        where = f"{path}.{key}"
        # A schema's keyId is in encrypt or encryptMetadata; encryptedFields have one per field.
        if key != "keyId" or (schema and not path.endswith((".encrypt", ".encryptMetadata"))):
            _check_key_ids(value, where, schema)
        elif schema:
            if not (
                (isinstance(value, str) and value.startswith("/"))
                or (isinstance(value, list) and value and all(_is_uuid(v) for v in value))
            ):
                raise TypeError(
                    f"{where} must be a list of UUIDs (bson Binary subtype 4) or a JSON "
                    f"pointer string such as '/keyName', not {value!r}"
                )
        elif value is not None and not _is_uuid(value):
            raise TypeError(
                f"{where} must be a UUID (bson Binary subtype 4), not {type(value).__name__}"
            )


def _check_bool(value: object, option: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{option} must be a bool, not {type(value).__name__}")
    return value


class MongoCryptOptions:
    """Everything a libmongocrypt handle is configured with.

    :param kms_providers: provider name (``"local"``, ``"aws"``, ``"azure"``, ``"gcp"``, ``"kmip"``,
        or a named one such as ``"aws:eu"``) -> its credentials. An empty mapping asks for the
        credentials on demand (the state machine's ``NEED_KMS_CREDENTIALS`` state).
    :param schema_map: collection namespace -> CSFLE JSON schema.
    :param encrypted_fields_map: collection namespace -> Queryable Encryption encryptedFields.
    :param bypass_query_analysis: skip marking commands (no mongocryptd, no crypt_shared).
    :param crypt_shared_lib_path: load crypt_shared from exactly this file.
    :param crypt_shared_lib_required: fail at start-up when crypt_shared did not load.
    :param bypass_encryption: the handle is for explicit encryption and decryption only, so it
        does not search for crypt_shared.
    :param key_expiration_ms: how long decrypted data keys stay cached; 0 keeps them for ever;
        ``None`` keeps libmongocrypt's default (60 s).
    :param enable_multiple_collinfo: accept several listCollections results per request (needed for
        ``$lookup``).
    :param crypt_shared_lib_search_paths: directories to search for crypt_shared; by default
        ``["$SYSTEM"]`` unless ``bypass_encryption`` is set (as the specification requires).
    """

    def __init__(
        self,
        kms_providers: Mapping[str, Any],
        schema_map: Optional[BsonLike] = None,
        encrypted_fields_map: Optional[BsonLike] = None,
        bypass_query_analysis: bool = False,
        crypt_shared_lib_path: Optional[Union[str, os.PathLike[str]]] = None,
        crypt_shared_lib_required: bool = False,
        bypass_encryption: bool = False,
        key_expiration_ms: Optional[int] = None,
        enable_multiple_collinfo: bool = True,
        crypt_shared_lib_search_paths: Optional[Sequence[str]] = None,
    ) -> None:
        check_kms_providers(kms_providers)
        check_maps(schema_map, encrypted_fields_map)
        self.kms_providers = kms_providers
        self.kms_providers_bson = bson.encode(kms_providers)
        #: providers whose credentials are fetched on demand (configured as an empty mapping)
        self.on_demand_providers = tuple(name for name, s in kms_providers.items() if not s)
        self.schema_map = None if schema_map is None else encode_bson(schema_map, "schema_map")
        self.encrypted_fields_map = (
            None
            if encrypted_fields_map is None
            else encode_bson(encrypted_fields_map, "encrypted_fields_map")
        )
        self.bypass_query_analysis = _check_bool(bypass_query_analysis, "bypass_query_analysis")
        if crypt_shared_lib_path is not None and not isinstance(
            crypt_shared_lib_path, (str, os.PathLike)
        ):
            raise TypeError(
                "crypt_shared_lib_path must be a str or path, "
                f"not {type(crypt_shared_lib_path).__name__}"
            )
        self.crypt_shared_lib_path = (
            None if crypt_shared_lib_path is None else os.fspath(crypt_shared_lib_path)
        )
        self.crypt_shared_lib_required = _check_bool(
            crypt_shared_lib_required, "crypt_shared_lib_required"
        )
        self.bypass_encryption = _check_bool(bypass_encryption, "bypass_encryption")
        if key_expiration_ms is not None:
            if isinstance(key_expiration_ms, bool) or not isinstance(key_expiration_ms, int):
                raise TypeError(
                    f"key_expiration_ms must be an int, not {type(key_expiration_ms).__name__}"
                )
            if not 0 <= key_expiration_ms < 2**64:
                raise ValueError(
                    f"key_expiration_ms must be >= 0 and < 2**64, not {key_expiration_ms}"
                )
        self.key_expiration_ms = key_expiration_ms
        self.enable_multiple_collinfo = _check_bool(
            enable_multiple_collinfo, "enable_multiple_collinfo"
        )
        if crypt_shared_lib_search_paths is None:
            crypt_shared_lib_search_paths = [] if bypass_encryption else ["$SYSTEM"]
        if isinstance(crypt_shared_lib_search_paths, str) or not all(
            isinstance(p, str) for p in crypt_shared_lib_search_paths
        ):
            raise TypeError("crypt_shared_lib_search_paths must be a sequence of str")
        self.crypt_shared_lib_search_paths = tuple(crypt_shared_lib_search_paths)

    def __repr__(self) -> str:
        # Provider names only: their settings hold credentials.
        return f"MongoCryptOptions(kms_providers=<{', '.join(sorted(self.kms_providers))}>, ...)"


@dataclass(frozen=True)
class ExplicitEncryptOptions:
    """How to encrypt one value explicitly.

    :param algorithm: ``"AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"``, ``"...-Random"``,
        ``"Indexed"``, ``"Unindexed"``, ``"Range"``, ``"String"`` (where the
        library has them). A plain string, so newer libmongocrypt values work unchanged.
    :param key_id: the data key's UUID as 16 raw bytes (exclusive with ``key_alt_name``).
    :param key_alt_name: the data key's alternate name.
    :param query_type: ``"equality"``, ``"range"``, ``"prefix"``, ``"suffix"``, ``"substring"``...
    :param contention_factor: for Indexed/Range/String; 0 is a real value, not "unset".
    :param range_opts: BSON of the RangeOpts (min, max, sparsity, precision, trimFactor).
    :param string_opts: BSON of the string (text) options.
    :param is_expression: encrypt a range find expression (``encryptExpression``).

    ``fast`` tells whether the one-call native path can do the encryption (key given by id, no
    String options, not an expression); it is computed, not passed.
    """

    algorithm: str
    key_id: Optional[bytes] = None
    key_alt_name: Optional[str] = None
    query_type: Optional[str] = None
    contention_factor: Optional[int] = None
    range_opts: Optional[bytes] = None
    string_opts: Optional[bytes] = None
    is_expression: bool = False
    fast: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.algorithm, str):
            raise TypeError(f"algorithm must be a str, not {type(self.algorithm).__name__}")
        if self.key_id is not None:
            if not isinstance(self.key_id, (bytes, bytearray)):
                raise TypeError(f"key_id must be 16 bytes, not {type(self.key_id).__name__}")
            if len(self.key_id) != 16:
                raise ValueError(f"key_id must be 16 bytes (a UUID), not {len(self.key_id)}")
        if self.key_alt_name is not None and not isinstance(self.key_alt_name, str):
            raise TypeError(f"key_alt_name must be a str, not {type(self.key_alt_name).__name__}")
        if (self.key_id is None) == (self.key_alt_name is None):
            raise ValueError("exactly one of key_id and key_alt_name must be given")
        if self.query_type is not None and not isinstance(self.query_type, str):
            raise TypeError(f"query_type must be a str, not {type(self.query_type).__name__}")
        if self.contention_factor is not None and (
            isinstance(self.contention_factor, bool) or not isinstance(self.contention_factor, int)
        ):
            raise TypeError(
                f"contention_factor must be an int, not {type(self.contention_factor).__name__}"
            )
        if self.contention_factor is not None and not -(2**63) <= self.contention_factor < 2**63:
            raise ValueError(f"contention_factor must fit in 64 bits, not {self.contention_factor}")
        for name in ("range_opts", "string_opts"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"{name} must be BSON bytes, not {type(value).__name__}")
        if self.key_id is not None:
            object.__setattr__(self, "key_id", bytes(self.key_id))
        fast = self.key_id is not None and self.string_opts is None and not self.is_expression
        object.__setattr__(self, "fast", fast)


def check_data_key_fields(master_key: object, key_alt_names: object, key_material: object) -> None:
    """The checks a data key's options share, wherever they are given.

    :raises TypeError: naming the option of the wrong type.
    """
    if master_key is not None and not isinstance(master_key, Mapping):
        raise TypeError(f"master_key must be a mapping, not {type(master_key).__name__}")
    if (
        isinstance(key_alt_names, str)
        or not isinstance(key_alt_names, Sequence)
        or not all(isinstance(n, str) for n in key_alt_names)
    ):
        raise TypeError("key_alt_names must be a sequence of str")
    if key_material is not None and not isinstance(key_material, (bytes, bytearray)):
        raise TypeError(f"key_material must be bytes, not {type(key_material).__name__}")
    if key_material is not None and len(key_material) != KEY_BYTES:
        raise ValueError(f"key_material must be {KEY_BYTES} bytes, not {len(key_material)}")


@dataclass(frozen=True)
class DataKeyOptions:
    """How to create one data key.

    :param kms_provider: the provider that wraps the key (``"local"``, ``"aws:eu"``, ...).
    :param master_key: the provider's masterKey document (region/key, keyVaultEndpoint/keyName,
        ...); not needed for local providers.
    :param key_alt_names: alternate names stored with the key.
    :param key_material: 96 bytes to use as the key instead of random ones.
    """

    kms_provider: str
    master_key: Optional[Mapping[str, Any]] = None
    key_alt_names: Sequence[str] = field(default_factory=tuple)
    key_material: Optional[bytes] = None

    def __post_init__(self) -> None:
        if not isinstance(self.kms_provider, str):
            raise TypeError(f"kms_provider must be a str, not {type(self.kms_provider).__name__}")
        check_data_key_fields(self.master_key, self.key_alt_names, self.key_material)

    def __repr__(self) -> str:
        return (
            f"DataKeyOptions(kms_provider={self.kms_provider!r}, master_key={self.master_key!r}, "
            f"key_alt_names={list(self.key_alt_names)!r}, "
            f"key_material={shown('key_material', self.key_material)})"
        )
