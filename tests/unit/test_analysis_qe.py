"""Queryable Encryption (encryptedFields) analysis: placeholders for every index kind, range
intervals, defaults from encryptedFields, and the per-command shapes."""

from __future__ import annotations

import datetime
import math
import sys
from typing import Any, Optional

import bson
import pytest
from bson.binary import Binary
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from test_analysis_csfle import K1, K2, K3, opened, same

from mongocrypt.analysis import analyze

K4 = Binary(b"\x44" * 16, 4)
K5 = Binary(b"\x55" * 16, 4)

FIELDS: list[dict[str, Any]] = [
    {"path": "ssn", "keyId": K1, "bsonType": "string", "queries": {"queryType": "equality"}},
    {
        "path": "age",
        "keyId": K2,
        "bsonType": "int",
        "queries": {
            "queryType": "range",
            "min": 0,
            "max": 200,
            "sparsity": Int64(1),
            "trimFactor": 1,
            "contention": Int64(4),
        },
    },
    {"path": "info.born", "keyId": K3, "bsonType": "date", "queries": {"queryType": "range"}},
    {"path": "notes", "keyId": K4, "bsonType": "string"},
    {
        "path": "name",
        "keyId": K5,
        "bsonType": "string",
        "queries": {
            "queryType": "substring",
            "contention": Int64(0),
            "strMaxLength": 60,
            "strMinQueryLength": 3,
            "strMaxQueryLength": 30,
            "caseSensitive": False,
            "diacriticSensitive": True,
        },
    },
]


def info(fields: Optional[list[dict[str, Any]]] = None, ns: str = "db.coll") -> dict[str, Any]:
    return {"type": 1, "schema": {ns: {"fields": FIELDS if fields is None else fields}}}


