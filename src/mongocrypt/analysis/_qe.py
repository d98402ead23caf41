"""Queryable Encryption: a collection's ``encryptedFields`` as an encryption tree, validated as the
server validates it, with every default query analysis applies (contention, sparsity, trimFactor,
range bounds) filled in."""

from __future__ import annotations

import datetime
import decimal
import math
import sys
from collections.abc import Mapping
from typing import Any

from bson.binary import Binary
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from mongocrypt.analysis import _codes as codes
from mongocrypt.analysis._errors import refuse
from mongocrypt.analysis._tree import EQUALITY, RANGE, TEXT, UNINDEXED, Node, QeField, TextIndex
from mongocrypt.analysis._types import BSON_TYPE_NAMES, bson_type, date_millis

__all__ = ["parse_encrypted_fields"]

CONTENTION_DEFAULT = 8
SPARSITY_DEFAULT = 2
TRIM_FACTOR_DEFAULT = 6
_SINGLETONS = frozenset({"minKey", "maxKey", "undefined", "null"})
_EQUALITY_TYPES = frozenset(
    {
        "bool",
        "string",
        "int",
        "long",
        "date",
        "objectId",
        "timestamp",
        "binData",
        "regex",
        "javascript",
        "symbol",
        "dbPointer",
    }
)
_RANGE_TYPES = frozenset({"int", "long", "double", "decimal", "date"})
_RANGE_KEYS = ("min", "max", "sparsity", "precision", "trimFactor")
_TEXT_KEYS = (
    "strMaxLength",
    "strMinQueryLength",
    "strMaxQueryLength",
    "caseSensitive",
    "diacriticSensitive",
)
_QUERY_TYPES = {
    "equality": "equality",
    "range": "range",
    "substring": "substring",
    "substringpreview": "substring",
    "prefix": "prefix",
    "prefixpreview": "prefix",
    "suffix": "suffix",
    "suffixpreview": "suffix",
}
_DECIMAL_MAX = Decimal128("9.999999999999999999999999999999999E+6144")
_DECIMAL_MIN = Decimal128("-9.999999999999999999999999999999999E+6144")
_EFC_KEYS = frozenset(
    {"escCollection", "ecocCollection", "eccCollection", "fields", "strEncodeVersion"}
)


def parse_encrypted_fields(efc: Any, namespace: str) -> Node:
    """The encryption tree of one collection's encryptedFields.

    :param efc: the encryptedFields document (keyIds already resolved by libmongocrypt).
    :param namespace: ``db.coll``, for messages.
    :raises QueryAnalysisError: for an invalid configuration (server codes).
    """
    if not isinstance(efc, Mapping):
        refuse(f"encryptedFields for '{namespace}' must be an object", codes.BAD_VALUE)
    for key in efc:
        if key not in _EFC_KEYS:
            refuse(
                f"BSON field 'EncryptedFieldConfig.{key}' is an unknown field.", codes.UNKNOWN_FIELD
            )
    version = efc.get("strEncodeVersion")
    if version is not None and (bson_type(version) != "int" or version != 1):
        refuse("strEncodeVersion must be an int32 equal to 1", codes.BAD_VALUE)
    fields = efc.get("fields", [])
    if not isinstance(fields, list):
        refuse(f"encryptedFields.fields for '{namespace}' must be an array", codes.BAD_VALUE)
    parsed = [_field(spec) for spec in fields]
    keys: set[bytes] = set()
    paths: set[str] = set()
    for qe in parsed:
        if bytes(qe.key_id) in keys:
            refuse(
                f"Duplicate key ids are not allowed: field '{qe.path}'", codes.QE_DUPLICATE_KEY_ID
            )
        if qe.path in paths:
            refuse(f"Duplicate paths are not allowed: '{qe.path}'", codes.QE_DUPLICATE_PATH)
        keys.add(bytes(qe.key_id))
        paths.add(qe.path)
    for qe in parsed:
        for other in paths:
            if other.startswith(qe.path + "."):
                refuse(
                    f"Path '{qe.path}' is a prefix of another encrypted path '{other}'",
                    codes.QE_PATH_PREFIX,
                )
    return _build_tree(parsed)


def _build_tree(fields: list[QeField]) -> Node:
    nested: dict[str, Any] = {}
    for qe in fields:
        level = nested
        parts = qe.path.split(".")
        for part in parts[:-1]:
            level = level.setdefault(part, {})
        level[parts[-1]] = qe

    def build(level: dict[str, Any]) -> Node:
        return Node(
            children={
                name: Node(v) if isinstance(v, QeField) else build(v) for name, v in level.items()
            }
        )

    return build(nested)


