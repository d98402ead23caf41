"""CSFLE (JSON schema) analysis: what the analyzer writes back for each command.

The shapes follow mongocryptd's: find-like filters re-serialized (``{f: {$eq: marking}}``,
explicit ``$and``, ``$ne`` as ``$not: {$eq}``, ``$in`` sorted; aggregation ``$match`` too),
the write batch last, ``$db`` and the schema fields dropped.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Optional, Union

import bson
import pytest
from bson import json_util
from bson.binary import Binary
from bson.code import Code
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from bson.regex import Regex
from bson.son import SON

from mongocrypt.analysis import MAX_WIRE_VERSION, QueryAnalysisError, analyze, mark_command
from mongocrypt.analysis._commands import DECODE, ENCODE

DATA = Path(__file__).resolve().parents[1] / "data"
K1 = Binary(uuid.UUID("11111111-1111-1111-1111-111111111111").bytes, 4)
K2 = Binary(uuid.UUID("22222222-2222-2222-2222-222222222222").bytes, 4)
K3 = Binary(uuid.UUID("33333333-3333-3333-3333-333333333333").bytes, 4)
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"


def encrypt(
    bson_type: Union[str, list[str], None] = "string", algorithm: str = DETERMINISTIC, key: Any = K1
) -> dict[str, Any]:
    spec: dict[str, Any] = {"keyId": [key] if isinstance(key, Binary) else key}
    if algorithm is not None:
        spec["algorithm"] = algorithm
    if bson_type is not None:
        spec["bsonType"] = bson_type
    return {"encrypt": spec}


SCHEMA: dict[str, Any] = {
    "bsonType": "object",
    "properties": {
        "ssn": encrypt(),
        "age": encrypt("int", key=K2),
        "notes": encrypt(None, RANDOM),
        "secret": encrypt("string", RANDOM, "/keyName"),
        "name": {
            "bsonType": "object",
            "properties": {"first": encrypt(), "last": {"bsonType": "string"}},
        },
    },
}


def csfle(command: dict[str, Any], schema: Any = None, remote: bool = True) -> dict[str, Any]:
    """The analyzer's reply to ``command`` with a JSON schema (``SCHEMA`` by default)."""
    return analyze(
        {**command, "jsonSchema": SCHEMA if schema is None else schema, "isRemoteSchema": remote}
    )


def m(value: Any, *, key: Binary = K1, algorithm: int = 1, alt: Optional[str] = None) -> Binary:
    """The FLE1 marking mongocryptd writes for ``value``."""
    key_field: dict[str, Any] = {"ka": alt} if alt is not None else {"ki": key}
    return Binary(b"\x00" + bson.encode({"a": algorithm, **key_field, "v": value}), 6)  # type: ignore[no-any-return]  # bson's Binary returns typing.Self, which mypy's Python 3.10 lacks


