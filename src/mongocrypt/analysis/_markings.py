"""Markings: BinData subtype 6 values libmongocrypt turns into ciphertext.

FLE1 (first byte 0) is ``{a, ki | ka, v}``; FLE2 placeholders (first byte 3) are
``{t, a, ki, ku, v, cm[, s]}`` whose ``v`` is the value, or for range and text indexes a spec
document. Every value is checked here against the field's metadata before it is marked, so no
caller can mark a value the field's schema does not allow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

import bson
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.timestamp import Timestamp

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._tree import (
    EQUALITY,
    RANGE,
    TEXT,
    Fle1Meta,
    Kind,
    Meta,
    Node,
    QeField,
    resolve,
)
from mongocrypt.analysis._types import (
    ENCRYPTED_BINARY,
    bson_type,
    date_millis,
    is_encrypted_binary,
)

__all__ = ["FIND", "INSERT", "OPERATORS", "Marker", "fle2_placeholder"]

FLE1_MARKING, FLE2_PLACEHOLDER = 0, 3
INSERT, FIND = 1, 2
#: mc_FLE2RangeOperator_t
OPERATORS = {"$gt": 1, "$gte": 2, "$lt": 3, "$lte": 4}
_ENCODE: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=UuidRepresentation.STANDARD
)
_NEVER = frozenset({"minKey", "maxKey", "undefined", "null"})
_RANDOM_ONLY = frozenset({"double", "decimal", "bool", "object", "array", "javascriptWithScope"})


def _blob(kind: int, document: Mapping[str, Any]) -> Binary:
    blob: Binary = Binary(bytes([kind]) + bson.encode(document, codec_options=_ENCODE), 6)
    return blob


def fle2_placeholder(kind: int, qe: QeField, value: Any) -> Binary:
    """An FLE2 placeholder for ``qe`` (``ki`` = ``ku``: automatic encryption uses one key)."""
    document: dict[str, Any] = {
        "t": kind,
        "a": qe.algorithm,
        "ki": qe.key_id,
        "ku": qe.key_id,
        "v": value,
        "cm": Int64(qe.contention),
    }
    if qe.algorithm == RANGE:
        document["s"] = Int64(qe.sparsity)
    return _blob(FLE2_PLACEHOLDER, document)


def _type_list(types: tuple[str, ...]) -> str:
    return "[ " + ", ".join(types) + " ]"


class Marker:
    """Builds the markings of one command and counts them; ``simple_collation`` says whether the
    filter being analysed compares strings with the simple collation (callers set it)."""

    def __init__(self) -> None:
        self.count = 0
        self._payload_id = 0
        self.simple_collation = True

    # -- checks shared by writes and comparisons ----------------------------------------------

    def _check_value(self, meta: Meta, value: Any, path: str) -> str:
        """The value's BSON type once it is known the field may hold it."""
        if is_encrypted_binary(value):
            refuse(f"Cannot encrypt element of type: {ENCRYPTED_BINARY}", codes.ELEMENT_TYPE)
        type_name = bson_type(value)
        if isinstance(meta, Fle1Meta):
            if type_name in _NEVER or (meta.deterministic and type_name in _RANDOM_ONLY):
                refuse(f"Cannot encrypt element of type: {type_name}", codes.ELEMENT_TYPE)
            if meta.bson_types is not None and type_name not in meta.bson_types:
                refuse(
                    f"Cannot encrypt element of type {type_name} because schema requires that "
                    f"type is one of: {_type_list(meta.bson_types)}",
                    codes.SCHEMA_TYPE,
                )
            return type_name
        if type_name in _NEVER:
            refuse(f"Cannot encrypt element of type: {type_name}", codes.ELEMENT_TYPE)
        if meta.bson_type and type_name != meta.bson_type:
            refuse(
                f"Cannot encrypt element of type {type_name} because schema requires that type "
                f"is one of: [ {meta.bson_type} ]",
                codes.SCHEMA_TYPE,
            )
        return type_name

    # -- writes -------------------------------------------------------------------------------

    def write(
        self,
        meta: Meta,
        value: Any,
        path: str,
        *,
        document: Optional[Mapping[str, Any]] = None,
        tree: Optional[Node] = None,
        top_level: bool = False,
    ) -> Binary:
        """The marking of a value written to an encrypted field (insert, replacement, ``$set``).

        :param document: the document being inserted, against which a JSON-pointer keyId is
            resolved (None where pointers are not allowed).
        :param tree: the tree the document is checked against (pointer targets must be plain).
        :param top_level: the field is a top-level field of an inserted document.
        """
        if top_level and isinstance(value, Timestamp) and (value.time, value.inc) == (0, 0):
            refuse(
                "A command that inserts cannot supply Timestamp(0, 0) for an encrypted "
                f"top-level field at path {path}",
                codes.INSERT_ZERO_TIMESTAMP,
            )
        self._check_value(meta, value, path)
        self.count += 1
        if isinstance(meta, Fle1Meta):
            key: dict[str, Any]
            if meta.key_pointer is None:
                key = {"ki": meta.key_id}
            else:
                key = {"ka": self._key_alt_name(meta.key_pointer, document, tree)}
            return _blob(FLE1_MARKING, {"a": meta.algorithm, **key, "v": value})
        if meta.algorithm == RANGE:
            return fle2_placeholder(INSERT, meta, self._range_insert_spec(meta, value))
        if meta.algorithm == TEXT:
            return fle2_placeholder(INSERT, meta, self._text_spec(meta, value, None))
        return fle2_placeholder(INSERT, meta, value)

    @staticmethod
    def _key_alt_name(
        pointer: str, document: Optional[Mapping[str, Any]], tree: Optional[Node]
    ) -> str:
        if document is None:
            refuse("A non-static (JSONPointer) keyId is not supported.", codes.KEY_POINTER_QUERY)
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
        target: Any = document
        for part in parts:
            if not isinstance(target, Mapping) or part not in target:
                refuse(
                    f"keyId pointer '{pointer}' must point to a field that exists",
                    codes.KEY_POINTER_MISSING,
                )
            target = target[part]
        if tree is not None and resolve(tree, parts).kind is not Kind.PLAIN:
            refuse(
                f"keyId pointer '{pointer}' cannot point to an encrypted field",
                codes.KEY_POINTER_TO_ENCRYPTED,
            )
        if not isinstance(target, str):
            refuse(
                f"keyId pointer '{pointer}' must point to a field of type string",
                codes.KEY_POINTER_NOT_STRING,
            )
        return target

    @staticmethod
    def _range_insert_spec(qe: QeField, value: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"v": value, "min": qe.index_min, "max": qe.index_max}
        if qe.precision is not None:
            spec["precision"] = qe.precision
        if qe.trim_factor is not None:
            spec["trimFactor"] = qe.trim_factor
        return spec

    @staticmethod
    def _text_spec(qe: QeField, value: Any, query: Optional[str]) -> dict[str, Any]:
        text = qe.text
        assert text is not None
        spec: dict[str, Any] = {"v": value, "casef": text.case_fold, "diacf": text.diacritic_fold}
        if text.substring is not None and query in (None, "substr"):
            mlen, ub, lb = text.substring
            spec["substr"] = {"mlen": mlen, "ub": ub, "lb": lb}
        if text.suffix is not None and query in (None, "suffix"):
            spec["suffix"] = {"ub": text.suffix[0], "lb": text.suffix[1]}
        if text.prefix is not None and query in (None, "prefix"):
            spec["prefix"] = {"ub": text.prefix[0], "lb": text.prefix[1]}
        return spec

    # -- comparisons --------------------------------------------------------------------------

    def compare(self, meta: Meta, value: Any, path: str) -> Binary:
        """The marking of a constant compared for equality with an encrypted field."""
        if isinstance(meta, Fle1Meta):
            if not meta.deterministic:
                refuse(
                    "Cannot query on fields encrypted with the randomized encryption algorithm: "
                    f"'{path}'",
                    codes.RANDOM_QUERY,
                )
            type_name = self._check_value(meta, value, path)
            if meta.key_pointer is not None:
                refuse(
                    "A non-static (JSONPointer) keyId is not supported.", codes.KEY_POINTER_QUERY
                )
            self._check_collation(type_name, path)
            self.count += 1
            return _blob(FLE1_MARKING, {"a": meta.algorithm, "ki": meta.key_id, "v": value})
        if meta.algorithm != EQUALITY:
            refuse(
                "Can only execute encrypted equality queries with an encrypted equality index: "
                f"'{path}'",
                codes.QE_EQUALITY_INDEX,
            )
        self._check_collation(self._check_value(meta, value, path), path)
        self.count += 1
        return fle2_placeholder(FIND, meta, value)

    def _check_collation(self, type_name: str, path: str) -> None:
        """A string compared with an encrypted field under a non-simple collation is refused
        (CSFLE and Queryable Encryption alike): the server would apply the collation to the
        ciphertext or its tokens, not to the value."""
        if not self.simple_collation and type_name == "string":
            refuse(
                "cannot apply non-simple collation when comparing to element of type "
                f"string with client-side encryption (field '{path}')",
                codes.COLLATION,
            )

    def text_search(self, qe: QeField, value: Any, query: str, path: str) -> Binary:
        """A text-search find placeholder (``query``: substr, prefix or suffix)."""
        text = qe.text
        indexes = {"substr": "substring", "prefix": "prefix", "suffix": "suffix"}
        if qe.algorithm != TEXT or text is None or getattr(text, indexes[query]) is None:
            refuse(
                f"Field '{path}' has no {indexes[query]} text search index", codes.TEXT_SEARCH_INPUT
            )
        if not isinstance(value, str):
            refuse(f"Text search on '{path}' needs a string constant", codes.TYPE_MISMATCH)
        self.count += 1
        return fle2_placeholder(FIND, qe, self._text_spec(qe, value, query))

    # -- range queries ------------------------------------------------------------------------

    def next_payload_id(self) -> int:
        payload, self._payload_id = self._payload_id, self._payload_id + 1
        return payload

    def range_bound(self, qe: QeField, value: Any, path: str, op: str) -> Any:
        """``value`` as a bound of a range query on ``qe``: in the index's type, inside its
        bounds.

        :raises QueryAnalysisError: for another type, NaN, or a value outside [min, max].
        """
        if qe.algorithm != RANGE:
            refuse(
                f"Comparison operator {op} on encrypted field '{path}' needs a range index",
                codes.QE_RANGE_INDEX,
            )
        if value is None:
            refuse(f"Illegal comparison to null for encrypted field: '{path}'", codes.NULL_EQUALITY)
        type_name = bson_type(value)
        field_type = qe.bson_type
        if (type_name == "date") != (field_type == "date"):
            refuse(
                "If the value type is a date, the type of the index must also be date (and vice "
                f"versa): encrypted field '{path}' has a {field_type} index, the value is a "
                f"{type_name}",
                codes.QE_RANGE_DATE,
            )
        if field_type == "int" and type_name == "long" and int(value) in range(-(2**31), 2**31):
            value, type_name = int(value), "int"
        elif field_type == "long" and type_name == "int":
            value, type_name = Int64(value), "long"
        if type_name != field_type:
            refuse(
                f"Range query on encrypted field '{path}' with a {type_name} value: field type "
                f"is not supported (the index holds {field_type})",
                codes.QE_RANGE_VALUE_TYPE,
            )
        number = _ordered(value)
        if number != number:  # NaN, double or decimal
            refuse("Query bound cannot be NaN.", codes.QE_RANGE_NAN)
        if number < _ordered(qe.index_min) or number > _ordered(qe.index_max):
            refuse(
                f"The {op} bound of the range query on encrypted field '{path}' is outside the "
                "field's range index bounds",
                codes.QE_RANGE_OUT_OF_BOUNDS,
            )
        return value

    def range_find(
        self,
        qe: QeField,
        lower: Optional[tuple[Any, bool]],
        upper: Optional[tuple[Any, bool]],
    ) -> list[tuple[str, Binary]]:
        """The placeholders of one interval: ``[(operator, marking)]``, one for a one-sided
        interval, a full placeholder and its stub for a two-sided one."""
        payload = self.next_payload_id()
        ops = []
        if lower is not None:
            ops.append("$gte" if lower[1] else "$gt")
        if upper is not None:
            ops.append("$lte" if upper[1] else "$lt")
        low_value, low_included = lower if lower is not None else (-math.inf, True)
        high_value, high_included = upper if upper is not None else (math.inf, True)
        edges: dict[str, Any] = {
            "lowerBound": low_value,
            "lbIncluded": low_included,
            "upperBound": high_value,
            "ubIncluded": high_included,
        }
        if qe.precision is not None:
            edges["precision"] = qe.precision
        edges["trimFactor"] = qe.effective_trim_factor
        edges["indexMin"] = qe.index_min
        edges["indexMax"] = qe.index_max
        operators: dict[str, Any] = {"payloadId": payload, "firstOperator": OPERATORS[ops[0]]}
        if len(ops) == 2:
            operators["secondOperator"] = OPERATORS[ops[1]]
        self.count += len(ops)
        marks = [(ops[0], fle2_placeholder(FIND, qe, {"edgesInfo": edges, **operators}))]
        if len(ops) == 2:
            marks.append((ops[1], fle2_placeholder(FIND, qe, operators)))
        return marks


def _ordered(value: Any) -> Any:
    """A value of a range-indexed type as a Python number that orders like the index."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if bson_type(value) == "date":
        return date_millis(value)
    return value