def _field(spec: Any) -> QeField:
    if not isinstance(spec, Mapping):
        refuse("encryptedFields.fields entries must be objects", codes.BAD_VALUE)
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        refuse("Encrypted field path must be a non-empty string", codes.QE_PATH)
    if path == "_id" or path.startswith("_id."):
        refuse(f"_id field cannot be encrypted: '{path}'", codes.QE_ID_FIELD)
    if any(not part for part in path.split(".")):
        refuse(f"Encrypted field path '{path}' has an empty component", codes.QE_PATH)
    for key in spec:
        if key not in ("keyId", "path", "bsonType", "queries"):
            refuse(f"BSON field 'EncryptedField.{key}' is an unknown field.", codes.UNKNOWN_FIELD)
    key_id = spec.get("keyId")
    if not isinstance(key_id, Binary) or key_id.subtype != 4:
        refuse(f"Encrypted field '{path}' needs a keyId that is a UUID", codes.BAD_VALUE)
    type_name = spec.get("bsonType")
    if type_name is not None and (
        not isinstance(type_name, str) or type_name not in BSON_TYPE_NAMES
    ):
        refuse(f"Encrypted field '{path}' has an invalid bsonType", codes.BAD_VALUE)
    queries = spec.get("queries")
    configs = queries if isinstance(queries, list) else ([] if queries is None else [queries])
    if not all(isinstance(c, Mapping) for c in configs):
        refuse(f"Encrypted field '{path}': queries must be objects", codes.BAD_VALUE)
    if not configs:
        if type_name in _SINGLETONS:
            refuse(f"Type '{type_name}' is not a supported unindexed type", codes.QE_UNINDEXED_TYPE)
        return QeField(path, key_id, type_name or "", UNINDEXED, 0)
    if type_name is None:
        refuse(
            f"Encrypted field '{path}' is indexed and needs a bsonType",
            codes.QE_INDEXED_WITHOUT_TYPE,
        )
    kinds = [_query_type(c, path) for c in configs]
    if len(configs) > 2:
        refuse(f"Encrypted field '{path}' has more than two query types", codes.QE_QUERY_TYPE_COUNT)
    if len(configs) == 2 and sorted(kinds) != ["prefix", "suffix"]:
        refuse(
            f"Encrypted field '{path}' may combine only prefix and suffix queries",
            codes.QE_QUERY_TYPE_MIX,
        )
    if kinds[0] == "equality":
        return _equality(path, key_id, type_name, configs[0])
    if kinds[0] == "range":
        return _range(path, key_id, type_name, configs[0])
    return _text(path, key_id, type_name, configs, kinds)


def _query_type(config: Mapping[str, Any], path: str) -> str:
    name = config.get("queryType")
    if not isinstance(name, str):
        refuse(f"Encrypted field '{path}' needs a queryType", codes.BAD_VALUE)
    if name.lower() == "rangepreview":
        refuse(
            f"Cannot use field '{path}' with 'rangePreview' queries. 'rangePreview' is "
            "unsupported. Use 'range' instead. 'range' is not compatible with 'rangePreview' "
            "and requires recreating the collection.",
            codes.BAD_VALUE,
        )
    kind = _QUERY_TYPES.get(name.lower())
    if kind is None:
        refuse(f"Unknown queryType '{name}' for encrypted field '{path}'", codes.BAD_VALUE)
    for key in config:
        if key not in ("queryType", "contention", *_RANGE_KEYS, *_TEXT_KEYS):
            refuse(f"BSON field 'QueryTypeConfig.{key}' is an unknown field.", codes.UNKNOWN_FIELD)
    return kind


def _integer(config: Mapping[str, Any], name: str, path: str, default: int) -> int:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        refuse(f"'{name}' of encrypted field '{path}' must be an integer", codes.BAD_VALUE)
    return int(value)


def _contention(config: Mapping[str, Any], path: str) -> int:
    contention = _integer(config, "contention", path, CONTENTION_DEFAULT)
    if contention < 0 or contention >= 2**63 - 1:
        refuse(
            f"contention of encrypted field '{path}' must be >= 0 and < INT64_MAX",
            codes.QE_CONTENTION,
        )
    return contention


def _equality(path: str, key_id: Binary, type_name: str, config: Mapping[str, Any]) -> QeField:
    if type_name not in _EQUALITY_TYPES:
        refuse(
            f"Type '{type_name}' is not a supported equality indexed type", codes.QE_EQUALITY_TYPE
        )
    for key in (*_RANGE_KEYS, *_TEXT_KEYS):
        if key in config:
            refuse(
                f"'{key}' is not allowed for the equality query type (field '{path}')",
                codes.QE_EQUALITY_OPTION,
            )
    return QeField(path, key_id, type_name, EQUALITY, _contention(config, path))