def opened(value: Any) -> Any:
    """Markings decoded (``("marking", type, fields)``), for readable comparisons."""
    if isinstance(value, Binary) and value.subtype == 6 and value[:1] in (b"\x00", b"\x03"):
        return ("marking", value[0], opened(bson.decode(value[1:], codec_options=DECODE)))
    if isinstance(value, dict):
        return {k: opened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [opened(v) for v in value]
    return value


def same(actual: Any, expected: Any) -> None:
    """Equal, with markings decoded and key order significant."""
    assert bson.encode({"v": actual}) == bson.encode({"v": expected}), (
        opened(actual),
        opened(expected),
    )


# -- the reply ------------------------------------------------------------------------------------


def test_reply_flags_and_ok() -> None:
    reply = csfle({"find": "coll", "filter": {"ssn": "x"}, "$db": "db"})
    assert list(reply) == ["hasEncryptionPlaceholders", "schemaRequiresEncryption", "result", "ok"]
    assert reply["hasEncryptionPlaceholders"] is True
    assert reply["schemaRequiresEncryption"] is True
    assert reply["ok"] == 1.0 and isinstance(reply["ok"], float)
    same(reply["result"], {"find": "coll", "filter": {"ssn": {"$eq": m("x")}}})


def test_no_marking_needed_still_requires_encryption() -> None:
    reply = csfle({"find": "coll", "filter": {"other": 1}})
    assert (reply["hasEncryptionPlaceholders"], reply["schemaRequiresEncryption"]) == (False, True)
    assert reply["result"] == {"find": "coll", "filter": {"other": {"$eq": 1}}}


@pytest.mark.requirement("CSE-AUTO-05")
@pytest.mark.parametrize(
    "schema",
    [{}, {"bsonType": "object"}, {"bsonType": "object", "properties": {"a": {"bsonType": "int"}}}],
)
def test_schema_without_encryption_returns_the_command_untouched(schema: dict[str, Any]) -> None:
    command = {"find": "coll", "filter": {"a": 1, "b": {"$gt": 2}}, "lsid": {"id": K3}}
    reply = csfle(command, schema)
    assert reply == {
        "hasEncryptionPlaceholders": False,
        "schemaRequiresEncryption": False,
        "result": command,
        "ok": 1.0,
    }


def test_generic_fields_pass_through_and_db_is_dropped() -> None:
    command = {
        "find": "coll",
        "filter": {},
        "lsid": {"id": K3},
        "txnNumber": Int64(3),
        "readConcern": {"level": "majority"},
        "maxTimeMS": 100,
        "$db": "db",
        "comment": "c",
    }
    result = csfle(command)["result"]
    assert result == {k: v for k, v in command.items() if k != "$db"}


def test_the_callers_command_is_not_modified() -> None:
    command = {"insert": "coll", "documents": [{"ssn": "x"}]}
    csfle(command)
    assert command == {"insert": "coll", "documents": [{"ssn": "x"}]}


def test_mark_command_round_trips_bson_and_answers_the_wire_version_probe() -> None:
    command = {"find": "coll", "filter": {"ssn": "x"}, "jsonSchema": SCHEMA, "isRemoteSchema": True}
    reply = bson.decode(mark_command("db", bson.encode(command)), codec_options=DECODE)
    same(reply["result"], {"find": "coll", "filter": {"ssn": {"$eq": m("x")}}})
    hello = bson.decode(mark_command("db", bson.encode({"isMaster": 1})))
    assert hello["iscryptd"] is True and hello["maxWireVersion"] == MAX_WIRE_VERSION
    with pytest.raises(QueryAnalysisError, match="not valid BSON"):
        mark_command("db", b"\x05\x00\x00")


def test_other_decodings_of_the_command_are_accepted() -> None:
    """Key ids decoded as uuid.UUID, raw BSON documents, SON: all analysed the same."""
    key = uuid.UUID(bytes=bytes(K1))
    spec = {"keyId": [key], "bsonType": "string", "algorithm": DETERMINISTIC}
    schema = {"bsonType": "object", "properties": {"ssn": {"encrypt": spec}}}
    command = {"find": "coll", "filter": {"ssn": "x"}, "jsonSchema": schema, "isRemoteSchema": True}
    expected = {"find": "coll", "filter": {"ssn": {"$eq": m("x")}}}
    same(analyze(command)["result"], expected)
    raw = RawBSONDocument(bson.encode(command, codec_options=ENCODE))
    same(analyze(raw)["result"], expected)
    same(analyze(SON(command))["result"], expected)


# -- schemas ------------------------------------------------------------------------------------


def test_encrypt_metadata_is_inherited_and_encrypt_wins() -> None:
    schema = {
        "bsonType": "object",
        "encryptMetadata": {"keyId": [K2], "algorithm": DETERMINISTIC},
        "properties": {
            "a": {"encrypt": {"bsonType": "string"}},
            "b": {"encrypt": {"bsonType": "string", "keyId": [K3]}},
            "c": {
                "bsonType": "object",
                "encryptMetadata": {"algorithm": RANDOM},
                "properties": {"d": {"encrypt": {}}},
            },
        },
    }
    result = csfle({"insert": "coll", "documents": [{"a": "1", "b": "2", "c": {"d": 3}}]}, schema)
    same(
        result["result"]["documents"],
        [{"a": m("1", key=K2), "b": m("2", key=K3), "c": {"d": m(3, key=K2, algorithm=2)}}],
    )


def test_pattern_and_additional_properties() -> None:
    schema = {
        "bsonType": "object",
        "properties": {"plain": {"bsonType": "string"}, "_id": {"bsonType": "int"}},
        "patternProperties": {"^enc_": encrypt()},
        "additionalProperties": encrypt("int", RANDOM, K2),
    }
    document = {"plain": "p", "enc_a": "x", "other": 5}
    result = csfle({"insert": "coll", "documents": [document]}, schema)["result"]
    same(result["documents"], [{"plain": "p", "enc_a": m("x"), "other": m(5, key=K2, algorithm=2)}])
    found = csfle({"find": "coll", "filter": {"enc_b": "y"}}, schema)["result"]
    same(found["filter"], {"enc_b": {"$eq": m("y")}})


@pytest.mark.requirement("CSE-AUTO-11")
def test_local_schema_may_only_use_encryption_keywords() -> None:
    with pytest.raises(QueryAnalysisError, match="'required' is only allowed with a remote schema"):
        csfle({"find": "coll"}, {"bsonType": "object", "required": ["a"]}, remote=False)
    assert csfle({"find": "coll"}, {"bsonType": "object", "required": ["a"]}, remote=True)


# -- find-like filters --------------------------------------------------------------------------


def test_filter_is_normalized_like_mongocryptd() -> None:
    result = csfle(
        {
            "find": "coll",
            "filter": {
                "ssn": "a",
                "x": {"$gt": 1, "$lt": 5},
                "$or": [{"age": 5}, {"name.first": {"$in": ["b", "a", "a"]}}],
                "y": {"$ne": 1},
                "z": {"$nin": [2, 1]},
                "w": {"$exists": False},
                "r": Regex("^a", "i"),
            },
        }
    )["result"]
    same(
        result["filter"],
        {
            "$and": [
                {"ssn": {"$eq": m("a")}},
                {"x": {"$gt": 1}},
                {"x": {"$lt": 5}},
                {
                    "$or": [
                        {"age": {"$eq": m(5, key=K2)}},
                        {"name.first": {"$in": [m("a"), m("b")]}},
                    ]
                },
                {"y": {"$not": {"$eq": 1}}},
                {"z": {"$not": {"$in": [1, 2]}}},
                {"w": {"$not": {"$exists": True}}},
                {"r": Regex("^a", "i")},
            ]
        },
    )


def test_nor_and_nested_logic() -> None:
    result = csfle(
        {"find": "coll", "filter": {"$nor": [{"ssn": "a"}, {"$and": [{"age": 1}, {"x": 2}]}]}}
    )["result"]
    same(
        result["filter"],
        {
            "$nor": [
                {"ssn": {"$eq": m("a")}},
                {"$and": [{"age": {"$eq": m(1, key=K2)}}, {"x": {"$eq": 2}}]},
            ]
        },
    )


def test_single_predicate_and_empty_filter() -> None:
    same(
        csfle({"find": "coll", "filter": {"ssn": {"$eq": "a"}}})["result"]["filter"],
        {"ssn": {"$eq": m("a")}},
    )
    assert csfle({"find": "coll", "filter": {}})["result"]["filter"] == {}
    same(
        csfle({"find": "coll", "filter": {"$and": [{"ssn": "a"}, {"b": 1}]}})["result"]["filter"],
        {"$and": [{"ssn": {"$eq": m("a")}}, {"b": {"$eq": 1}}]},
    )


def test_encrypted_fields_compared_through_their_parent_object() -> None:
    result = csfle({"find": "coll", "filter": {"name": {"first": "f", "last": "l"}}})["result"]
    same(result["filter"], {"name": {"$eq": {"first": m("f"), "last": "l"}}})


def test_ne_nin_and_not_mark_their_values() -> None:
    result = csfle(
        {"find": "coll", "filter": {"ssn": {"$ne": "a"}, "age": {"$not": {"$in": [2, 1]}}}}
    )["result"]
    same(
        result["filter"],
        {
            "$and": [
                {"ssn": {"$not": {"$eq": m("a")}}},
                {"age": {"$not": {"$in": [m(1, key=K2), m(2, key=K2)]}}},
            ]
        },
    )


def test_exists_is_allowed_on_encrypted_fields() -> None:
    result = csfle({"find": "coll", "filter": {"notes": {"$exists": True}}})
    assert result["hasEncryptionPlaceholders"] is False
    assert result["result"]["filter"] == {"notes": {"$exists": True}}


def test_expr_equality_with_a_constant_is_marked() -> None:
    result = csfle(
        {
            "find": "coll",
            "filter": {"$expr": {"$and": [{"$eq": ["$ssn", "a"]}, {"$gt": ["$x", 1]}]}},
        }
    )["result"]
    same(result["filter"], {"$expr": {"$and": [{"$eq": ["$ssn", m("a")]}, {"$gt": ["$x", 1]}]}})


def test_get_field_of_the_current_document_is_a_field_reference() -> None:
    result = csfle({"find": "coll", "filter": {"$expr": {"$eq": [{"$getField": "ssn"}, "a"]}}})[
        "result"
    ]
    same(result["filter"], {"$expr": {"$eq": [{"$getField": "ssn"}, m("a")]}})
    plain = csfle({"find": "coll", "filter": {"$expr": {"$eq": [{"$getField": "ssn.x"}, 1]}}})
    assert plain["hasEncryptionPlaceholders"] is False  # a field literally named "ssn.x"


def test_count_distinct_delete() -> None:
    same(
        csfle({"count": "coll", "query": {"ssn": "a"}})["result"]["query"], {"ssn": {"$eq": m("a")}}
    )
    distinct = csfle({"distinct": "coll", "key": "ssn", "query": {"age": 3}})["result"]
    same(distinct, {"distinct": "coll", "key": "ssn", "query": {"age": {"$eq": m(3, key=K2)}}})
    deleted = csfle(
        {"delete": "coll", "deletes": [{"q": {"ssn": "a"}, "limit": 0}], "ordered": True}
    )["result"]
    same(
        deleted,
        {
            "delete": "coll",
            "ordered": True,
            "deletes": [{"q": {"ssn": {"$eq": m("a")}}, "limit": 0}],
        },
    )


def test_find_projection_and_sort_on_plain_fields() -> None:
    result = csfle(
        {"find": "coll", "projection": {"ssn": 1, "eq": {"$eq": ["$ssn", "x"]}}, "sort": {"b": 1}}
    )["result"]
    same(result["projection"], {"ssn": 1, "eq": {"$eq": ["$ssn", m("x")]}})


# -- writes ---------------------------------------------------------------------------------------


def test_insert_marks_nested_random_and_pointer_keyed_fields() -> None:
    document = {
        "_id": 1,
        "ssn": "a",
        "notes": [1, {"x": 2}],
        "keyName": "alt",
        "secret": "s",
        "name": {"first": "f", "last": "l"},
        "other": {"ssn": "not encrypted here"},
    }
    result = csfle({"insert": "coll", "documents": [document], "ordered": True})["result"]
    same(
        result,
        {
            "insert": "coll",
            "ordered": True,
            "documents": [
                {
                    "_id": 1,
                    "ssn": m("a"),
                    "notes": m([1, {"x": 2}], algorithm=2),
                    "keyName": "alt",
                    "secret": m("s", algorithm=2, alt="alt"),
                    "name": {"first": m("f"), "last": "l"},
                    "other": {"ssn": "not encrypted here"},
                }
            ],
        },
    )


def test_javascript_code_is_its_own_type() -> None:
    schema = {"bsonType": "object", "properties": {"js": encrypt("javascript")}}
    result = csfle({"insert": "coll", "documents": [{"js": Code("x = 1")}]}, schema)["result"]
    same(result["documents"], [{"js": m(Code("x = 1"))}])
    with pytest.raises(QueryAnalysisError, match=r"type string because .* \[ javascript \]"):
        csfle({"insert": "coll", "documents": [{"js": "x = 1"}]}, schema)


def test_update_modifiers_replacements_and_upserts() -> None:
    result = csfle(
        {
            "update": "coll",
            "updates": [
                {
                    "q": {"ssn": "a"},
                    "u": {"$set": {"ssn": "b", "name": {"first": "c"}}, "$unset": {"notes": ""}},
                    "multi": True,
                },
                {"q": {"x": 1}, "u": {"ssn": "d", "x": 1}, "upsert": True},
                {"q": {}, "u": {"$rename": {"a": "b"}, "$inc": {"n": 1}, "$push": {"l": 1}}},
            ],
        }
    )["result"]
    same(
        result["updates"],
        [
            {
                "q": {"ssn": {"$eq": m("a")}},
                "u": {"$set": {"ssn": m("b"), "name": {"first": m("c")}}, "$unset": {"notes": ""}},
                "multi": True,
            },
            {"q": {"x": {"$eq": 1}}, "u": {"ssn": m("d"), "x": 1}, "upsert": True},
            {"q": {}, "u": {"$rename": {"a": "b"}, "$inc": {"n": 1}, "$push": {"l": 1}}},
        ],
    )


def test_rename_between_fields_with_the_same_metadata() -> None:
    schema = {"bsonType": "object", "properties": {"a": encrypt(), "b": encrypt()}}
    reply = csfle({"update": "coll", "updates": [{"q": {}, "u": {"$rename": {"a": "b"}}}]}, schema)
    assert reply["result"]["updates"][0]["u"] == {"$rename": {"a": "b"}}


def test_pipeline_update_of_plain_fields() -> None:
    result = csfle(
        {
            "update": "coll",
            "updates": [
                {"q": {}, "u": [{"$set": {"total": {"$add": ["$a", 1]}}}, {"$unset": "z"}]}
            ],
        }
    )["result"]
    assert result["updates"][0]["u"] == [{"$set": {"total": {"$add": ["$a", 1]}}}, {"$unset": "z"}]


def test_find_and_modify() -> None:
    result = csfle(
        {
            "findAndModify": "coll",
            "query": {"ssn": "a"},
            "update": {"$set": {"age": 4}},
            "new": True,
            "fields": {"ssn": 1},
            "sort": {"x": -1},
        }
    )["result"]
    same(
        result,
        {
            "findAndModify": "coll",
            "query": {"ssn": {"$eq": m("a")}},
            "update": {"$set": {"age": m(4, key=K2)}},
            "new": True,
            "fields": {"ssn": 1},
            "sort": {"x": -1},
        },
    )
    removed = csfle({"findAndModify": "coll", "query": {"ssn": "a"}, "remove": True})["result"]
    same(removed["query"], {"ssn": {"$eq": m("a")}})


# -- aggregation ----------------------------------------------------------------------------------


def test_aggregate_marks_match_as_mongocryptd_and_tracks_the_schema() -> None:
    """A single-schema $match is written back as mongocryptd serialises it
    (``{f: {$eq: <marking>}}``, several predicates under ``$and``), not in the user's shape, as
    the spec's count.json expects of the aggregate countDocuments sends."""
    result = csfle(
        {
            "aggregate": "coll",
            "pipeline": [
                {"$match": {"ssn": "a", "x": {"$gt": 1}}},
                {"$addFields": {"ssn": "now plain", "flag": {"$in": ["$age", [1, 2]]}}},
                {"$match": {"ssn": "now plain"}},
                {"$project": {"age": 1, "flag": 1}},
                {"$group": {"_id": "$age", "n": {"$sum": 1}, "all": {"$push": "$flag"}}},
                {"$sort": {"n": -1}},
                {"$limit": 3},
            ],
            "cursor": {},
        }
    )["result"]
    same(
        result["pipeline"],
        [
            {"$match": {"$and": [{"ssn": {"$eq": m("a")}}, {"x": {"$gt": 1}}]}},
            {
                "$addFields": {
                    "ssn": "now plain",
                    "flag": {"$in": ["$age", [m(1, key=K2), m(2, key=K2)]]},
                }
            },
            {"$match": {"ssn": {"$eq": "now plain"}}},
            {"$project": {"age": 1, "flag": 1}},
            {"$group": {"_id": "$age", "n": {"$sum": 1}, "all": {"$push": "$flag"}}},
            {"$sort": {"n": -1}},
            {"$limit": 3},
        ],
    )


def test_group_key_keeps_its_encryption_for_later_stages() -> None:
    result = csfle(
        {
            "aggregate": "coll",
            "pipeline": [{"$group": {"_id": "$ssn"}}, {"$match": {"_id": "a"}}],
            "cursor": {},
        }
    )["result"]
    same(result["pipeline"][1], {"$match": {"_id": {"$eq": m("a")}}})


@pytest.mark.parametrize(
    "key", ["$ssn", "$name.first", {"$toLower": "$name.last"}, "$name.last", "$nosuchfield"]
)
def test_sort_by_count_is_accepted_exactly_when_its_group_is(key: Any) -> None:
    """The server expands ``{$sortByCount: k}`` into ``{$group: {_id: k, count: {$sum: 1}}}``
    and ``{$sort: {count: -1}}`` when it parses the pipeline: the analyzer accepts it when it
    accepts that ``$group`` (a deterministic field as the key included) and answers with the
    expansion, as mongocryptd does."""
    group = csfle(
        {"aggregate": "coll", "pipeline": [{"$group": {"_id": key, "count": {"$sum": 1}}}]}
    )
    grouped = group["result"]["pipeline"]
    by_count = csfle(
        {"aggregate": "coll", "pipeline": [{"$sortByCount": key}, {"$match": {"_id": "a"}}]}
    )["result"]["pipeline"]
    same(by_count[:2], [*grouped, {"$sort": {"count": -1}}])
    # the group key keeps its encryption: a later $match on it is marked when it is encrypted
    encrypted_key = key in ("$ssn", "$name.first")
    same(by_count[2], {"$match": {"_id": {"$eq": m("a") if encrypted_key else "a"}}})


@pytest.mark.parametrize("key", ["$notes", "$secret", "$name"])
def test_sort_by_count_is_refused_exactly_when_its_group_is(key: str) -> None:
    """A random field, or an object holding encrypted fields, is refused as a key of both."""
    for stage in ({"$group": {"_id": key}}, {"$sortByCount": key}):
        with pytest.raises(QueryAnalysisError, match="Cannot group on field") as info:
            csfle({"aggregate": "coll", "pipeline": [stage]})
        assert info.value.code == 51222


def test_fields_of_unknown_encryption_cannot_be_used() -> None:
    with pytest.raises(QueryAnalysisError, match="'copy'"):
        csfle(
            {
                "aggregate": "coll",
                "pipeline": [{"$addFields": {"copy": "$ssn"}}, {"$match": {"copy": "a"}}],
                "cursor": {},
            }
        )


def test_self_lookup_with_plain_join_fields() -> None:
    command = {
        "aggregate": "coll",
        "pipeline": [
            {"$lookup": {"from": "coll", "localField": "a", "foreignField": "b", "as": "j"}}
        ],
        "cursor": {},
    }
    assert csfle(command)["result"] == command


def test_multiple_schemas_normalize_match() -> None:
    command = {
        "aggregate": "c1",
        "pipeline": [
            {"$lookup": {"from": "c2", "localField": "k", "foreignField": "k", "as": "j"}},
            {"$match": {"ssn": "a"}},
        ],
        "cursor": {},
        "csfleEncryptionSchemas": {
            "db.c1": {"jsonSchema": SCHEMA, "isRemoteSchema": True},
            "db.c2": {"jsonSchema": {}, "isRemoteSchema": False},
        },
    }
    same(analyze(command)["result"]["pipeline"][1], {"$match": {"ssn": {"$eq": m("a")}}})


def test_lookup_sub_pipeline_uses_the_foreign_schema() -> None:
    other = {"bsonType": "object", "properties": {"code": encrypt(key=K2)}}
    command: dict[str, Any] = {
        "aggregate": "c1",
        "$db": "db",
        "cursor": {},
        "pipeline": [
            {"$lookup": {"from": "c2", "as": "j", "pipeline": [{"$match": {"code": "z"}}]}},
            {"$match": {"j.plain": 1}},
        ],
        "csfleEncryptionSchemas": {
            "db.c1": {"jsonSchema": SCHEMA, "isRemoteSchema": True},
            "db.c2": {"jsonSchema": other, "isRemoteSchema": True},
        },
    }
    pipeline = analyze(command)["result"]["pipeline"]
    same(
        pipeline,
        [
            {
                "$lookup": {
                    "from": "c2",
                    "as": "j",
                    "pipeline": [{"$match": {"code": {"$eq": m("z", key=K2)}}}],
                }
            },
            {"$match": {"j.plain": {"$eq": 1}}},
        ],
    )
    command["pipeline"].append({"$match": {"j.code": "z"}})
    with pytest.raises(QueryAnalysisError, match=r"'j\.code'"):
        analyze(command)


def test_explain_wraps_the_marked_command() -> None:
    result = csfle({"explain": {"find": "coll", "filter": {"ssn": "a"}, "$db": "db"}, "$db": "db"})
    same(
        result["result"],
        {
            "explain": {"find": "coll", "filter": {"ssn": {"$eq": m("a")}}},
            "verbosity": "allPlansExecution",
        },
    )
    kept = csfle({"explain": {"count": "coll"}, "verbosity": "queryPlanner"})["result"]
    assert kept == {"explain": {"count": "coll"}, "verbosity": "queryPlanner"}


def test_create_collmod_and_create_indexes_pass_when_nothing_is_compared() -> None:
    for command in (
        {"create": "coll", "validator": {"plain": "x"}},
        {"create": "coll", "validator": {"$jsonSchema": SCHEMA}},
        {"collMod": "coll", "validator": {"$or": [{"a": 1}, {"ssn": {"$exists": True}}]}},
        {
            "createIndexes": "coll",
            "indexes": [{"key": {"a": 1}, "partialFilterExpression": {"a": 1}}],
        },
    ):
        reply = csfle(command)
        assert reply["result"] == command and reply["hasEncryptionPlaceholders"] is False


def _shape(value: Any) -> Any:
    """``value`` with every BinData subtype 6 (marking or ciphertext) replaced by its kind."""
    if isinstance(value, Binary) and value.subtype == 6:
        return "<encrypted>"
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def test_count_documents_match_has_the_form_count_json_expects() -> None:
    """The $match of the aggregate pymongo's countDocuments sends, as the spec's count.json
    expects it of mongocryptd: ``{encrypted_string: {$eq: <encrypted>}}`` (the unified case
    itself needs a server that stores count.json's encrypt-keyword validator)."""
    spec = json_util.loads((DATA / "spec-unified" / "count.json").read_text())
    schema = spec["initialData"][0]["createOptions"]["validator"]["$jsonSchema"]
    (expected,) = [
        event["commandStartedEvent"]["command"]
        for event in spec["tests"][0]["expectEvents"][0]["events"]
        if event["commandStartedEvent"]["commandName"] == "aggregate"
    ]
    sent = {
        "aggregate": "default",
        "pipeline": [
            {"$match": spec["tests"][0]["operations"][0]["arguments"]["filter"]},
            {"$group": {"_id": 1, "n": {"$sum": 1}}},
        ],
        "cursor": {},
    }
    marked = csfle(sent, schema)["result"]["pipeline"]
    assert _shape(marked[0]) == _shape(expected["pipeline"][0])
