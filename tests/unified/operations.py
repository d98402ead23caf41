"""The operations the key-management files run, their results as documents, and ``expectError``.

Supported: every ClientEncryption operation of the specification, ``find`` and ``aggregate`` on a
collection, and the testRunner's ``wait``. Results are shaped as the format says (model objects
become documents, iterables are read to the end).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

from mongocrypt import ClientEncryption
from mongocrypt.errors import KeyVaultError, MongoCryptTimeoutError
from mongocrypt.options import DataKeyOpts, EncryptOpts, RewrapManyDataKeyOpts

from .matching import UnsupportedFeature, assert_matches

__all__ = ["Result", "assert_error", "execute"]


@dataclass(frozen=True)
class Result:
    """What an operation gave: ``value``, and whether it is an iterable of root documents."""

    value: Any
    iterable: bool = False


def _options(given: Mapping[str, Any], names: Mapping[str, str], where: str) -> dict[str, Any]:
    """``given`` with camelCase names mapped to keyword arguments; unknown names are refused."""
    unknown = set(given) - set(names)
    if unknown:
        raise UnsupportedFeature(f"{where} options {sorted(unknown)}")
    return {names[key]: value for key, value in given.items()}


def _create_data_key(encryption: ClientEncryption, args: Mapping[str, Any]) -> Result:
    opts = _options(
        args.get("opts", {}),
        {"masterKey": "master_key", "keyAltNames": "key_alt_names", "keyMaterial": "key_material"},
        "createDataKey",
    )
    return Result(encryption.create_data_key(args["kmsProvider"], DataKeyOpts(**opts)))


def _rewrap_many_data_key(encryption: ClientEncryption, args: Mapping[str, Any]) -> Result:
    given = args.get("opts")
    opts = (
        None
        if given is None
        else RewrapManyDataKeyOpts(
            **_options(given, {"provider": "provider", "masterKey": "master_key"}, "rewrap")
        )
    )
    written = encryption.rewrap_many_data_key(args["filter"], opts).bulk_write_result
    if written is None:
        return Result({})
    return Result(
        {
            "bulkWriteResult": {
                "insertedCount": written.inserted_count,
                "matchedCount": written.matched_count,
                "modifiedCount": written.modified_count,
                "deletedCount": written.deleted_count,
                "upsertedCount": written.upserted_count,
                "upsertedIds": {str(k): v for k, v in written.upserted_ids.items()},
            }
        }
    )


def _encrypt(encryption: ClientEncryption, args: Mapping[str, Any]) -> Result:
    opts = _options(
        args["opts"],
        {
            "keyId": "key_id",
            "keyAltName": "key_alt_name",
            "algorithm": "algorithm",
            "contentionFactor": "contention_factor",
            "queryType": "query_type",
        },
        "encrypt",
    )
    return Result(encryption.encrypt(args["value"], EncryptOpts(**opts)))


CLIENT_ENCRYPTION: dict[str, Callable[[ClientEncryption, Mapping[str, Any]], Result]] = {
    "createDataKey": _create_data_key,
    "rewrapManyDataKey": _rewrap_many_data_key,
    "deleteKey": lambda ce, a: Result({"deletedCount": ce.delete_key(a["id"]).deleted_count}),
    "getKey": lambda ce, a: Result(ce.get_key(a["id"])),
    "getKeys": lambda ce, a: Result(list(ce.get_keys()), iterable=True),
    "getKeyByAltName": lambda ce, a: Result(ce.get_key_by_alt_name(a["keyAltName"])),
    "addKeyAltName": lambda ce, a: Result(ce.add_key_alt_name(a["id"], a["keyAltName"])),
    "removeKeyAltName": lambda ce, a: Result(ce.remove_key_alt_name(a["id"], a["keyAltName"])),
    "encrypt": _encrypt,
    "decrypt": lambda ce, a: Result(ce.decrypt(a["value"])),
}

FIND_OPTIONS = {
    "filter": "filter",
    "projection": "projection",
    "sort": "sort",
    "limit": "limit",
    "skip": "skip",
    "batchSize": "batch_size",
}


def _find(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, FIND_OPTIONS, "find")
    if "sort" in opts:
        opts["sort"] = list(opts["sort"].items())
    return Result(list(collection.find(**opts)), iterable=True)


def _aggregate(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {"pipeline": "pipeline", "batchSize": "batchSize"}, "aggregate")
    return Result(list(collection.aggregate(**opts)), iterable=True)


COLLECTION: dict[str, Callable[[Collection[Any], Mapping[str, Any]], Result]] = {
    "find": _find,
    "aggregate": _aggregate,
}


def execute(target: Any, name: str, args: Mapping[str, Any]) -> Result:
    """Run operation ``name`` on an entity (or the test runner when ``target`` is None)."""
    if target is None:
        if name != "wait":
            raise UnsupportedFeature(f"testRunner operation {name}")
        time.sleep(args["ms"] / 1000)
        return Result(None)
    table: Mapping[str, Callable[[Any, Mapping[str, Any]], Result]]
    if isinstance(target, ClientEncryption):
        table = CLIENT_ENCRYPTION
    elif isinstance(target, Collection):
        table = COLLECTION
    else:
        raise UnsupportedFeature(f"operations on {type(target).__name__} entities")
    if name not in table:
        raise UnsupportedFeature(f"{type(target).__name__} operation {name}")
    return table[name](target, args)


def _server_code(error: BaseException) -> int | None:
    """The code of the server reply the error comes from, if it comes from one."""
    if isinstance(error, (KeyVaultError, OperationFailure)) and error.code:
        return int(error.code)
    return None


def _is_client_error(error: BaseException) -> bool:
    """Raised on this side: validation, libmongocrypt, KMS or network, not a server reply."""
    return _server_code(error) is None and not isinstance(error, OperationFailure)


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, MongoCryptTimeoutError) or (
        isinstance(error, PyMongoError) and error.timeout
    )


def assert_error(expected: Mapping[str, Any], error: BaseException) -> None:
    """Assert an ``expectedError`` object against the exception the operation raised."""
    message = f"{type(error).__name__}: {error}"
    for key, value in expected.items():
        if key == "isError":
            continue
        if key == "isClientError":
            assert _is_client_error(error) == value, f"isClientError is not {value}: {message}"
        elif key == "isTimeoutError":
            assert _is_timeout(error) == value, f"isTimeoutError is not {value}: {message}"
        elif key == "errorContains":
            assert value.lower() in str(error).lower(), f"{value!r} not in {message}"
        elif key == "errorCode":
            assert _server_code(error) == value, f"server code is not {value}: {message}"
        elif key == "errorCodeName":
            details = getattr(error, "details", None) or {}
            name = str(details.get("codeName", ""))
            assert _server_code(error) is not None, f"no server error: {message}"
            assert name.lower() == value.lower(), f"codeName {name!r}, not {value!r}: {message}"
        elif key in ("errorLabelsContain", "errorLabelsOmit"):
            has_label = getattr(error, "has_error_label", lambda label: False)
            for label in value:
                present = has_label(label)
                assert present == (key == "errorLabelsContain"), f"label {label}: {message}"
        elif key == "errorResponse":
            details = getattr(error, "details", None)
            assert details is not None, f"no server response: {message}"
            assert_matches(value, details)
        else:
            raise UnsupportedFeature(f"expectError.{key}")
