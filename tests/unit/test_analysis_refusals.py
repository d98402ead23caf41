"""Every fail-closed rule of the analyzer: the command, the error text and mongocryptd's code.

A refusal is always a QueryAnalysisError; the message names the field and the operator and never
carries a value (values are plaintext).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Optional

import pytest
from bson.binary import Binary
from bson.int64 import Int64
from bson.regex import Regex
from bson.timestamp import Timestamp
from test_analysis_csfle import DETERMINISTIC, K1, K2, RANDOM, SCHEMA, encrypt
from test_analysis_qe import info

from mongocrypt.analysis import QueryAnalysisError, analyze
from mongocrypt.analysis import _codes as analysis_codes

SECRET = "s3cr3t-plaintext"


def C(
    command: dict[str, Any], schema: Optional[dict[str, Any]] = None, remote: bool = True
) -> dict[str, Any]:
    """A CSFLE command (``SCHEMA`` unless given)."""
    return {**command, "jsonSchema": SCHEMA if schema is None else schema, "isRemoteSchema": remote}


def Q(command: dict[str, Any], fields: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """A Queryable Encryption command (``FIELDS`` unless given)."""
    return {**command, "encryptionInformation": info(fields)}


def S(**properties: Any) -> dict[str, Any]:
    """A JSON schema with ``properties``."""
    return {"bsonType": "object", "properties": properties}


def F(**field: Any) -> list[dict[str, Any]]:
    """encryptedFields with one field (path ``f``, key K1, unless given)."""
    return [{"path": "f", "keyId": K1, **field}]


def find(query: Any) -> dict[str, Any]:
    return {"find": "coll", "filter": query}


def agg(*stages: Any) -> dict[str, Any]:
    return {"aggregate": "coll", "pipeline": list(stages), "cursor": {}}


def upd(u: Any, **options: Any) -> dict[str, Any]:
    return {"update": "coll", "updates": [{"q": {}, "u": u, **options}]}


def ins(*documents: Any) -> dict[str, Any]:
    return {"insert": "coll", "documents": list(documents)}


def lookup(**spec: Any) -> dict[str, Any]:
    return {"$lookup": {"from": "coll", "as": "j", **spec}}


RANGE = F(bsonType="int", queries={"queryType": "range", "min": 0, "max": 10})

RULES: list[tuple[str, dict[str, Any], str, int]] = [
    # -- the protocol fields ------------------------------------------------------------------
    (
        "jsonSchema type",
        {**find({}), "jsonSchema": 1, "isRemoteSchema": True},
        "jsonSchema must be an object",
        51090,
    ),
    (
        "isRemoteSchema type",
        {**find({}), "jsonSchema": {}, "isRemoteSchema": 1},
        "isRemoteSchema must be a boolean",
        31102,
    ),
    (
        "encryptionInformation type",
        {**find({}), "encryptionInformation": 1},
        "encryptionInformation must be an object",
        6327501,
    ),
    ("no schema", find({}), "jsonSchema or encryptionInformation is required", 51073),
    ("isRemoteSchema missing", {**find({}), "jsonSchema": {}}, "isRemoteSchema is required", 31104),
    (
        "jsonSchema with QE",
        {**Q(find({})), "jsonSchema": {}},
        "jsonSchema and encryptionInformation",
        6327500,
    ),
    (
        "isRemoteSchema with QE",
        {**Q(find({})), "isRemoteSchema": True},
        "isRemoteSchema and encryptionInformation",
        6327502,
    ),
    (
        "jsonSchema with csfleEncryptionSchemas",
        {**C(agg()), "csfleEncryptionSchemas": {}},
        "jsonSchema and csfleEncryptionSchemas",
        9686707,
    ),
    (
        "csfleEncryptionSchemas outside aggregate",
        {**find({}), "csfleEncryptionSchemas": {}},
        "only supported for the aggregate",
        9686713,
    ),
    (
        "csfleEncryptionSchemas type",
        {**agg(), "csfleEncryptionSchemas": 1},
        "csfleEncryptionSchemas must be an object",
        9686702,
    ),
    (
        "csfleEncryptionSchemas entry type",
        {**agg(), "csfleEncryptionSchemas": {"db.coll": 1}},
        "must be an object",
        6327504,
    ),
    (
        "csfleEncryptionSchemas entry without isRemoteSchema",
        {**agg(), "csfleEncryptionSchemas": {"db.coll": {"jsonSchema": {}}}},
        "needs isRemoteSchema",
        9686706,
    ),
    (
        "csfleEncryptionSchemas without the command's namespace",
        {
            **agg(),
            "$db": "db",
            "csfleEncryptionSchemas": {"db.other": {"jsonSchema": {}, "isRemoteSchema": True}},
        },
        "must contain the command's namespace db.coll",
        9686712,
    ),
    (
        "QE schema with two namespaces",
        {**find({}), "encryptionInformation": {"type": 1, "schema": {"db.coll": {}, "db.x": {}}}},
        "exactly one namespace",
        6327503,
    ),
    (
        "QE schema of another namespace",
        {
            **find({}),
            "$db": "db",
            "encryptionInformation": {"type": 1, "schema": {"db.x": {"fields": []}}},
        },
        "must contain the command's namespace db.coll",
        6411900,
    ),
    (
        "explained command carries jsonSchema",
        C({"explain": {**find({}), "jsonSchema": {}}}),
        "not allowed in the command being explained",
        30050,
    ),
    (
        "explained command carries isRemoteSchema",
        C({"explain": {**find({}), "isRemoteSchema": True}}),
        "not allowed in the command being explained",
        31103,
    ),
    (
        "explained command carries encryptionInformation",
        Q({"explain": {**find({}), "encryptionInformation": {}}}),
        "not allowed in the command being explained",
        6365900,
    ),
    (
        "explained command with another $db",
        C({"explain": {**find({}), "$db": "a"}, "$db": "b"}),
        "must match",
        73,
    ),
    (
        "unsupported command",
        C({"mapReduce": "coll"}),
        "command not supported for auto encryption: mapReduce",
        0,
    ),
    (
        "unsupported explained command",
        C({"explain": {"killOp": 1}}),
        "command not supported for auto encryption: killOp",
        0,
    ),
    (
        "non-collection aggregate",
        C({"aggregate": 1, "pipeline": []}),
        "non-collection command not supported for auto encryption: aggregate",
        0,
    ),
    (
        "bulkWrite outside admin",
        {
            "bulkWrite": 1,
            "ops": [],
            "nsInfo": [{"ns": "db.coll", "encryptionInformation": info()}],
            "$db": "db",
        },
        "admin database",
        73,
    ),
    (
        "bulkWrite with a JSON schema",
        {
            "bulkWrite": 1,
            "ops": [],
            "nsInfo": [{"ns": "db.coll"}],
            "jsonSchema": {},
            "isRemoteSchema": False,
        },
        "only supports Queryable Encryption",
        2,
    ),
    (
        "bulkWrite without encryptionInformation",
        {"bulkWrite": 1, "ops": [], "nsInfo": [{"ns": "db.coll"}]},
        "must carry ns and encryptionInformation",
        2,
    ),
    (
        "bulkWrite mixing operations",
        {
            "bulkWrite": 1,
            "ops": [{"insert": 0, "document": {}}, {"delete": 0, "filter": {}}],
            "nsInfo": [{"ns": "db.coll", "encryptionInformation": info()}],
        },
        "Only insert is supported in BulkWrite with multiple operations",
        2,
    ),
    (
        "bulkWrite multi update",
        {
            "bulkWrite": 1,
            "ops": [{"update": 0, "filter": {}, "updateMods": {"$set": {"x": 1}}, "multi": True}],
            "nsInfo": [{"ns": "db.coll", "encryptionInformation": info()}],
        },
        "Multi-document updates are not allowed",
        6329900,
    ),
    (
        "bulkWrite second namespace index",
        {
            "bulkWrite": 1,
            "ops": [{"insert": 1, "document": {}}],
            "nsInfo": [{"ns": "db.coll", "encryptionInformation": info()}],
        },
        "nsInfo index 0",
        2,
    ),
    (
        "unknown command field",
        C({"find": "coll", "fliter": {"ssn": SECRET}}),
        "BSON field 'find.fliter' is an unknown field.",
        40415,
    ),
    (
        "unknown update statement field",
        C(
            {
                "update": "coll",
                "updates": [{"q": {}, "u": {"$set": {"a": 1}}, "qq": {"ssn": SECRET}}],
            }
        ),
        "BSON field 'update.updates.qq' is an unknown field.",
        40415,
    ),
    (
        "unknown explain field",
        C({"explain": find({}), "filter": {"ssn": SECRET}}),
        "BSON field 'explain.filter' is an unknown field.",
        40415,
    ),
    (
        "unknown bulkWrite operation field",
        {
            "bulkWrite": 1,
            "ops": [{"delete": 0, "filter": {}, "q": {"ssn": SECRET}}],
            "nsInfo": [{"ns": "db.coll", "encryptionInformation": info()}],
        },
        "BSON field 'bulkWrite.ops.delete.q' is an unknown field.",
        40415,
    ),
    # -- JSON schemas -------------------------------------------------------------------------
    (
        "unsupported $jsonSchema keyword",
        C(find({}), {"$ref": "x"}),
        "$jsonSchema keyword '$ref' is not currently supported",
        9,
    ),
    ("unknown $jsonSchema keyword", C(find({}), {"foo": 1}), "Unknown $jsonSchema keyword: foo", 9),
    (
        "dependencies",
        C(find({}), {"dependencies": {}}),
        "keyword 'dependencies' is not supported for client-side encryption",
        31126,
    ),
    (
        "remote-only keyword in a local schema",
        C(find({}), {"minProperties": 1}, remote=False),
        "keyword 'minProperties' is only allowed with a remote schema",
        31068,
    ),
    (
        "encrypt under a schema not pinned to object",
        C(find({}), {"properties": {"a": encrypt()}}),
        "Invalid schema containing the 'encrypt' keyword.",
        51077,
    ),
    (
        "encrypt inside items",
        C(
            find({}),
            {
                "bsonType": "object",
                "properties": {
                    "a": {
                        "bsonType": "array",
                        "items": {"bsonType": "object", "properties": {"b": encrypt()}},
                    }
                },
            },
        ),
        "Invalid schema containing the 'encrypt' keyword.",
        51077,
    ),
    (
        "encrypt inside anyOf",
        C(find({}), {"bsonType": "object", "anyOf": [S(a=encrypt())]}),
        "Invalid schema containing the 'encrypt' keyword.",
        51077,
    ),
    (
        "encrypt under a dotted name",
        C(find({}), S(**{"a.b": encrypt()})),
        "Invalid schema containing the 'encrypt' keyword.",
        51077,
    ),
    (
        "encrypt with another keyword",
        C(find({}), S(a={**encrypt(), "description": "d"})),
        "'encrypt' cannot be used in conjunction with 'description'",
        51078,
    ),
    (
        "encrypt with a sibling before its placement is checked",
        C(find({}), {"properties": {"a": {**encrypt(), "bsonType": "object"}}}),
        "'encrypt' cannot be used in conjunction with 'bsonType'",
        51078,
    ),
    (
        "encryptMetadata not pinned to object",
        C(find({}), {"encryptMetadata": {"algorithm": DETERMINISTIC}}),
        "'encryptMetadata'",
        31077,
    ),
    (
        "empty encryptMetadata",
        C(find({}), {"bsonType": "object", "encryptMetadata": {}}),
        "non-empty",
        31077,
    ),
    (
        "encrypt without algorithm",
        C(find({}), S(a={"encrypt": {"keyId": [K1], "bsonType": "string"}})),
        "needs to specify an algorithm",
        51099,
    ),
    (
        "encrypt without keyId",
        C(find({}), S(a={"encrypt": {"algorithm": RANDOM}})),
        "needs to specify a keyId",
        51097,
    ),
    (
        "encrypt with an unknown field",
        C(
            find({}),
            S(a={"encrypt": {"keyId": [K1], "algorithm": RANDOM, "initializationVector": 1}}),
        ),
        "'encrypt.initializationVector' is an unknown field",
        40415,
    ),
    (
        "keyId array of non-UUIDs",
        C(find({}), S(a={"encrypt": {"keyId": [1], "algorithm": RANDOM}})),
        "UUID",
        51084,
    ),
    (
        "keyId of two UUIDs",
        C(find({}), S(a={"encrypt": {"keyId": [K1, K2], "algorithm": RANDOM}})),
        "exactly one UUID",
        51084,
    ),
    (
        "keyId of another type",
        C(find({}), S(a={"encrypt": {"keyId": 1, "algorithm": RANDOM}})),
        "keyId must be either an array of UUID or a string",
        51085,
    ),
    (
        "empty keyId pointer",
        C(find({}), S(a=encrypt(None, RANDOM, ""))),
        "JSON Pointer cannot be empty",
        51064,
    ),
    (
        "keyId pointer without /",
        C(find({}), S(a=encrypt(None, RANDOM, "x"))),
        "must start with a '/'",
        51065,
    ),
    (
        "keyId pointer bad escape",
        C(find({}), S(a=encrypt(None, RANDOM, "/a~2"))),
        "'~0' or '~1'",
        51063,
    ),
    (
        "deterministic without one bsonType",
        C(find({}), S(a=encrypt(["string", "int"]))),
        "must have exactly one specified type.",
        31051,
    ),
    (
        "deterministic with a pointer key",
        C(find({}), S(a=encrypt("string", DETERMINISTIC, "/k"))),
        "cannot have a keyId represented by a JSON pointer",
        31169,
    ),
    (
        "deterministic double",
        C(find({}), S(a=encrypt("double"))),
        "Cannot encrypt element of type: double",
        31122,
    ),
    (
        "random null type",
        C(find({}), S(a=encrypt("null", RANDOM))),
        "Cannot encrypt element of type: null",
        31122,
    ),
    (
        "random _id",
        C(find({}), S(_id=encrypt(None, RANDOM))),
        "Random encryption algorithm not allowed",
        51194,
    ),
    (
        "random _id through additionalProperties",
        C(find({}), {"bsonType": "object", "additionalProperties": encrypt(None, RANDOM)}),
        "Random encryption algorithm not allowed",
        51194,
    ),
    (
        "conflicting metadata",
        C(
            find({"ab": 1}),
            {"bsonType": "object", "patternProperties": {"^a": encrypt(), "b$": encrypt(key=K2)}},
        ),
        "Found conflicting encryption metadata for path: 'ab'",
        51142,
    ),
    # -- comparisons (CSFLE) ------------------------------------------------------------------
    (
        "random field compared",
        C(find({"notes": SECRET})),
        "Cannot query on fields encrypted with the randomized encryption algorithm",
        51158,
    ),
    (
        "null equality",
        C(find({"ssn": None})),
        "Illegal equality to null predicate for encrypted field: 'ssn'",
        51095,
    ),
    (
        "null in $in",
        C(find({"ssn": {"$in": [None]}})),
        "Illegal equality to null inside $in against an encrypted field: 'ssn'",
        51120,
    ),
    (
        "regex in $in",
        C(find({"ssn": {"$in": [Regex("a")]}})),
        "Illegal regex inside $in against an encrypted field: 'ssn'",
        51015,
    ),
    (
        "$gt on an encrypted field",
        C(find({"ssn": {"$gt": SECRET}})),
        "Invalid match expression operator on encrypted field 'ssn': $gt",
        51118,
    ),
    (
        "$regex on an encrypted field",
        C(find({"ssn": {"$regex": SECRET}})),
        "Invalid match expression operator on encrypted field 'ssn': $regex",
        51092,
    ),
    (
        "regex literal on an encrypted field",
        C(find({"ssn": Regex(SECRET)})),
        "operator on encrypted field 'ssn': $regex",
        51092,
    ),
    ("$type on an encrypted field", C(find({"ssn": {"$type": 2}})), "'ssn': $type", 51092),
    ("$size on an encrypted field", C(find({"ssn": {"$size": 2}})), "'ssn': $size", 51092),
    ("$mod on an encrypted field", C(find({"age": {"$mod": [3, 1]}})), "'age': $mod", 51092),
    (
        "$bitsAllClear on an encrypted field",
        C(find({"age": {"$bitsAllClear": 35}})),
        "'age': $bitsAllClear",
        51092,
    ),
    (
        "$geoWithin on an encrypted field",
        C(find({"ssn": {"$geoWithin": {"$center": [[0, 0], 1]}}})),
        "'ssn': $geoWithin",
        51092,
    ),
    (
        "$near on an encrypted field",
        C(find({"ssn": {"$near": [0, 0], "$maxDistance": 1}})),
        "'ssn': $near",
        51092,
    ),
    ("$all on an encrypted field", C(find({"ssn": {"$all": [SECRET]}})), "'ssn': $all", 51092),
    (
        "regex under $not on an encrypted field",
        C(find({"ssn": {"$not": Regex("a")}})),
        "'ssn': $regex",
        51092,
    ),
    (
        "$elemMatch on an encrypted field",
        C(find({"ssn": {"$elemMatch": {"a": 1}}})),
        "$elemMatch is unsupported on encrypted fields: 'ssn'",
        6890100,
    ),
    (
        "$elemMatch above an encrypted field",
        C(find({"name": {"$elemMatch": {"first": SECRET}}})),
        "$elemMatch is unsupported on encrypted fields: 'name'",
        6890100,
    ),
    (
        "$where",
        C(find({"$where": "true"})),
        "Unsupported match expression operator for encryption: $where",
        51094,
    ),
    (
        "$text",
        C(find({"$text": {"$search": "x"}})),
        "Unsupported match expression operator for encryption: $text",
        51094,
    ),
    (
        "$jsonSchema in a filter",
        C(find({"$jsonSchema": {}})),
        "Unsupported match expression operator for encryption: $jsonSchema",
        51094,
    ),
    (
        "$where nested in $or",
        C(find({"$or": [{"$where": "true"}]})),
        "for encryption: $where",
        51094,
    ),
    (
        "path inside an encrypted field",
        C(find({"ssn.x": SECRET})),
        "Invalid operation on path 'ssn.x' which contains an encrypted path prefix.",
        51102,
    ),
    (
        "array compared with an object holding encrypted fields",
        C(find({"name": [SECRET]})),
        "Cannot compare an array with 'name'",
        31007,
    ),
    (
        "array in $in against an object holding encrypted fields",
        C(find({"name": {"$in": [[SECRET]]}})),
        "Cannot compare an array in $in with 'name'",
        31008,
    ),
    (
        "object ordered against encrypted fields",
        C(find({"name": {"$gt": {"first": SECRET}}})),
        "compares an object holding encrypted fields",
        51119,
    ),
    (
        "string comparison under a non-simple collation",
        C({**find({"ssn": SECRET}), "collation": {"locale": "fr"}}),
        "cannot apply non-simple collation",
        31054,
    ),
    (
        "pointer-keyed field compared",
        C(find({"secret": SECRET})),
        "Cannot query on fields encrypted with the randomized",
        51158,
    ),
    (
        "value of another type than the schema's",
        C(find({"age": "x"})),
        "Cannot encrypt element of type string because schema requires that type is one of: "
        "[ int ]",
        31118,
    ),
    (
        "value of a type deterministic encryption refuses",
        C(find({"ssn": 1.5})),
        "Cannot encrypt element of type: double",
        31041,
    ),
    (
        "encrypted value compared",
        C(find({"ssn": Binary(b"\x01abcdef", 6)})),
        "Cannot encrypt element of type: encrypted binary data",
        31041,
    ),
    ("unknown operator", C(find({"x": {"$foo": 1}})), "unknown operator: $foo", 2),
    ("unknown top-level operator", C(find({"$foo": 1})), "unknown top level operator: $foo", 2),
    ("$in without an array", C(find({"ssn": {"$in": SECRET}})), "$in needs an array", 2),
    # -- writes (CSFLE) -----------------------------------------------------------------------
    (
        "Timestamp(0, 0) inserted in an encrypted field",
        C(ins({"notes": Timestamp(0, 0)})),
        "cannot supply Timestamp(0, 0) for an encrypted top-level field at path notes",
        51129,
    ),
    (
        "encrypted _id missing",
        C(ins({"a": 1}), S(_id=encrypt("int"))),
        "_id must be explicitly provided when configured as encrypted",
        51130,
    ),
    (
        "encrypted _id with a modifier upsert",
        C(upd({"$set": {"a": 1}}, upsert=True), S(_id=encrypt("int"))),
        "_id must be explicitly provided",
        51130,
    ),
    (
        "array above encrypted fields",
        C(ins({"name": [{"first": SECRET}]})),
        "An array at path 'name' would violate the schema",
        31006,
    ),
    (
        "array inserted in a deterministic field",
        C(ins({"ssn": [SECRET]})),
        "Cannot encrypt element of type: array",
        31041,
    ),
    (
        "null inserted in an encrypted field",
        C(ins({"notes": None})),
        "Cannot encrypt element of type: null",
        31041,
    ),
    (
        "$set of a scalar above encrypted fields",
        C(upd({"$set": {"name": SECRET}})),
        "Cannot $set to a path name that is an encrypted prefix to a non-object type",
        51159,
    ),
    (
        "$set inside an encrypted field",
        C(upd({"$set": {"ssn.x": SECRET}})),
        "which contains an encrypted path prefix",
        51102,
    ),
    (
        "$inc on an encrypted field",
        C(upd({"$inc": {"age": 1}})),
        "$inc and $mul not allowed on encrypted values",
        51150,
    ),
    (
        "$mul on an encrypted field",
        C(upd({"$mul": {"age": 1}})),
        "$inc and $mul not allowed on encrypted values",
        51150,
    ),
    (
        "$min on an encrypted field",
        C(upd({"$min": {"age": 1}})),
        "$max and $min not allowed on encrypted values",
        51150,
    ),
    (
        "$currentDate on an encrypted field",
        C(upd({"$currentDate": {"ssn": True}})),
        "$currentDate not allowed on encrypted values",
        51150,
    ),
    (
        "$addToSet on an encrypted field",
        C(upd({"$addToSet": {"ssn": ["a"]}})),
        "$addToSet not allowed on encrypted values",
        51150,
    ),
    (
        "$push on an encrypted field",
        C(upd({"$push": {"ssn": 1}})),
        "$push not allowed on encrypted values",
        51150,
    ),
    (
        "$pop on an encrypted field",
        C(upd({"$pop": {"ssn": 1}})),
        "$pop not allowed on encrypted values",
        51150,
    ),
    (
        "$pull on an encrypted field",
        C(upd({"$pull": {"ssn": 1}})),
        "$pull not allowed on encrypted values",
        51150,
    ),
    (
        "$pullAll on an encrypted field",
        C(upd({"$pullAll": {"ssn": [1]}})),
        "$pullAll not allowed on encrypted values",
        51150,
    ),
    (
        "$bit on an encrypted field",
        C(upd({"$bit": {"age": {"and": 1}}})),
        "$bit not allowed on encrypted values",
        51150,
    ),
    (
        "$inc above encrypted fields",
        C(upd({"$inc": {"name": 1}})),
        "$inc and $mul not allowed on encrypted values",
        51150,
    ),
    (
        "positional $ below an encrypted field",
        C(upd({"$set": {"ssn.$": SECRET}})),
        "Cannot encrypt fields below '$' positional update operator",
        51149,
    ),
    (
        "array filter below an encrypted field",
        C(upd({"$set": {"ssn.$[i].x": 1}}, arrayFilters=[{"i.x": 1}])),
        "Array update operations not allowed on encrypted values",
        51150,
    ),
    (
        "$rename between different metadata",
        C(upd({"$rename": {"ssn": "age"}})),
        "$rename between two encrypted fields must have the same metadata",
        51160,
    ),
    (
        "$rename of a plain field onto an encrypted one",
        C(upd({"$rename": {"x": "ssn"}})),
        "must have the same metadata or both be unencrypted",
        51160,
    ),
    (
        "$rename of an object holding encrypted fields",
        C(upd({"$rename": {"name": "other"}})),
        "$rename is not allowed on an object holding encrypted fields",
        51161,
    ),
    ("unknown update modifier", C(upd({"$foo": {"a": 1}})), "Unknown modifier: $foo", 2),
    (
        "pipeline update of an encrypted field",
        C(upd([{"$set": {"ssn": SECRET}}])),
        "Pipelines in updates are not allowed to modify encrypted fields",
        31146,
    ),
    (
        "pipeline update copying encrypted data",
        C(upd([{"$set": {"copy": "$ssn"}}])),
        "Pipelines in updates are not allowed",
        31146,
    ),
    (
        "pipeline update with $replaceRoot",
        C(upd([{"$replaceRoot": {"newRoot": {}}}])),
        "Pipelines in updates are not allowed",
        31146,
    ),
    (
        "pipeline upsert with an encrypted _id",
        C(upd([{"$set": {"a": 1}}], upsert=True), S(_id=encrypt("int"))),
        "encrypted",
        31150,
    ),
    (
        "findAndModify pipeline upsert with an encrypted _id",
        C(
            {"findAndModify": "coll", "update": [{"$set": {"a": 1}}], "upsert": True},
            S(_id=encrypt("int")),
        ),
        "encrypted",
        31151,
    ),
    (
        "pointer to a missing key name",
        C(ins({"secret": SECRET})),
        "keyId pointer '/keyName' must point to a field that exists",
        51114,
    ),
    (
        "pointer to a non-string key name",
        C(ins({"secret": SECRET, "keyName": 5})),
        "must point to a field of type string",
        51115,
    ),
    (
        "pointer to an encrypted key name",
        C(
            ins({"secret": SECRET, "keyName": "k"}),
            S(secret=encrypt(None, RANDOM, "/keyName"), keyName=encrypt()),
        ),
        "cannot point to an encrypted field",
        30017,
    ),
    (
        "pointer keyId in a replacement",
        C({"update": "coll", "updates": [{"q": {}, "u": {"secret": SECRET, "keyName": "k"}}]}),
        "A non-static (JSONPointer) keyId is not supported.",
        51093,
    ),
    (
        "pointer keyId in $set",
        C(upd({"$set": {"secret": SECRET}})),
        "A non-static (JSONPointer) keyId is not supported.",
        51093,
    ),
    # -- other commands (CSFLE) ---------------------------------------------------------------
    (
        "distinct on a prefix of encrypted fields",
        C({"distinct": "coll", "key": "name"}),
        "not allowed to be a prefix of an encrypted field",
        31027,
    ),
    (
        "distinct on a random field",
        C({"distinct": "coll", "key": "notes"}),
        "Distinct key is not allowed to be marked for encryption with the randomized encryption "
        "algorithm",
        31026,
    ),
    (
        "distinct on a pointer-keyed field",
        C(
            {"distinct": "coll", "key": "ptr"},
            S(ptr={"encrypt": {"keyId": "/k", "algorithm": RANDOM}}),
        ),
        "The distinct key is not allowed to be marked for encryption with a non-UUID keyId",
        51131,
    ),
    (
        "distinct string under a collation",
        C({"distinct": "coll", "key": "ssn", "collation": {"locale": "fr"}}),
        "non-simple collation",
        31058,
    ),
    (
        "find sorted on an encrypted field",
        C({"find": "coll", "sort": {"ssn": 1}}),
        "Sorting on key 'ssn' is not allowed due to encryption",
        51201,
    ),
    (
        "find sorted above encrypted fields",
        C({"find": "coll", "sort": {"name": 1}}),
        "Sorting on key 'name'",
        51201,
    ),
    (
        "findAndModify sorted on an encrypted field",
        C({"findAndModify": "coll", "sort": {"age": 1}, "remove": True}),
        "Sorting on key 'age'",
        51201,
    ),
    (
        "find projection $slice of an encrypted field",
        C({"find": "coll", "projection": {"ssn": {"$slice": 1}}}),
        "array operator",
        51092,
    ),
    (
        "find projection evaluating an encrypted field",
        C({"find": "coll", "projection": {"x": {"$concat": ["$ssn", "a"]}}}),
        "Encrypted field 'ssn' is not allowed to be evaluated by $concat",
        31110,
    ),
    (
        "create a view",
        C({"create": "v", "viewOn": "coll", "pipeline": []}),
        "Creating a view is not supported with automatic encryption",
        7501300,
    ),
    (
        "collMod to a view",
        C({"collMod": "v", "viewOn": "coll", "pipeline": []}, {}),
        "Creating a view is not supported",
        7501300,
    ),
    (
        "validator comparing an encrypted field",
        C({"create": "coll", "validator": {"ssn": SECRET}}),
        "Comparison to encrypted fields not supported in collection validator.",
        6491100,
    ),
    (
        "collMod validator comparing an encrypted field",
        C({"collMod": "coll", "validator": {"ssn": SECRET}}),
        "Comparison to encrypted fields not supported",
        6491100,
    ),
    (
        "validator with another JSON schema",
        C({"create": "coll", "validator": {"$jsonSchema": S(ssn=encrypt(key=K2))}}),
        "does not describe the same encrypted fields",
        6491101,
    ),
    (
        "partial index comparing an encrypted field",
        C(
            {
                "createIndexes": "coll",
                "indexes": [{"key": {"a": 1}, "partialFilterExpression": {"ssn": SECRET}}],
            }
        ),
        "Comparison to encrypted fields not supported in a partialFilterExpression",
        6491102,
    ),
    (
        "find min bound on an encrypted field",
        C({"find": "coll", "min": {"ssn": SECRET}, "hint": {"ssn": 1}}),
        "find's min may not name the encrypted field 'ssn'",
        51201,
    ),
    (
        "find max bound above encrypted fields",
        C({"find": "coll", "max": {"name": {"first": SECRET}}, "hint": {"name": 1}}),
        "find's max may not name the encrypted field 'name'",
        51201,
    ),
    (
        "update sorted on an encrypted field",
        C({"update": "coll", "updates": [{"q": {}, "u": {"$set": {"a": 1}}, "sort": {"ssn": 1}}]}),
        "Sorting on key 'ssn'",
        51201,
    ),
    # -- aggregation (CSFLE) ------------------------------------------------------------------
    (
        "$out",
        C(agg({"$out": "x"})),
        "Aggregation stage $out is not allowed or supported with automatic encryption.",
        31011,
    ),
    ("$merge", C(agg({"$merge": "x"})), "Aggregation stage $merge", 31011),
    ("$facet", C(agg({"$facet": {}})), "Aggregation stage $facet", 31011),
    ("$unionWith", C(agg({"$unionWith": "x"})), "Aggregation stage $unionWith", 31011),
    ("$redact", C(agg({"$redact": "$$KEEP"})), "Aggregation stage $redact", 31011),
    (
        "$setWindowFields",
        C(agg({"$setWindowFields": {}})),
        "Aggregation stage $setWindowFields",
        31011,
    ),
    (
        "$search on an encrypted collection",
        C(agg({"$search": {"text": {"query": SECRET, "path": "ssn"}}})),
        "Atlas Search",
        31011,
    ),
    (
        "$match on a random field",
        C(agg({"$match": {"notes": SECRET}})),
        "randomized encryption algorithm",
        51158,
    ),
    (
        "$expr ordering an encrypted field",
        C(find({"$expr": {"$gt": ["$ssn", SECRET]}})),
        "Encrypted field 'ssn' is not allowed to be evaluated by $gt",
        31110,
    ),
    (
        "$expr evaluating an encrypted field",
        C(agg({"$project": {"x": {"$toUpper": "$ssn"}}})),
        "Encrypted field 'ssn' is not allowed to be evaluated by $toUpper",
        31110,
    ),
    (
        "$expr comparing two differently encrypted fields",
        C(find({"$expr": {"$eq": ["$ssn", "$age"]}})),
        "Comparison between encrypted fields 'ssn' and 'age'",
        31100,
    ),
    (
        "$expr comparing an encrypted and a plain field",
        C(find({"$expr": {"$eq": ["$ssn", "$x"]}})),
        "can only be compared with a constant",
        31099,
    ),
    (
        "$expr comparing an encrypted field and an expression",
        C(find({"$expr": {"$eq": ["$ssn", {"$concat": ["a", "b"]}]}})),
        "can only be compared with a constant",
        31117,
    ),
    (
        "$expr comparing a random field",
        C(find({"$expr": {"$eq": ["$notes", SECRET]}})),
        "randomized encryption algorithm",
        51158,
    ),
    (
        "$expr $in on an encrypted field without a literal array",
        C(find({"$expr": {"$in": ["$ssn", "$list"]}})),
        "needs a literal array of constants",
        31110,
    ),
    (
        "$expr evaluating the whole document",
        C(find({"$expr": {"$eq": ["$$ROOT", {}]}})),
        "$$ROOT/$$CURRENT",
        31121,
    ),
    (
        "$expr on an object holding encrypted fields",
        C(find({"$expr": {"$eq": ["$name", {"first": SECRET}]}})),
        "a prefix of an encrypted field",
        31131,
    ),
    (
        "$getField with a computed name",
        C(find({"$expr": {"$eq": [{"$getField": {"$concat": ["s", "sn"]}}, SECRET]}})),
        "$getField with a computed field name cannot be analysed",
        31110,
    ),
    (
        "$getField of a random field compared",
        C(find({"$expr": {"$eq": [{"$getField": {"field": "notes", "input": "$$ROOT"}}, SECRET]}})),
        "randomized encryption algorithm",
        51158,
    ),
    (
        "$let binding an encrypted field",
        C(find({"$expr": {"$let": {"vars": {"v": "$ssn"}, "in": {"$eq": ["$$v", SECRET]}}}})),
        "may not be bound to encrypted data",
        31110,
    ),
    (
        "$let rebinding CURRENT",
        C(find({"$expr": {"$let": {"vars": {"CURRENT": "$name"}, "in": True}}})),
        "may not rebind CURRENT",
        31121,
    ),
    (
        "$cond result compared",
        C(find({"$expr": {"$eq": [{"$cond": [True, "$ssn", "x"]}, SECRET]}})),
        "cannot be evaluated by $eq",
        31110,
    ),
    (
        "$group on a random field",
        C(agg({"$group": {"_id": "$notes"}})),
        "Cannot group on field 'notes'",
        51222,
    ),
    (
        "$group accumulating an encrypted field",
        C(agg({"$group": {"_id": None, "s": {"$sum": "$age"}}})),
        "Accumulator '$sum' cannot aggregate encrypted field 'age'",
        51221,
    ),
    (
        "$addToSet of a random field",
        C(agg({"$group": {"_id": None, "s": {"$addToSet": "$notes"}}})),
        "$addToSet is not allowed on field 'notes'",
        51223,
    ),
    (
        "$unwind of a random field",
        C(agg({"$unwind": "$notes"})),
        "$unwind is not allowed on encrypted field 'notes'",
        31153,
    ),
    (
        "$replaceRoot to an encrypted field",
        C(agg({"$replaceRoot": {"newRoot": "$ssn"}})),
        "cannot make the encrypted field 'ssn' the root",
        31159,
    ),
    ("$sort on an encrypted field", C(agg({"$sort": {"ssn": 1}})), "Sorting on key 'ssn'", 51201),
    (
        "$bucket grouping by an encrypted field",
        C(agg({"$bucket": {"groupBy": "$age", "boundaries": [0, 5]}})),
        "groupBy may not reference encrypted field 'age'",
        51238,
    ),
    (
        "$sortByCount of a random field",
        C(agg({"$sortByCount": "$notes"})),
        "Cannot group on field 'notes' which is encrypted with the random algorithm",
        51222,
    ),
    (
        "$geoNear on an encrypted key",
        C(agg({"$geoNear": {"near": [0, 0], "key": "ssn", "distanceField": "d"}})),
        "$geoNear key 'ssn' may not be encrypted",
        51212,
    ),
    ("$lookup with let", C(agg(lookup(let={"v": "$x"}, pipeline=[]))), "non-empty 'let'", 51208),
    (
        "$lookup joining encrypted and plain fields",
        C(agg(lookup(localField="ssn", foreignField="x"))),
        "must both be unencrypted or both be deterministically encrypted",
        51206,
    ),
    (
        "$lookup of another collection with one schema",
        C(agg({"$lookup": {"from": "other", "localField": "a", "foreignField": "b", "as": "j"}})),
        "Pipeline over an encrypted collection cannot reference additional collections.",
        51204,
    ),
    (
        "$lookup of a collection without a schema",
        {
            **agg(
                {"$lookup": {"from": "other", "localField": "a", "foreignField": "b", "as": "j"}}
            ),
            "$db": "db",
            "csfleEncryptionSchemas": {"db.coll": {"jsonSchema": SCHEMA, "isRemoteSchema": True}},
        },
        "Missing encryption schema for namespace: db.other",
        9710000,
    ),
    (
        "field of a $lookup result used",
        C(agg(lookup(localField="a", foreignField="b"), {"$match": {"j.ssn": SECRET}})),
        "its encryption is unknown",
        0,
    ),
    (
        "$graphLookup connecting on an encrypted field",
        C(
            agg(
                {
                    "$graphLookup": {
                        "from": "coll",
                        "startWith": "$x",
                        "connectFromField": "ssn",
                        "connectToField": "y",
                        "as": "g",
                    }
                }
            )
        ),
        "connectFromField 'ssn' may not be encrypted",
        51231,
    ),
    (
        "$graphLookup starting from an encrypted field",
        C(
            agg(
                {
                    "$graphLookup": {
                        "from": "coll",
                        "startWith": "$ssn",
                        "connectFromField": "a",
                        "connectToField": "b",
                        "as": "g",
                    }
                }
            )
        ),
        "startWith may not reference encrypted field 'ssn'",
        51230,
    ),
    (
        "$documents after the first stage",
        C(agg({"$match": {}}, {"$documents": []})),
        "only valid as the first stage",
        40602,
    ),
    (
        "inclusion projection then use of a renamed field",
        C(agg({"$project": {"copy": "$ssn"}}, {"$match": {"copy": SECRET}})),
        "its encryption is unknown",
        0,
    ),
    # -- Queryable Encryption -----------------------------------------------------------------
    (
        "multi-document update",
        Q({"update": "coll", "updates": [{"q": {}, "u": {"$set": {"a": 1}}, "multi": True}]}),
        "Multi-document updates are not allowed with Queryable Encryption",
        6329900,
    ),
    (
        "multi-document delete",
        Q({"delete": "coll", "deletes": [{"q": {}, "limit": 0}]}),
        "Only single document deletes are permitted with Queryable Encryption",
        6382800,
    ),
    (
        "$rename of a QE field",
        Q(upd({"$rename": {"ssn": "x"}})),
        "$rename is not allowed on Queryable Encryption fields",
        6329901,
    ),
    (
        "findAndModify with fields",
        Q({"findAndModify": "coll", "fields": {"a": 1}, "remove": True}),
        "findAndModify with fields is not allowed",
        2,
    ),
    (
        "findAndModify returning the new document",
        Q({"findAndModify": "coll", "new": True, "update": {"$set": {"a": 1}}}),
        "new: true is not allowed",
        2,
    ),
    (
        "pipeline update of a QE field",
        Q(upd([{"$set": {"ssn": SECRET}}])),
        "Pipelines in updates are not allowed to modify encrypted fields",
        6329902,
    ),
    (
        "__safeContent__ inserted",
        Q(ins({"__safeContent__": []})),
        "Cannot modify __safeContent__ field in document.",
        6666200,
    ),
    (
        "__safeContent__ updated",
        Q(upd({"$set": {"__safeContent__": []}})),
        "Cannot modify __safeContent__ field in document.",
        6666200,
    ),
    (
        "__safeContent__ unset",
        Q(upd({"$unset": {"__safeContent__": ""}})),
        "Cannot modify __safeContent__ field in document.",
        6666200,
    ),
    (
        "object compared with QE fields inside",
        Q(find({"info": {"born": SECRET}})),
        "Comparisons to objects which contain encrypted payloads is not allowed with Queryable "
        "Encryption",
        6341900,
    ),
    (
        "object in $in with QE fields inside",
        Q(find({"info": {"$in": [{"born": SECRET}]}})),
        "Comparisons to objects which contain encrypted payloads",
        6341901,
    ),
    (
        "equality on an unindexed field",
        Q(find({"notes": SECRET})),
        "Can only execute encrypted equality queries with an encrypted equality index: 'notes'",
        63165,
    ),
    (
        "equality on a text field",
        Q(find({"name": SECRET})),
        "Can only execute encrypted equality queries with an encrypted equality index: 'name'",
        63165,
    ),
    (
        "range operator on an equality field",
        Q(find({"ssn": {"$gt": SECRET}})),
        "Invalid match expression operator on encrypted field 'ssn': $gt",
        6721001,
    ),
    (
        "range bound above the index",
        Q(find({"f": {"$gt": 11}}), RANGE),
        "outside the field's range index bounds",
        6747900,
    ),
    (
        "range bound below the index",
        Q(find({"f": {"$lt": -1}}), RANGE),
        "outside the field's range index bounds",
        6747900,
    ),
    (
        "NaN range bound",
        Q(find({"f": {"$gt": float("nan")}}), F(bsonType="double", queries={"queryType": "range"})),
        "Query bound cannot be NaN.",
        6991000,
    ),
    (
        "date compared with a number index",
        Q(find({"f": {"$gt": Int64(1)}}), F(bsonType="date", queries={"queryType": "range"})),
        "If the value type is a date, the type of the index must also be date (and vice versa)",
        6720002,
    ),
    (
        "range value of another type",
        Q(find({"f": {"$gte": 0.0}}), RANGE),
        "field type is not supported",
        6742002,
    ),
    (
        "null range equality",
        Q(find({"f": None}), RANGE),
        "Illegal equality to null predicate",
        51095,
    ),
    (
        "range comparison under $not",
        Q(find({"f": {"$not": {"$gt": 1}}}), RANGE),
        "Range comparisons under $not are not supported",
        6721001,
    ),
    ("$regex on a QE field", Q(find({"ssn": {"$regex": "a"}})), "'ssn': $regex", 51092),
    (
        "QE value of another type",
        Q(ins({"ssn": 5})),
        "Cannot encrypt element of type int because schema requires that type is one of: "
        "[ string ]",
        31118,
    ),
    (
        "QE range insert of another type",
        Q(ins({"f": 1.5}), RANGE),
        "Cannot encrypt element of type double",
        31118,
    ),
    ("QE null inserted", Q(ins({"notes": None})), "Cannot encrypt element of type: null", 31041),
    (
        "QE $expr comparing two encrypted fields",
        Q(find({"$expr": {"$eq": ["$ssn", "$notes"]}})),
        "Comparison between encrypted fields",
        6334101,
    ),
    (
        "QE $expr on a range field",
        Q(find({"$expr": {"$eq": ["$age", 5]}})),
        "only fields with an equality index can",
        31158,
    ),
    (
        "QE $expr range comparison",
        Q(find({"$expr": {"$gte": ["$age", 5]}})),
        "Encrypted field 'age' is not allowed to be evaluated by $gte",
        31110,
    ),
    (
        "text search on a CSFLE field",
        C(find({"$expr": {"$encStrStartsWith": {"input": "$ssn", "prefix": "a"}}})),
        "needs a Queryable Encryption schema",
        10112203,
    ),
    (
        "text search on a plain field",
        Q(find({"$expr": {"$encStrStartsWith": {"input": "$x", "prefix": "a"}}})),
        "needs an encrypted field path as its input",
        10112204,
    ),
    (
        "text search of a kind not indexed",
        Q(find({"$expr": {"$encStrStartsWith": {"input": "$name", "prefix": "a"}}})),
        "has no prefix text search index",
        10112204,
    ),
    (
        "text search of a computed value",
        Q(find({"$expr": {"$encStrEndsWith": {"input": "$name", "suffix": "$x"}}})),
        "needs a constant 'suffix'",
        2,
    ),
    (
        "normalized-equality text search",
        Q(find({"$expr": {"$encStrNormalizedEq": {"input": "$name", "string": "a"}}})),
        "not supported",
        0,
    ),
    (
        "distinct on a QE field",
        Q({"distinct": "coll", "key": "ssn"}),
        "Distinct key is not allowed to be marked for encryption with Queryable Encryption",
        31026,
    ),
    (
        "$group on a QE field",
        Q(agg({"$group": {"_id": "$ssn"}})),
        "Cannot group on field 'ssn'",
        51222,
    ),
    (
        "$lookup joining on a QE field",
        Q(agg(lookup(localField="ssn", foreignField="ssn"))),
        "cannot join on Queryable Encryption fields",
        6331103,
    ),
    (
        "$search with stored source",
        Q(agg({"$search": {"returnStoredSource": True}})),
        "returnStoredSource",
        6837100,
    ),
    (
        "QE field used after an inclusion projection",
        Q(agg({"$project": {"ssn": 1}}, {"$match": {"ssn": SECRET}})),
        "its encryption is unknown",
        0,
    ),
    (
        "QE validator comparing an encrypted field",
        Q({"create": "coll", "validator": {"ssn": SECRET}}),
        "Comparison to encrypted fields not supported in collection validator.",
        6491100,
    ),
    (
        "QE partial index on a range field",
        Q(
            {
                "createIndexes": "coll",
                "indexes": [{"key": {"a": 1}, "partialFilterExpression": {"f": {"$gt": 1}}}],
            },
            RANGE,
        ),
        "partialFilterExpression",
        6491102,
    ),
    # -- encryptedFields ----------------------------------------------------------------------
    (
        "duplicate key ids",
        Q(find({}), [*F(bsonType="string"), {"path": "g", "keyId": K1, "bsonType": "string"}]),
        "Duplicate key ids are not allowed",
        6338401,
    ),
    (
        "duplicate paths",
        Q(find({}), [*F(bsonType="string"), {"path": "f", "keyId": K2, "bsonType": "string"}]),
        "Duplicate paths are not allowed",
        6338402,
    ),
    (
        "path prefix of another",
        Q(find({}), [*F(bsonType="string"), {"path": "f.g", "keyId": K2, "bsonType": "string"}]),
        "is a prefix of another encrypted path",
        6338403,
    ),
    (
        "encrypted _id",
        Q(find({}), [{"path": "_id", "keyId": K1, "bsonType": "int"}]),
        "_id field cannot be encrypted",
        6316403,
    ),
    (
        "empty path",
        Q(find({}), [{"path": "", "keyId": K1, "bsonType": "int"}]),
        "non-empty string",
        6316402,
    ),
    (
        "indexed field without bsonType",
        Q(find({}), F(queries={"queryType": "equality"})),
        "is indexed and needs a bsonType",
        6412601,
    ),
    (
        "keyAltName instead of keyId",
        Q(find({}), [{"path": "f", "keyAltName": "k", "bsonType": "int"}]),
        "is an unknown field",
        40415,
    ),
    (
        "equality index on a double",
        Q(find({}), F(bsonType="double", queries={"queryType": "equality"})),
        "Type 'double' is not a supported equality indexed type",
        6338405,
    ),
    (
        "range parameters on an equality index",
        Q(find({}), F(bsonType="int", queries={"queryType": "equality", "min": 0})),
        "not allowed for the equality query type",
        6775205,
    ),
    (
        "range index on a string",
        Q(find({}), F(bsonType="string", queries={"queryType": "range"})),
        "Type 'string' is not a supported range indexed type",
        6775201,
    ),
    (
        "rangePreview",
        Q(find({}), F(bsonType="int", queries={"queryType": "rangePreview"})),
        "'rangePreview' is unsupported",
        2,
    ),
    (
        "unknown query type",
        Q(find({}), F(bsonType="int", queries={"queryType": "fuzzy"})),
        "Unknown queryType 'fuzzy'",
        2,
    ),
    (
        "range min of another type",
        Q(find({}), F(bsonType="long", queries={"queryType": "range", "min": 0, "max": Int64(5)})),
        "Range min of encrypted field 'f' must have the field's type long",
        7018200,
    ),
    (
        "range min not below max",
        Q(find({}), F(bsonType="int", queries={"queryType": "range", "min": 5, "max": 5})),
        "Range min must be less than max",
        6720005,
    ),
    (
        "precision on an int range",
        Q(find({}), F(bsonType="int", queries={"queryType": "range", "precision": 2})),
        "precision is only allowed for double and decimal fields",
        8574112,
    ),
    (
        "double range with min but no precision",
        Q(find({}), F(bsonType="double", queries={"queryType": "range", "min": 0.0, "max": 1.0})),
        "min, max and precision must all be set or all unset",
        6967100,
    ),
    (
        "double bounds finer than the precision",
        Q(
            find({}),
            F(
                bsonType="double",
                queries={"queryType": "range", "min": 0.125, "max": 1.0, "precision": 1},
            ),
        ),
        "more digits than the precision",
        6966805,
    ),
    (
        "double domain too large for precision",
        Q(
            find({}),
            F(
                bsonType="double",
                queries={"queryType": "range", "min": 0.0, "max": 1e15, "precision": 5},
            ),
        ),
        "fewer than 53 bits",
        9157100,
    ),
    (
        "sparsity out of range",
        Q(find({}), F(bsonType="int", queries={"queryType": "range", "sparsity": 0})),
        "sparsity of encrypted field 'f' must be between 1 and 8",
        6775214,
    ),
    (
        "trimFactor as large as the domain",
        Q(
            find({}),
            F(bsonType="int", queries={"queryType": "range", "min": 0, "max": 7, "trimFactor": 3}),
        ),
        "less than the number of bits (3)",
        8574000,
    ),
    (
        "negative contention",
        Q(find({}), F(bsonType="int", queries={"queryType": "equality", "contention": -1})),
        "contention of encrypted field 'f' must be >= 0",
        8574104,
    ),
    (
        "text search on an int",
        Q(
            find({}),
            F(
                bsonType="int",
                queries={
                    "queryType": "prefix",
                    "strMinQueryLength": 1,
                    "strMaxQueryLength": 2,
                    "caseSensitive": True,
                    "diacriticSensitive": True,
                },
            ),
        ),
        "Text search queries need a string field",
        9783400,
    ),
    (
        "text search without strMinQueryLength",
        Q(
            find({}),
            F(
                bsonType="string",
                queries={
                    "queryType": "prefix",
                    "strMaxQueryLength": 2,
                    "caseSensitive": True,
                    "diacriticSensitive": True,
                },
            ),
        ),
        "'strMinQueryLength' is required",
        9783402,
    ),
    (
        "text search lengths reversed",
        Q(
            find({}),
            F(
                bsonType="string",
                queries={
                    "queryType": "suffix",
                    "strMinQueryLength": 3,
                    "strMaxQueryLength": 2,
                    "caseSensitive": True,
                    "diacriticSensitive": True,
                },
            ),
        ),
        "strMinQueryLength of 'f' is above strMaxQueryLength",
        9783406,
    ),
    (
        "substring without strMaxLength",
        Q(
            find({}),
            F(
                bsonType="string",
                queries={
                    "queryType": "substring",
                    "strMinQueryLength": 1,
                    "strMaxQueryLength": 2,
                    "caseSensitive": True,
                    "diacriticSensitive": True,
                },
            ),
        ),
        "strMaxLength is required for substring queries",
        9783407,
    ),
    (
        "two query types other than prefix and suffix",
        Q(
            find({}),
            F(bsonType="string", queries=[{"queryType": "equality"}, {"queryType": "prefix"}]),
        ),
        "may combine only prefix and suffix queries",
        9783414,
    ),
    (
        "unindexed null type",
        Q(find({}), F(bsonType="null")),
        "Type 'null' is not a supported unindexed type",
        6338406,
    ),
    (
        "strEncodeVersion other than 1",
        {
            **find({}),
            "encryptionInformation": {
                "type": 1,
                "schema": {"db.coll": {"fields": [], "strEncodeVersion": 99}},
            },
        },
        "strEncodeVersion must be an int32 equal to 1",
        2,
    ),
    (
        "unknown encryptedFields option",
        {
            **find({}),
            "encryptionInformation": {
                "type": 1,
                "schema": {"db.coll": {"fields": [], "keyId": K1}},
            },
        },
        "'EncryptedFieldConfig.keyId' is an unknown field",
        40415,
    ),
]


@pytest.mark.requirement("CSE-AUTO-06", "CSE-AUTO-07", "CSE-ERR-01", "CSE-ERR-05")
@pytest.mark.parametrize(
    ("command", "message", "code"),
    [pytest.param(c, m, code, id=name) for name, c, m, code in RULES],
)
def test_refusal(command: dict[str, Any], message: str, code: int) -> None:
    with pytest.raises(QueryAnalysisError, match=re.escape(message)) as info:
        analyze(command)
    assert info.value.code == code
    assert SECRET not in str(info.value)


def test_rule_names_are_unique() -> None:
    names = [name for name, *_ in RULES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(C(find({"ssn": "a"})), id="csfle find"),
        pytest.param(Q(ins({"ssn": "a"})), id="qe insert"),
    ],
)
def test_the_command_must_be_encodable(command: dict[str, Any]) -> None:
    command["filter" if "find" in command else "documents"] = object()
    with pytest.raises(QueryAnalysisError, match="cannot be encoded as BSON"):
        analyze(command)


def test_not_a_document() -> None:
    with pytest.raises(QueryAnalysisError, match="must be a document"):
        analyze([("find", "coll")])  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(QueryAnalysisError, match="empty"):
        analyze({})


def test_too_deeply_nested() -> None:
    query: dict[str, Any] = {"ssn": SECRET}
    for _ in range(3000):
        query = {"$and": [query]}
    with pytest.raises(QueryAnalysisError, match="nested too deeply") as info:
        analyze(C(find(query)))
    assert SECRET not in str(info.value)


FRENCH = {"locale": "fr"}


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(Q({**find({"ssn": SECRET}), "collation": FRENCH}), id="find"),
        pytest.param(Q({**find({"ssn": {"$in": [SECRET]}}), "collation": FRENCH}), id="$in"),
        pytest.param(Q({**agg({"$match": {"ssn": SECRET}}), "collation": FRENCH}), id="aggregate"),
        pytest.param(
            Q({"count": "coll", "query": {"ssn": SECRET}, "collation": FRENCH}), id="count"
        ),
        pytest.param(
            Q(
                {
                    "delete": "coll",
                    "deletes": [{"q": {"ssn": SECRET}, "limit": 1, "collation": FRENCH}],
                }
            ),
            id="delete",
        ),
        pytest.param(
            Q(
                {
                    "update": "coll",
                    "updates": [
                        {"q": {"ssn": SECRET}, "u": {"$set": {"a": 1}}, "collation": FRENCH}
                    ],
                }
            ),
            id="update",
        ),
        pytest.param(
            Q(
                {
                    "findAndModify": "coll",
                    "query": {"ssn": SECRET},
                    "remove": True,
                    "collation": FRENCH,
                }
            ),
            id="findAndModify",
        ),
        pytest.param(
            Q({**find({"$expr": {"$eq": ["$ssn", SECRET]}}), "collation": FRENCH}), id="$expr"
        ),
    ],
)
def test_qe_equality_under_a_non_simple_collation_is_refused(command: dict[str, Any]) -> None:
    """CSE-ERR-05: a Queryable Encryption equality comparison of a string under a non-simple
    collation is refused as mongocryptd refuses it for CSFLE (31054): the server would apply the
    collation to the tokens, silently matching nothing or the wrong documents."""
    with pytest.raises(QueryAnalysisError, match="non-simple collation") as info:
        analyze(command)
    assert info.value.code == 31054
    assert SECRET not in str(info.value)


def test_qe_equality_under_the_simple_collation_is_marked() -> None:
    """The simple collation, spelt out, changes nothing."""
    reply = analyze(Q({**find({"ssn": SECRET}), "collation": {"locale": "simple"}}))
    assert reply["hasEncryptionPlaceholders"] is True


ANALYSIS_SOURCES = sorted(Path(analysis_codes.__file__).parent.glob("*.py"))


def test_error_codes_are_named_in_one_module() -> None:
    """Every refusal names its code from ``analysis._codes`` (no number written inline), each
    code there has one name, and every name is used."""
    code_names = {
        name: getattr(analysis_codes, name) for name in dir(analysis_codes) if name.isupper()
    }
    assert len(set(code_names.values())) == len(code_names)
    used: set[str] = set()
    for path in ANALYSIS_SOURCES:
        if path.name == "_codes.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "refuse":
                for argument in node.args[1:]:
                    assert not isinstance(argument, ast.Constant), (path.name, node.lineno)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "codes"
            ):
                used.add(node.attr)
    assert used == set(code_names)


def test_is_operator_is_defined_once() -> None:
    definitions = [
        path.name
        for path in ANALYSIS_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == "is_operator"
    ]
    assert definitions == ["_types.py"]
