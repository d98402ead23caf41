"""Malformed commands (seeded random mutations of valid and refused ones) only ever end in a
reply or a QueryAnalysisError, and no error quotes a value of the command."""

from __future__ import annotations

import copy
import datetime
import random
from collections.abc import Iterator
from typing import Any

import pytest
from bson.binary import Binary
from bson.int64 import Int64
from bson.regex import Regex
from test_analysis_csfle import SCHEMA
from test_analysis_qe import info
from test_analysis_refusals import RULES

from mongocrypt.analysis import QueryAnalysisError, analyze

SECRET = "fuzz-plaintext-9f3c"
VALUES: list[Any] = [
    None,
    1,
    0,
    1.5,
    float("nan"),
    "x",
    SECRET,
    "$x",
    "$$ROOT",
    "$ssn",
    [],
    [1],
    [None],
    {},
    {"$eq": SECRET},
    {"$gt": 1},
    {"a": 1},
    True,
    Binary(b"\x00abc", 6),
    Binary(b"1" * 16, 4),
    Regex("a"),
    Int64(5),
    datetime.datetime(2020, 1, 1),
    {"$expr": 1},
    {"$literal": SECRET},
    [{"$match": {}}],
    {"$in": 1},
]
KEYS = [
    "$gt",
    "$in",
    "$not",
    "$elemMatch",
    "$expr",
    "$and",
    "$or",
    "$eq",
    "$ne",
    "$nin",
    "$exists",
    "$regex",
    "$set",
    "$unset",
    "$rename",
    "$push",
    "$match",
    "$project",
    "$group",
    "$lookup",
    "ssn",
    "name.first",
    "age",
    "$$ROOT",
    "$literal",
    "$getField",
    "_id",
    "notes",
    "$cond",
    "__safeContent__",
    "x.$",
    "ssn.x",
]
CSFLE = {"jsonSchema": SCHEMA, "isRemoteSchema": True}
BASE: list[dict[str, Any]] = [command for _, command, _, _ in RULES] + [
    {
        "aggregate": "coll",
        "cursor": {},
        **CSFLE,
        "pipeline": [
            {"$match": {"ssn": SECRET, "$or": [{"age": 1}, {"name.first": {"$in": [SECRET]}}]}},
            {"$addFields": {"f": {"$cond": [{"$eq": ["$ssn", SECRET]}, 1, 0]}}},
            {"$project": {"ssn": 1, "f": 1, "name": 1}},
            {"$lookup": {"from": "coll", "localField": "a", "foreignField": "b", "as": "j"}},
            {"$group": {"_id": "$ssn", "n": {"$sum": 1}, "p": {"$push": "$name"}}},
            {"$match": {"_id": SECRET}},
        ],
    },
    {
        "update": "coll",
        **CSFLE,
        "updates": [
            {"q": {"ssn": SECRET}, "u": {"$set": {"ssn": SECRET, "name": {"first": SECRET}}}},
            {"q": {}, "u": [{"$set": {"a": {"$add": ["$b", 1]}}}]},
            {"q": {}, "u": {"ssn": SECRET, "y": [1]}, "upsert": True},
        ],
    },
    {"insert": "coll", "documents": [{"ssn": SECRET, "name": {"first": SECRET}}], **CSFLE},
    {"find": "coll", "filter": {"ssn": SECRET, "age": {"$in": [1]}}, **CSFLE},
    {
        "findAndModify": "coll",
        "query": {"ssn": SECRET},
        "update": {"$set": {"ssn": SECRET}},
        "fields": {"x": {"$eq": ["$ssn", SECRET]}},
        **CSFLE,
    },
    {"insert": "coll", "documents": [{"ssn": SECRET, "age": 1}], "encryptionInformation": info()},
    {
        "find": "coll",
        "filter": {"ssn": SECRET, "age": {"$gte": 1, "$lt": 5}},
        "encryptionInformation": info(),
    },
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


SCHEMA_FIELDS = ("jsonSchema", "encryptionInformation", "csfleEncryptionSchemas")


def mutate(command: dict[str, Any], rng: random.Random, *, schema: bool) -> dict[str, Any]:
    """``command`` with one to three values replaced or keys renamed; ``schema``: in the schema
    fields too (otherwise only in the command itself)."""
    command = copy.deepcopy(command)
    for _ in range(rng.randint(1, 3)):
        candidates = [
            p
            for p in paths(command)
            if schema or not any(part in SCHEMA_FIELDS or part == "nsInfo" for part in p)
        ]
        if not candidates:
            break
        where = rng.choice(candidates)
        parent: Any = command
        for step in where[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.3:
            parent[rng.choice(KEYS)] = parent.pop(where[-1])
        else:
            parent[where[-1]] = copy.deepcopy(rng.choice(VALUES))
    return command


@pytest.mark.parametrize("seed", range(4))
def test_mutated_commands_are_answered_or_refused(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(1500):
        schema = rng.random() < 0.3
        base = rng.choice(BASE)
        command = mutate(base, rng, schema=schema)
        # Errors quote names (collections, fields, schema keywords) but never a value: the
        # secret may only appear when the mutation put it where a name goes.
        moved = repr(command).count(SECRET) > repr(base).count(SECRET)
        try:
            reply = analyze(command)
        except QueryAnalysisError as exc:
            if not (schema or moved):
                assert SECRET not in str(exc)
            continue
        assert set(reply) == {
            "hasEncryptionPlaceholders",
            "schemaRequiresEncryption",
            "result",
            "ok",
        }