def _range(path: str, key_id: Binary, type_name: str, config: Mapping[str, Any]) -> QeField:
    if type_name not in _RANGE_TYPES:
        refuse(f"Type '{type_name}' is not a supported range indexed type", codes.QE_RANGE_TYPE)
    for key in _TEXT_KEYS:
        if key in config:
            refuse(
                f"'{key}' is not allowed for the range query type (field '{path}')",
                codes.QE_RANGE_OPTION,
            )
    low, high = config.get("min"), config.get("max")
    precision = config.get("precision")
    for name, bound in (("min", low), ("max", high)):
        if bound is not None and bson_type(bound) != type_name:
            refuse(
                f"Range {name} of encrypted field '{path}' must have the field's type {type_name}",
                codes.QE_RANGE_MIN_TYPE if name == "min" else codes.QE_RANGE_MAX_TYPE,
            )
    floating = type_name in ("double", "decimal")
    if precision is not None:
        if not floating:
            refuse(
                f"precision is only allowed for double and decimal fields ('{path}')",
                codes.QE_PRECISION_TYPE,
            )
        if bson_type(precision) != "int" or precision < 0:
            refuse(
                f"precision of encrypted field '{path}' must be a non-negative int32",
                codes.BAD_VALUE,
            )
    if floating and len({low is None, high is None, precision is None}) != 1:
        refuse(
            f"Encrypted field '{path}': min, max and precision must all be set or all unset",
            codes.QE_RANGE_BOUNDS_SET,
        )
    if low is not None and high is not None and _as_number(low) >= _as_number(high):
        refuse(
            f"Range min must be less than max for encrypted field '{path}'", codes.QE_RANGE_MIN_MAX
        )
    sparsity = _integer(config, "sparsity", path, SPARSITY_DEFAULT)
    if not 1 <= sparsity <= 8:
        refuse(f"sparsity of encrypted field '{path}' must be between 1 and 8", codes.QE_SPARSITY)
    bits = _domain_bits(path, type_name, low, high, precision)
    trim = config.get("trimFactor")
    if trim is not None and (
        isinstance(trim, bool) or not isinstance(trim, int) or not 0 <= trim < max(bits, 1)
    ):
        refuse(
            f"trimFactor of encrypted field '{path}' must be >= 0 and less than the number of "
            f"bits ({bits}) of its domain",
            codes.QE_TRIM_FACTOR,
        )
    effective = int(trim) if trim is not None else min(TRIM_FACTOR_DEFAULT, max(bits - 1, 0))
    index_min, index_max = _extremes(type_name, low, high, precision)
    return QeField(
        path,
        key_id,
        type_name,
        RANGE,
        _contention(config, path),
        sparsity=sparsity,
        trim_factor=None if trim is None else int(trim),
        effective_trim_factor=effective,
        precision=None if precision is None else int(precision),
        min=low,
        max=high,
        index_min=index_min,
        index_max=index_max,
    )


def _as_number(value: Any) -> Any:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, (datetime.datetime, DatetimeMS)):
        return date_millis(value)
    return value


def _extremes(type_name: str, low: Any, high: Any, precision: Any) -> tuple[Any, Any]:
    """The index bounds query analysis sends: configured, else the type's extremes."""
    if low is not None and high is not None:
        return low, high
    if type_name == "int":
        return -(2**31), 2**31 - 1
    if type_name == "long":
        return Int64(-(2**63)), Int64(2**63 - 1)
    if type_name == "date":
        return DatetimeMS(-(2**63)), DatetimeMS(2**63 - 1)
    if type_name == "double":
        return -sys.float_info.max, sys.float_info.max
    return _DECIMAL_MIN, _DECIMAL_MAX


def _ceil_log2(value: int) -> int:
    return (value - 1).bit_length()


