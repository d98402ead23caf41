"""BSON types of decoded Python values: their server names, and the server's ordering of values."""

from __future__ import annotations

import datetime
import decimal
import functools
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from mongocrypt.analysis._errors import refuse

__all__ = [
    "BSON_TYPE_NAMES",
    "ENCRYPTED_BINARY",
    "bson_type",
    "compare",
    "date_millis",
    "is_encrypted_binary",
    "is_operator",
    "is_regex",
    "sort_unique",
]

#: Every type name the server's ``typeName`` produces (and ``bsonType`` accepts).
BSON_TYPE_NAMES = frozenset(
    {
        "double",
        "string",
        "object",
        "array",
        "binData",
        "undefined",
        "objectId",
        "bool",
        "date",
        "null",
        "regex",
        "dbPointer",
        "javascript",
        "symbol",
        "javascriptWithScope",
        "int",
        "timestamp",
        "long",
        "decimal",
        "minKey",
        "maxKey",
    }
)
#: How mongocryptd names a BinData subtype 6 value in "Cannot encrypt element of type" errors.
ENCRYPTED_BINARY = "encrypted binary data"
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


def bson_type(value: Any) -> str:
    """The server's name for the BSON type ``value`` encodes to.

    pymongo decodes symbol as str, undefined as None and dbPointer as DBRef, so those three are
    reported as string, null and object.

    :param value: a decoded BSON value.
    :raises QueryAnalysisError: for a Python value BSON cannot hold.
    """
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        if value in _INT32:
            return "int"
        if value in _INT64:
            return "long"
        refuse("Integer value does not fit in a 64-bit BSON integer")
    if isinstance(value, float):
        return "double"
    if isinstance(value, Code):  # a str subclass
        return "javascript" if value.scope is None else "javascriptWithScope"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Decimal128):
        return "decimal"
    if isinstance(value, (Binary, bytes, uuid.UUID)):
        return "binData"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (datetime.datetime, DatetimeMS)):
        return "date"
    if value is None:
        return "null"
    if isinstance(value, (Regex, re.Pattern)):
        return "regex"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, MinKey):
        return "minKey"
    if isinstance(value, MaxKey):
        return "maxKey"
    if isinstance(value, (Mapping, DBRef)):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    refuse(f"Cannot analyze a value of Python type {type(value).__name__}")


def is_encrypted_binary(value: Any) -> bool:
    """Whether ``value`` is BinData subtype 6 (a marking or a ciphertext)."""
    return isinstance(value, Binary) and value.subtype == 6


def is_regex(value: Any) -> bool:
    return isinstance(value, (Regex, re.Pattern))


def date_millis(value: datetime.datetime | DatetimeMS) -> int:
    """Milliseconds since the epoch of a decoded BSON date."""
    if isinstance(value, DatetimeMS):
        return int(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# -- the server's ordering of values (for $in lists) -------------------------------------------

_CANONICAL = {
    "minKey": 0,
    "null": 5,
    "undefined": 5,
    "int": 10,
    "long": 10,
    "double": 10,
    "decimal": 10,
    "string": 15,
    "symbol": 15,
    "object": 20,
    "array": 25,
    "binData": 30,
    "objectId": 35,
    "bool": 40,
    "date": 45,
    "timestamp": 47,
    "regex": 50,
    "dbPointer": 55,
    "javascript": 60,
    "javascriptWithScope": 65,
    "maxKey": 100,
}


def _number(value: Any) -> decimal.Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        if math.isnan(value):
            return decimal.Decimal("NaN")
        return decimal.Decimal(value)
    return decimal.Decimal(int(value))


def _compare_numbers(left: Any, right: Any) -> int:
    a, b = _number(left), _number(right)
    if a.is_nan() or b.is_nan():
        return (0 if b.is_nan() else -1) if a.is_nan() else 1  # NaN sorts first
    return (a > b) - (a < b)


def _binary_parts(value: Any) -> tuple[int, int, bytes]:
    if isinstance(value, uuid.UUID):
        return (16, 4, value.bytes)
    subtype = value.subtype if isinstance(value, Binary) else 0
    return (len(value), subtype, bytes(value))


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def compare(left: Any, right: Any) -> int:
    """The server's (simple collation) order of two BSON values: -1, 0 or 1."""
    lt, rt = bson_type(left), bson_type(right)
    if _CANONICAL[lt] != _CANONICAL[rt]:
        return _cmp(_CANONICAL[lt], _CANONICAL[rt])
    if lt in ("int", "long", "double", "decimal"):
        return _compare_numbers(left, right)
    if lt == "string":
        return _cmp(left.encode(), right.encode())
    if lt == "object":
        return _compare_documents(_as_mapping(left), _as_mapping(right))
    if lt == "array":
        for a, b in zip(left, right):
            result = compare(a, b)
            if result:
                return result
        return _cmp(len(left), len(right))
    if lt == "binData":
        return _cmp(_binary_parts(left), _binary_parts(right))
    if lt == "objectId":
        return _cmp(left.binary, right.binary)
    if lt == "bool":
        return _cmp(left, right)
    if lt == "date":
        return _cmp(date_millis(left), date_millis(right))
    if lt == "timestamp":
        return _cmp((left.time, left.inc), (right.time, right.inc))
    if lt == "regex":
        return _cmp(_regex_parts(left), _regex_parts(right))
    if lt in ("javascript", "javascriptWithScope"):
        result = _cmp(str(left), str(right))
        if result or lt == "javascript":
            return result
        return _compare_documents(left.scope or {}, right.scope or {})
    return 0  # minKey, maxKey, null


def _as_mapping(value: Any) -> Mapping[str, Any]:
    return value.as_doc() if isinstance(value, DBRef) else value


def _regex_parts(value: Any) -> tuple[str, str]:
    if isinstance(value, Regex):
        return (value.pattern, str(value.flags))
    return (value.pattern, str(value.flags))


def _compare_documents(left: Mapping[str, Any], right: Mapping[str, Any]) -> int:
    for (lk, lv), (rk, rv) in zip(left.items(), right.items()):
        result = _cmp(_CANONICAL[bson_type(lv)], _CANONICAL[bson_type(rv)])
        if result:
            return result
        result = _cmp(lk.encode(), rk.encode()) or compare(lv, rv)
        if result:
            return result
    return _cmp(len(left), len(right))


def sort_unique(values: list[Any]) -> list[Any]:
    """``values`` sorted in the server's order with duplicates removed, as ``$in`` keeps them."""
    ordered = sorted(values, key=functools.cmp_to_key(compare))
    unique: list[Any] = []
    for value in ordered:
        if not unique or compare(unique[-1], value) != 0:
            unique.append(value)
    return unique


def is_operator(value: Mapping[str, Any]) -> bool:
    """Whether ``value`` is an operator document (``{$op: ...}``, in a query, an update or an
    expression) rather than a document of fields: its first key starts with ``$``."""
    first = next(iter(value), None)
    return isinstance(first, str) and first.startswith("$")
