"""The unified format's "Evaluating Matches" rules.

Both sides are first normalized through BSON, so whatever produced a value (a driver model, a
``RawBSONDocument``, Extended JSON) compares by its BSON type. Supported special operators:
``$$type``, ``$$exists``, ``$$unsetOrMatches``, ``$$lte``, ``$$matchAsDocument`` and
``$$matchAsRoot``; any other ``$$`` operator raises :class:`UnsupportedFeature`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any, Callable

import bson
from bson import json_util
from bson.binary import Binary, UuidRepresentation
from bson.code import Code
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

__all__ = ["UnsupportedFeature", "assert_matches", "is_placeholder", "normalize"]

#: UUIDs a driver hands over become subtype 4 on the way in ...
_ENCODE: CodecOptions[Any] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
#: ... and subtype 4 stays Binary on the way out (as Extended JSON decodes it); dates are naive UTC.
_DECODE: CodecOptions[Any] = CodecOptions()


class UnsupportedFeature(Exception):
    """The test uses a part of the unified format this runner does not implement."""


def normalize(value: Any) -> Any:
    """``value`` as BSON would give it back: one Python type per BSON type."""
    document = bson.encode({"v": value}, codec_options=_ENCODE)
    return bson.decode(document, codec_options=_DECODE)["v"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal128)) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "double": lambda v: isinstance(v, float),
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list),
    "binData": lambda v: isinstance(v, (bytes, Binary)),
    "objectId": lambda v: isinstance(v, ObjectId),
    "bool": lambda v: isinstance(v, bool),
    "date": lambda v: isinstance(v, datetime.datetime),
    "null": lambda v: v is None,
    "regex": lambda v: isinstance(v, (Regex, re.Pattern)),
    "javascript": lambda v: isinstance(v, Code) and v.scope is None,
    "javascriptWithScope": lambda v: isinstance(v, Code) and v.scope is not None,
    "int": lambda v: type(v) is int,
    "timestamp": lambda v: isinstance(v, Timestamp),
    "long": lambda v: isinstance(v, Int64),
    "decimal": lambda v: isinstance(v, Decimal128),
    "minKey": lambda v: isinstance(v, MinKey),
    "maxKey": lambda v: isinstance(v, MaxKey),
    "number": _is_number,
}


def _operator(value: Any) -> str | None:
    """The special operator ``value`` is (a document whose only key starts with ``$$``)."""
    if isinstance(value, Mapping) and len(value) == 1:
        key = next(iter(value))
        if isinstance(key, str) and key.startswith("$$"):
            return key
    return None


def assert_matches(
    expected: Any, actual: Any, *, root: bool = True, iterable: bool = False
) -> None:
    """Assert ``actual`` matches ``expected``.

    :param root: ``actual`` is a root-level document (extra fields allowed).
    :param iterable: ``actual`` is the list an iterable result gave, so each element is a
        root-level document.
    :raises AssertionError: naming the path where they differ.
    """
    expected, actual = normalize(expected), normalize(actual)
    if iterable and isinstance(expected, list) and isinstance(actual, list):
        _check(len(expected) == len(actual), "$", f"{len(actual)} items, expected {len(expected)}")
        for index, (want, got) in enumerate(zip(expected, actual)):
            _match(want, got, True, f"$[{index}]")
        return
    _match(expected, actual, root, "$")


def _check(condition: bool, path: str, message: str) -> None:
    if not condition:
        raise AssertionError(f"{path}: {message}")


def _match(expected: Any, actual: Any, root: bool, path: str) -> None:
    operator = _operator(expected)
    if operator is not None:
        _match_operator(operator, expected[operator], actual, root, path)
    elif isinstance(expected, Mapping):
        _check(isinstance(actual, Mapping), path, f"expected a document, got {actual!r}")
        for key, value in expected.items():
            _match_field(key, value, actual, f"{path}.{key}")
        if not root:
            extra = sorted(set(actual) - set(expected))
            _check(not extra, path, f"unexpected fields {extra} in {actual!r}")
    elif isinstance(expected, list):
        _check(isinstance(actual, list), path, f"expected an array, got {actual!r}")
        _check(len(expected) == len(actual), path, f"{actual!r} has not {len(expected)} items")
        for index, (want, got) in enumerate(zip(expected, actual)):
            _match(want, got, False, f"{path}[{index}]")
    elif _is_number(expected) and not isinstance(expected, Decimal128):
        _check(
            _is_number(actual) and not isinstance(actual, Decimal128) and expected == actual,
            path,
            f"expected {expected!r}, got {actual!r}",
        )
    else:
        _check(
            type(expected) is type(actual) and expected == actual,
            path,
            f"expected {expected!r}, got {actual!r}",
        )


def _match_field(key: str, expected: Any, actual: Mapping[str, Any], path: str) -> None:
    operator = _operator(expected)
    if operator == "$$exists":
        present = key in actual
        _check(present == bool(expected[operator]), path, "present" if present else "missing")
        return
    if operator == "$$unsetOrMatches":
        if key in actual:
            _match(expected[operator], actual[key], False, path)
        return
    _check(key in actual, path, "missing")
    _match(expected, actual[key], False, path)


def _match_operator(operator: str, argument: Any, actual: Any, root: bool, path: str) -> None:
    if operator == "$$type":
        names = [argument] if isinstance(argument, str) else list(argument)
        unknown = [name for name in names if name not in _TYPES]
        if unknown:
            raise UnsupportedFeature(f"$$type {unknown}")
        _check(
            any(_TYPES[name](actual) for name in names),
            path,
            f"{actual!r} is not of type {names}",
        )
    elif operator == "$$unsetOrMatches":
        _match(argument, actual, root, path)
    elif operator == "$$lte":
        _check(_is_number(actual) and actual <= argument, path, f"{actual!r} > {argument!r}")
    elif operator == "$$matchAsRoot":
        _match(argument, actual, True, path)
    elif operator == "$$matchAsDocument":
        _check(isinstance(actual, str), path, f"expected Extended JSON text, got {actual!r}")
        _match(argument, normalize(json_util.loads(actual)), False, path)
    else:
        raise UnsupportedFeature(f"matching operator {operator}")


def is_placeholder(value: Any) -> bool:
    """Whether ``value`` is ``{"$$placeholder": ...}``."""
    return _operator(value) == "$$placeholder"