def _domain_bits(path: str, type_name: str, low: Any, high: Any, precision: Any) -> int:
    """Bits needed for any element of the field's domain (libmongocrypt's rule)."""
    if type_name in ("int", "long", "date"):
        if low is None or high is None:
            return 32 if type_name == "int" else 64
        return int(_as_number(high) - _as_number(low)).bit_length()
    if precision is None:
        return 64 if type_name == "double" else 128
    if type_name == "double":
        scale = 10.0**precision
        if not math.isfinite(low * scale) or not math.isfinite(high * scale):
            refuse(
                f"Range bounds of '{path}' cannot be scaled by the precision",
                codes.QE_PRECISION_SCALE,
            )
        if low * scale != math.trunc(low * scale) or high * scale != math.trunc(high * scale):
            refuse(
                f"Range bounds of '{path}' have more digits than the precision",
                codes.QE_PRECISION_DIGITS,
            )
        bits = _ceil_log2(int(high * scale) - int(low * scale) + int(scale))
        if bits >= 53:
            refuse(
                f"The domain of double values of '{path}' specified by min, max and precision "
                "cannot be represented in fewer than 53 bits",
                codes.QE_PRECISION_SCALE,
            )
        return bits
    context = decimal.Context(prec=6200, Emax=10**7, Emin=-(10**7))
    scale = decimal.Decimal(10) ** precision
    scaled_low = context.multiply(low.to_decimal(), scale)
    scaled_high = context.multiply(high.to_decimal(), scale)
    if (
        scaled_low != scaled_low.to_integral_value()
        or scaled_high != scaled_high.to_integral_value()
    ):
        refuse(
            f"Range bounds of '{path}' have more digits than the precision",
            codes.QE_PRECISION_DIGITS_DECIMAL,
        )
    bits = _ceil_log2(int(scaled_high) - int(scaled_low) + int(scale))
    if bits >= 128:
        refuse(
            f"The domain of decimal values of '{path}' specified by min, max and precision "
            "cannot be represented in fewer than 128 bits",
            codes.QE_DECIMAL_DOMAIN,
        )
    return bits


def _text(
    path: str, key_id: Binary, type_name: str, configs: list[Mapping[str, Any]], kinds: list[str]
) -> QeField:
    if type_name != "string":
        refuse(
            f"Text search queries need a string field, '{path}' is {type_name}", codes.QE_TEXT_TYPE
        )
    contention = {_contention(c, path) for c in configs}
    case = {repr(c.get("caseSensitive")) for c in configs}
    diacritics = {repr(c.get("diacriticSensitive")) for c in configs}
    if len(contention) > 1:
        refuse(
            f"Text search query types of '{path}' must share contention", codes.QE_TEXT_CONTENTION
        )
    substring = prefix = suffix = None
    for config, kind in zip(configs, kinds):
        for key in _RANGE_KEYS:
            if key in config:
                refuse(
                    f"'{key}' is not allowed for text search queries (field '{path}')",
                    codes.QE_CONTENTION,
                )
        for code, key in zip(
            (
                codes.QE_TEXT_CASE_SENSITIVE,
                codes.QE_TEXT_DIACRITIC_SENSITIVE,
                codes.QE_TEXT_MIN_QUERY_LENGTH,
                codes.QE_TEXT_MAX_QUERY_LENGTH,
            ),
            _TEXT_KEYS[1:],
        ):
            if key not in config:
                refuse(f"'{key}' is required for {kind} queries on '{path}'", code)
        if not isinstance(config["caseSensitive"], bool) or not isinstance(
            config["diacriticSensitive"], bool
        ):
            refuse(
                f"caseSensitive and diacriticSensitive of '{path}' must be bools", codes.BAD_VALUE
            )
        low = _length(config, "strMinQueryLength", path)
        high = _length(config, "strMaxQueryLength", path)
        if low > high:
            refuse(
                f"strMinQueryLength of '{path}' is above strMaxQueryLength",
                codes.QE_TEXT_QUERY_LENGTHS,
            )
        if kind == "substring":
            if "strMaxLength" not in config:
                refuse(
                    f"strMaxLength is required for substring queries on '{path}'",
                    codes.QE_TEXT_MAX_LENGTH,
                )
            longest = _length(config, "strMaxLength", path)
            if longest < high:
                refuse(
                    f"strMaxLength of '{path}' is below strMaxQueryLength",
                    codes.QE_TEXT_MAX_LENGTH_BELOW,
                )
            substring = (longest, high, low)
        else:
            if "strMaxLength" in config:
                refuse(
                    f"strMaxLength is only allowed for substring queries ('{path}')",
                    codes.QE_TEXT_MAX_LENGTH,
                )
            if kind == "prefix":
                prefix = (high, low)
            else:
                suffix = (high, low)
    if len(case) > 1:
        refuse(
            f"caseSensitive must agree across the query types of '{path}'", codes.QE_TEXT_CASE_AGREE
        )
    if len(diacritics) > 1:
        refuse(
            f"diacriticSensitive must agree across the query types of '{path}'",
            codes.QE_TEXT_DIACRITIC_AGREE,
        )
    text = TextIndex(
        case_fold=not configs[0]["caseSensitive"],
        diacritic_fold=not configs[0]["diacriticSensitive"],
        substring=substring,
        prefix=prefix,
        suffix=suffix,
    )
    return QeField(path, key_id, type_name, TEXT, contention.pop(), text=text)


def _length(config: Mapping[str, Any], key: str, path: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        refuse(f"'{key}' of encrypted field '{path}' must be a positive int32", codes.BAD_VALUE)
    return int(value)
