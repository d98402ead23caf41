"""The operations the test files run, their results as documents, and ``expectError``.

Supported: every ClientEncryption operation of the specification; the CRUD operations on a
collection (insertOne/Many, find, findOneAndUpdate/Replace/Delete, updateOne/Many, replaceOne,
deleteOne/Many, aggregate, countDocuments, estimatedDocumentCount, distinct, bulkWrite, createIndex,
and mapReduce as the ``mapReduce`` command pymongo no longer has a helper for); ``runCommand``,
``aggregate``, ``createCollection`` and ``dropCollection`` on a database; and the testRunner's
``wait``. Results are shaped as the format says (model objects become documents, iterables are
read to the end).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from bson.code import Code
from pymongo import (
    DeleteMany,
    DeleteOne,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.results import BulkWriteResult, UpdateResult

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
                "upsertedIds": {str(k): v for k, v in (written.upserted_ids or {}).items()},
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


def _sorted(opts: dict[str, Any]) -> dict[str, Any]:
    if "sort" in opts:
        opts["sort"] = list(opts["sort"].items())
    return opts


def _find(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _sorted(_options(args, FIND_OPTIONS, "find"))
    return Result(list(collection.find(**opts)), iterable=True)


def _aggregate(target: Collection[Any] | Database[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {"pipeline": "pipeline", "batchSize": "batchSize"}, "aggregate")
    return Result(list(target.aggregate(**opts)), iterable=True)


def _update_result(result: UpdateResult) -> Result:
    document = {
        "matchedCount": result.matched_count,
        "modifiedCount": result.modified_count,
        "upsertedCount": 0 if result.upserted_id is None else 1,
    }
    if result.upserted_id is not None:
        document["upsertedId"] = result.upserted_id
    return Result(document)


def _bulk_result(result: BulkWriteResult) -> Result:
    return Result(
        {
            "insertedCount": result.inserted_count,
            "matchedCount": result.matched_count,
            "modifiedCount": result.modified_count,
            "deletedCount": result.deleted_count,
            "upsertedCount": result.upserted_count,
            "upsertedIds": {str(k): v for k, v in (result.upserted_ids or {}).items()},
        }
    )


WRITE = {"bypassDocumentValidation": "bypass_document_validation"}
UPDATE = {"filter": "filter", "upsert": "upsert", "arrayFilters": "array_filters", **WRITE}
FIND_ONE_AND = {
    "filter": "filter",
    "projection": "projection",
    "sort": "sort",
    "upsert": "upsert",
    "returnDocument": "return_document",
}


def _insert_one(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {"document": "document", **WRITE}, "insertOne")
    return Result({"insertedId": collection.insert_one(**opts).inserted_id})


def _insert_many(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    names = {"documents": "documents", "ordered": "ordered", **WRITE}
    ids = collection.insert_many(**_options(args, names, "insertMany")).inserted_ids
    return Result({"insertedIds": {str(index): value for index, value in enumerate(ids)}})


def _find_one_and(kind: str) -> Callable[[Collection[Any], Mapping[str, Any]], Result]:
    names = dict(FIND_ONE_AND)
    if kind == "update":
        names.update({"update": "update", "arrayFilters": "array_filters"})
    elif kind == "replace":
        names["replacement"] = "replacement"
    else:
        del names["upsert"], names["returnDocument"]

    def run(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
        opts = _sorted(_options(args, names, f"findOneAnd{kind.capitalize()}"))
        if "return_document" in opts:
            opts["return_document"] = ReturnDocument.AFTER
            if args["returnDocument"] == "Before":
                opts["return_document"] = ReturnDocument.BEFORE
        method = getattr(collection, f"find_one_and_{kind}")
        return Result(method(**opts))

    return run


def _update(many: bool) -> Callable[[Collection[Any], Mapping[str, Any]], Result]:
    def run(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
        opts = _options(args, {**UPDATE, "update": "update"}, "update")
        method = collection.update_many if many else collection.update_one
        return _update_result(method(**opts))

    return run


def _replace_one(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {**UPDATE, "replacement": "replacement"}, "replaceOne")
    if "array_filters" in opts:
        raise UnsupportedFeature("replaceOne arrayFilters")
    return _update_result(collection.replace_one(**opts))


def _delete(many: bool) -> Callable[[Collection[Any], Mapping[str, Any]], Result]:
    def run(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
        opts = _options(args, {"filter": "filter"}, "delete")
        method = collection.delete_many if many else collection.delete_one
        return Result({"deletedCount": method(**opts).deleted_count})

    return run


def _count_documents(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    names = {"filter": "filter", "skip": "skip", "limit": "limit"}
    return Result(collection.count_documents(**_options(args, names, "countDocuments")))


def _distinct(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {"fieldName": "key", "filter": "filter"}, "distinct")
    return Result(collection.distinct(**opts))


BULK_UPDATE = {
    "filter": "filter",
    "update": "update",
    "upsert": "upsert",
    "arrayFilters": "array_filters",
}
BULK_MODELS: dict[str, tuple[Any, dict[str, str]]] = {
    "insertOne": (InsertOne, {"document": "document"}),
    "updateOne": (UpdateOne, BULK_UPDATE),
    "updateMany": (UpdateMany, BULK_UPDATE),
    "replaceOne": (
        ReplaceOne,
        {"filter": "filter", "replacement": "replacement", "upsert": "upsert"},
    ),
    "deleteOne": (DeleteOne, {"filter": "filter"}),
    "deleteMany": (DeleteMany, {"filter": "filter"}),
}


def _bulk_write(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {"requests": "requests", "ordered": "ordered", **WRITE}, "bulkWrite")
    requests = []
    for request in opts["requests"]:
        ((kind, fields),) = request.items()
        if kind not in BULK_MODELS:
            raise UnsupportedFeature(f"bulkWrite model {kind}")
        model, names = BULK_MODELS[kind]
        requests.append(model(**_options(fields, names, f"bulkWrite {kind}")))
    opts["requests"] = requests
    return _bulk_result(collection.bulk_write(**opts))


def _create_index(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(args, {"keys": "keys", "name": "name", "unique": "unique"}, "createIndex")
    keys = list(opts.pop("keys").items())
    return Result(collection.create_index(keys, **opts))


def _map_reduce(collection: Collection[Any], args: Mapping[str, Any]) -> Result:
    """pymongo 4 has no mapReduce helper: the command the helper sent, on the same client."""
    opts = _options(args, {"map": "map", "reduce": "reduce", "out": "out"}, "mapReduce")
    command = {
        "mapReduce": collection.name,
        "map": Code(opts["map"]),
        "reduce": Code(opts["reduce"]),
        "out": opts["out"],
    }
    reply = collection.database.command(command)
    return Result(reply.get("results", reply), iterable="results" in reply)


COLLECTION: dict[str, Callable[[Collection[Any], Mapping[str, Any]], Result]] = {
    "find": _find,
    "aggregate": _aggregate,
    "insertOne": _insert_one,
    "insertMany": _insert_many,
    "findOneAndUpdate": _find_one_and("update"),
    "findOneAndReplace": _find_one_and("replace"),
    "findOneAndDelete": _find_one_and("delete"),
    "updateOne": _update(many=False),
    "updateMany": _update(many=True),
    "replaceOne": _replace_one,
    "deleteOne": _delete(many=False),
    "deleteMany": _delete(many=True),
    "countDocuments": _count_documents,
    "estimatedDocumentCount": lambda c, a: Result(
        c.estimated_document_count(**_options(a, {}, "estimatedDocumentCount"))
    ),
    "distinct": _distinct,
    "bulkWrite": _bulk_write,
    "createIndex": _create_index,
    "mapReduce": _map_reduce,
}


def _run_command(database: Database[Any], args: Mapping[str, Any]) -> Result:
    """The command as given (``commandName`` names its first key, which pymongo sends first)."""
    opts = _options(args, {"command": "command", "commandName": "name"}, "runCommand")
    command = opts["command"]
    if "name" in opts and next(iter(command)) != opts["name"]:
        raise UnsupportedFeature(f"runCommand {opts['name']} not first in {command!r}")
    return Result(database.command(command))


def _create_collection(database: Database[Any], args: Mapping[str, Any]) -> Result:
    options = dict(args)
    name = options.pop("collection")
    unknown = set(options) - {"validator", "encryptedFields", "capped", "size", "max"}
    if unknown:
        raise UnsupportedFeature(f"createCollection options {sorted(unknown)}")
    if "encryptedFields" in options:
        options["encrypted_fields"] = options.pop("encryptedFields")
    database.create_collection(name, **options)
    return Result(None)


def _drop_collection(database: Database[Any], args: Mapping[str, Any]) -> Result:
    opts = _options(
        args, {"collection": "name_or_collection", "encryptedFields": "encrypted_fields"}, "drop"
    )
    database.drop_collection(**opts)
    return Result(None)


DATABASE: dict[str, Callable[[Database[Any], Mapping[str, Any]], Result]] = {
    "runCommand": _run_command,
    "aggregate": _aggregate,
    "createCollection": _create_collection,
    "dropCollection": _drop_collection,
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
    elif isinstance(target, Database):
        table = DATABASE
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
