"""The in-memory I/O: its key-vault filter matches what libmongocrypt asks for."""

from __future__ import annotations

import uuid
from typing import Any

import bson
import pytest

from mongocrypt import MongoCryptError
from mongocrypt.io.memory import InMemoryIO, key_filter_matches

KEY = {"_id": bson.Binary.from_uuid(uuid.UUID(int=1)), "keyAltNames": ["a", "b"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"$or": [{"_id": {"$in": [KEY["_id"]]}}, {"keyAltNames": {"$in": []}}]}, True),
        ({"$or": [{"_id": {"$in": []}}, {"keyAltNames": {"$in": ["b"]}}]}, True),
        ({"$or": [{"_id": {"$in": []}}, {"keyAltNames": {"$in": ["c"]}}]}, False),
        ({"$and": [{"keyAltNames": "a"}, {"_id": KEY["_id"]}]}, True),
        ({}, True),
    ],
)
def test_key_filter(query: dict[str, Any], expected: bool) -> None:
    assert key_filter_matches(query, KEY) is expected


def test_unsupported_operator_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unsupported key-vault filter operator"):
        key_filter_matches({"keyAltNames": {"$regex": "a"}}, KEY)


def test_missing_responders_fail_loudly() -> None:
    io = InMemoryIO()
    with pytest.raises(MongoCryptError, match="no marker"):
        io.mark_command("db", bson.encode({"find": "c"}))