def qe(command: dict[str, Any], fields: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """The analyzer's reply to ``command`` with ``encryptionInformation`` for ``fields``."""
    return analyze({**command, "encryptionInformation": info(fields)})


def p(
    kind: int,
    algorithm: int,
    key: Binary,
    value: Any,
    contention: int,
    sparsity: Optional[int] = None,
) -> Binary:
    """The FLE2 placeholder mongocryptd writes."""
    document: dict[str, Any] = {
        "t": kind,
        "a": algorithm,
        "ki": key,
        "ku": key,
        "v": value,
        "cm": Int64(contention),
    }
    if sparsity is not None:
        document["s"] = Int64(sparsity)
    return Binary(b"\x03" + bson.encode(document), 6)  # type: ignore[no-any-return]  # bson's Binary returns typing.Self, which mypy's Python 3.10 lacks


def age_find(
    payload: int,
    lower: Any,
    upper: Any,
    first: int,
    second: Optional[int] = None,
    edges: bool = True,
) -> Binary:
    spec: dict[str, Any] = {}
    if edges:
        spec["edgesInfo"] = {
            "lowerBound": lower[0],
            "lbIncluded": lower[1],
            "upperBound": upper[0],
            "ubIncluded": upper[1],
            "trimFactor": 1,
            "indexMin": 0,
            "indexMax": 200,
        }
    spec["payloadId"] = payload
    spec["firstOperator"] = first
    if second is not None:
        spec["secondOperator"] = second
    return p(2, 3, K2, spec, 4, 1)


def test_insert_marks_every_index_kind() -> None:
    born = datetime.datetime(1990, 1, 2)
    reply = qe(
        {
            "insert": "coll",
            "documents": [
                {
                    "_id": 1,
                    "ssn": "a",
                    "age": 30,
                    "info": {"born": born},
                    "notes": "n",
                    "name": "Zoë",
                }
            ],
        }
    )
    assert reply["hasEncryptionPlaceholders"] and reply["schemaRequiresEncryption"]
    result = reply["result"]
    assert list(result) == ["insert", "encryptionInformation", "documents"]
    same(
        result["documents"],
        [
            {
                "_id": 1,
                "ssn": p(1, 2, K1, "a", 8),
                "age": p(1, 3, K2, {"v": 30, "min": 0, "max": 200, "trimFactor": 1}, 4, 1),
                "info": {
                    "born": p(
                        1,
                        3,
                        K3,
                        {"v": born, "min": DatetimeMS(-(2**63)), "max": DatetimeMS(2**63 - 1)},
                        8,
                        2,
                    )
                },
                "notes": p(1, 1, K4, "n", 0),
                "name": p(
                    1,
                    4,
                    K5,
                    {
                        "v": "Zoë",
                        "casef": True,
                        "diacf": False,
                        "substr": {"mlen": 60, "ub": 30, "lb": 3},
                    },
                    0,
                ),
            }
        ],
    )


def test_equality_find_and_plain_fields() -> None:
    result = qe({"find": "coll", "filter": {"ssn": "a", "x": 1}})["result"]
    same(result["filter"], {"$and": [{"ssn": {"$eq": p(2, 2, K1, "a", 8)}}, {"x": {"$eq": 1}}]})
    assert result["encryptionInformation"] == info()


def test_equality_in_and_ne() -> None:
    result = qe({"find": "coll", "filter": {"ssn": {"$in": ["b", "a"]}, "x": {"$ne": 1}}})["result"]
    same(
        result["filter"],
        {
            "$and": [
                {"ssn": {"$in": [p(2, 2, K1, "a", 8), p(2, 2, K1, "b", 8)]}},
                {"x": {"$not": {"$eq": 1}}},
            ]
        },
    )


def test_one_sided_range_has_an_open_end() -> None:
    result = qe({"find": "coll", "filter": {"age": {"$gt": 5}}})["result"]
    same(result["filter"], {"age": {"$gt": age_find(0, (5, False), (math.inf, True), 1)}})
    result = qe({"find": "coll", "filter": {"age": {"$lte": 5}}})["result"]
    same(result["filter"], {"age": {"$lte": age_find(0, (-math.inf, True), (5, True), 4)}})


def test_two_sided_range_is_a_placeholder_and_a_stub() -> None:
    result = qe({"find": "coll", "filter": {"age": {"$gte": 18, "$lt": 65}, "ssn": "a"}})["result"]
    same(
        result["filter"],
        {
            "$and": [
                {
                    "$and": [
                        {"age": {"$gte": age_find(0, (18, True), (65, False), 2, 3)}},
                        {"age": {"$lt": age_find(0, None, None, 2, 3, edges=False)}},
                    ]
                },
                {"ssn": {"$eq": p(2, 2, K1, "a", 8)}},
            ]
        },
    )


def test_comparisons_on_one_path_are_intersected() -> None:
    result = qe({"find": "coll", "filter": {"age": {"$gt": 1, "$gte": 3, "$lte": 9, "$lt": 9}}})[
        "result"
    ]
    same(
        result["filter"],
        {
            "$and": [
                {"age": {"$gte": age_find(0, (3, True), (9, False), 2, 3)}},
                {"age": {"$lt": age_find(0, None, None, 2, 3, edges=False)}},
            ]
        },
    )
    empty = qe({"find": "coll", "filter": {"age": {"$gt": 5, "$lt": 5}}})
    assert empty["result"]["filter"] == {"$alwaysFalse": 1}
    assert empty["hasEncryptionPlaceholders"] is False


def test_equality_in_and_ne_on_a_range_field() -> None:
    point = qe({"find": "coll", "filter": {"age": 7}})["result"]["filter"]
    same(
        point,
        {
            "$and": [
                {"age": {"$gte": age_find(0, (7, True), (7, True), 2, 4)}},
                {"age": {"$lte": age_find(0, None, None, 2, 4, edges=False)}},
            ]
        },
    )
    options = qe({"find": "coll", "filter": {"age": {"$in": [9, 7]}}})["result"]["filter"]
    assert list(options) == ["$or"] and len(options["$or"]) == 2
    assert (
        opened(options["$or"][0]["$and"][0]["age"]["$gte"])[2]["v"]["edgesInfo"]["lowerBound"] == 7
    )
    negated = qe({"find": "coll", "filter": {"age": {"$ne": 7}}})["result"]["filter"]
    assert list(negated) == ["$nor"] and list(negated["$nor"][0]) == ["$and"]


def test_range_bounds_take_the_index_type() -> None:
    fields = [{"path": "big", "keyId": K1, "bsonType": "long", "queries": {"queryType": "range"}}]
    result = qe({"find": "coll", "filter": {"big": {"$gt": 5}}}, fields)["result"]
    edges = opened(result["filter"]["big"]["$gt"])[2]["v"]["edgesInfo"]
    assert isinstance(edges["lowerBound"], Int64)
    assert edges["indexMin"] == Int64(-(2**63)) and isinstance(edges["indexMax"], Int64)
    assert edges["trimFactor"] == 6


def test_range_defaults_from_encrypted_fields() -> None:
    fields = [
        {"path": "i", "keyId": K1, "bsonType": "int", "queries": {"queryType": "range"}},
        {
            "path": "small",
            "keyId": K2,
            "bsonType": "int",
            "queries": {"queryType": "range", "min": 0, "max": 7},
        },
        {"path": "d", "keyId": K3, "bsonType": "double", "queries": {"queryType": "range"}},
        {"path": "m", "keyId": K4, "bsonType": "decimal", "queries": {"queryType": "range"}},
    ]
    result = qe(
        {"insert": "coll", "documents": [{"i": 1, "small": 2, "d": 1.5, "m": Decimal128("2")}]},
        fields,
    )["result"]["documents"][0]
    i, small, d, m = (opened(result[k])[2] for k in ("i", "small", "d", "m"))
    assert (i["cm"], i["s"]) == (8, 2)
    assert i["v"] == {"v": 1, "min": -(2**31), "max": 2**31 - 1}
    assert small["v"] == {"v": 2, "min": 0, "max": 7}
    assert d["v"] == {"v": 1.5, "min": -sys.float_info.max, "max": sys.float_info.max}
    assert m["v"]["min"] == Decimal128("-9.999999999999999999999999999999999E+6144")
    found = qe({"find": "coll", "filter": {"small": {"$gt": 2}}}, fields)["result"]["filter"]
    assert opened(found["small"]["$gt"])[2]["v"]["edgesInfo"]["trimFactor"] == 2  # 3 bits - 1


def test_double_precision_range() -> None:
    fields = [
        {
            "path": "d",
            "keyId": K1,
            "bsonType": "double",
            "queries": {"queryType": "range", "min": 0.0, "max": 100.0, "precision": 2},
        }
    ]
    result = qe({"find": "coll", "filter": {"d": {"$gt": 1.5}}}, fields)["result"]["filter"]
    edges = opened(result["d"]["$gt"])[2]["v"]["edgesInfo"]
    assert list(edges) == [
        "lowerBound",
        "lbIncluded",
        "upperBound",
        "ubIncluded",
        "precision",
        "trimFactor",
        "indexMin",
        "indexMax",
    ]
    assert (edges["precision"], edges["indexMin"], edges["indexMax"]) == (2, 0.0, 100.0)


def test_update_find_and_modify_delete() -> None:
    updated = qe(
        {
            "update": "coll",
            "updates": [{"q": {"ssn": "a"}, "u": {"$set": {"notes": "x"}, "$unset": {"age": ""}}}],
        }
    )["result"]
    assert list(updated) == ["update", "encryptionInformation", "updates"]
    same(
        updated["updates"],
        [
            {
                "q": {"ssn": {"$eq": p(2, 2, K1, "a", 8)}},
                "u": {"$set": {"notes": p(1, 1, K4, "x", 0)}, "$unset": {"age": ""}},
            }
        ],
    )
    modified = qe(
        {
            "findAndModify": "coll",
            "query": {"ssn": "a"},
            "update": {"ssn": "b", "x": 1},
            "upsert": True,
        }
    )["result"]
    same(modified["update"], {"ssn": p(1, 2, K1, "b", 8), "x": 1})
    deleted = qe({"delete": "coll", "deletes": [{"q": {"ssn": "a"}, "limit": 1}]})["result"]
    same(deleted["deletes"], [{"q": {"ssn": {"$eq": p(2, 2, K1, "a", 8)}}, "limit": 1}])


def test_aggregate_match_in_place_and_lookup_in_server_order() -> None:
    result = qe(
        {
            "aggregate": "coll",
            "pipeline": [
                {"$match": {"ssn": "a", "x": 1}},
                {"$lookup": {"from": "coll", "localField": "k", "foreignField": "k", "as": "j"}},
                {"$match": {"$expr": {"$eq": ["$ssn", "b"]}}},
            ],
            "cursor": {},
        }
    )["result"]
    same(
        result["pipeline"],
        [
            {"$match": {"ssn": p(2, 2, K1, "a", 8), "x": 1}},
            {"$lookup": {"from": "coll", "as": "j", "localField": "k", "foreignField": "k"}},
            {"$match": {"$expr": {"$eq": ["$ssn", p(2, 2, K1, "b", 8)]}}},
        ],
    )


def test_text_search_in_expr() -> None:
    result = qe(
        {
            "aggregate": "coll",
            "pipeline": [
                {"$match": {"$expr": {"$encStrContains": {"input": "$name", "substring": "abc"}}}}
            ],
            "cursor": {},
        }
    )["result"]
    same(
        result["pipeline"][0]["$match"],
        {
            "$expr": {
                "$encStrContains": {
                    "input": "$name",
                    "substring": p(
                        2,
                        4,
                        K5,
                        {
                            "v": "abc",
                            "casef": True,
                            "diacf": False,
                            "substr": {"mlen": 60, "ub": 30, "lb": 3},
                        },
                        0,
                    ),
                }
            }
        },
    )


def test_explain_carries_encryption_information_inside() -> None:
    result = qe(
        {"explain": {"find": "coll", "filter": {"ssn": "a"}}, "verbosity": "executionStats"}
    )
    explained = result["result"]
    assert list(explained) == ["explain", "verbosity"]
    assert list(explained["explain"]) == ["find", "filter", "encryptionInformation"]
    assert explained["verbosity"] == "executionStats"


def test_bulk_write_update_and_delete() -> None:
    command = {
        "bulkWrite": 1,
        "ops": [{"update": 0, "filter": {"ssn": "a"}, "updateMods": {"$set": {"ssn": "b"}}}],
        "nsInfo": [{"ns": "db.coll", "encryptionInformation": info()}],
        "$db": "admin",
    }
    reply = analyze(command)
    same(
        reply["result"]["ops"],
        [
            {
                "update": 0,
                "filter": {"ssn": {"$eq": p(2, 2, K1, "a", 8)}},
                "updateMods": {"$set": {"ssn": p(1, 2, K1, "b", 8)}},
            }
        ],
    )
    assert "$db" not in reply["result"]
    command["ops"] = [{"delete": 0, "filter": {"ssn": "a"}}]
    assert analyze(command)["hasEncryptionPlaceholders"] is True


def test_create_drops_encryption_information() -> None:
    reply = qe({"create": "coll", "encryptedFields": {"fields": FIELDS}})
    assert reply["result"] == {"create": "coll", "encryptedFields": {"fields": FIELDS}}
    assert reply["schemaRequiresEncryption"] is True


def test_empty_encrypted_fields_need_no_encryption() -> None:
    command = {"find": "coll", "filter": {"a": 1}, "encryptionInformation": info([])}
    reply = analyze(command)
    assert reply["schemaRequiresEncryption"] is False and reply["result"] == command


@pytest.mark.parametrize("value", [DatetimeMS(5), datetime.datetime(1970, 1, 1, 0, 0, 0, 5000)])
def test_dates_of_both_decoded_forms(value: Any) -> None:
    result = qe({"find": "coll", "filter": {"info.born": {"$gte": value}}})["result"]
    edges = opened(result["filter"]["info.born"]["$gte"])[2]["v"]["edgesInfo"]
    assert edges["lowerBound"] == datetime.datetime(1970, 1, 1, 0, 0, 0, 5000)
