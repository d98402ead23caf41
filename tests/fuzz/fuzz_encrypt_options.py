"""Fuzz explicit encryption options: every field of the engine's ``ExplicitEncryptOptions`` and of
the public ``EncryptOpts``/``RangeOpts``/``StringOpts``, with values of every BSON type.

Input: the first byte picks the entry point, the rest is read field by field (see :func:`fields`).

- 0: the engine's ``ExplicitEncrypter.encrypt(value, algorithm, key_id=..., ...)`` with the raw
  option values (range and string options as structured or raw BSON);
- 1: ``mongocrypt.ClientEncryption.encrypt`` / ``encrypt_expression`` with public option objects.

Properties beyond "only typed errors": an encryption that succeeds without a query type is a
ciphertext that decrypts back to exactly the value encrypted (BSON bytes compared).

Integer options outside what libmongocrypt stores (int32/int64) must be ValueErrors naming the
option (they once escaped as ``OverflowError``), and JavaScript code containing NUL must be refused
(libmongocrypt would truncate it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DETERMINISTIC,
    RANDOM,
    Reader,
    bson_value,
    check_live_contexts,
    encode_or_none,
    instrumented,
    local_explicit_targets,
    local_key_document,
    run,
    typed_errors,
)

with instrumented():
    import bson
    from bson import Binary, Int64

    from mongocrypt import EncryptOpts, RangeOpts, StringOpts
    from mongocrypt.engine.native import live_objects

KEY = local_key_document()
KEY_ID = bytes(KEY["_id"])
ENGINE, CLIENT_ENCRYPTION = local_explicit_targets(KEY)
TYPED = typed_errors()
BASELINE = live_objects()["contexts"]
INT64 = range(-(2**63), 2**63)

ALGORITHMS = [DETERMINISTIC, RANDOM, "Indexed", "Unindexed", "Range", "String", "RangePreview"]
QUERY_TYPES = [
    "equality",
    "range",
    "prefix",
    "suffix",
    "substring",
    "rangePreview",
    "prefixPreview",
    "suffixPreview",
    "substringPreview",
]


def pick(reader: Reader, choices: list[Any]) -> Any:
    """One of ``choices``, or (one time in eight) a fuzzed string."""
    index = reader.byte()
    if index % 8 == 7:
        return reader.text(24)
    return choices[index % len(choices)]


def option_int(reader: Reader) -> int:
    """Mostly small, sometimes any int64, rarely beyond int64 (validation must catch it)."""
    kind = reader.byte() % 8
    if kind < 4:
        return reader.byte() % 16
    if kind < 6:
        return reader.int(8)
    if kind == 6:
        return -reader.byte()
    return 2**63 + reader.int(2, signed=False)


def optional(reader: Reader, make: Any) -> Any:
    return make(reader) if reader.byte() % 3 else None


def range_fields(reader: Reader) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("min", "max"):
        if reader.byte() % 3:
            fields[name] = bson_value(reader)
    for name in ("sparsity", "precision", "trim_factor"):
        if reader.byte() % 2:
            fields[name] = option_int(reader)
    return fields


def string_fields(reader: Reader) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "case_sensitive": bool(reader.byte() & 1),
        "diacritic_sensitive": bool(reader.byte() & 1),
    }
    for name in ("prefix", "suffix", "substring"):
        if reader.byte() % 2:
            limits = {
                "strMinQueryLength": option_int(reader),
                "strMaxQueryLength": option_int(reader),
            }
            if name == "substring":
                limits["strMaxLength"] = option_int(reader)
            fields[name] = limits
    return fields


def range_document(fields: dict[str, Any]) -> dict[str, Any]:
    names = {"trim_factor": "trimFactor"}
    document = {names.get(k, k): v for k, v in fields.items()}
    if "sparsity" in document and document["sparsity"] in INT64:
        document["sparsity"] = Int64(document["sparsity"])
    return document


def string_document(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "caseSensitive": fields["case_sensitive"],
        "diacriticSensitive": fields["diacritic_sensitive"],
        **{k: fields[k] for k in ("prefix", "suffix", "substring") if k in fields},
    }


def out_of_int64(fields: Optional[dict[str, Any]]) -> bool:
    if not fields:
        return False
    values = list(fields.values())
    for value in list(values):
        if isinstance(value, dict):
            values.extend(value.values())
    return any(type(v) is int and v not in INT64 for v in values)


def expression(reader: Reader) -> dict[str, Any]:
    low, high = bson_value(reader), bson_value(reader)
    first, second = pick(reader, ["$gt", "$gte"]), pick(reader, ["$lt", "$lte"])
    return {"$and": [{"f": {first: low}}, {"f": {second: high}}]}


def engine_encrypt(reader: Reader) -> None:
    """Mode 0: the engine's encrypter with raw option values."""
    algorithm = pick(reader, ALGORITHMS)
    key_choice = reader.byte() % 4
    key_id: Optional[bytes] = KEY_ID if key_choice < 2 else None
    key_alt_name: Optional[str] = None
    if key_choice == 2:
        key_alt_name = "local" if reader.byte() % 2 else reader.text(16)
    elif key_choice == 3:
        key_id = reader.take(reader.byte() % 20)
    query_type = optional(reader, lambda r: pick(r, QUERY_TYPES))
    contention = optional(reader, option_int)
    is_expression = reader.byte() % 4 == 0
    ranges = optional(reader, range_fields)
    strings = optional(reader, string_fields)
    raw = reader.byte() % 4
    range_opts = encode_or_none(range_document(ranges)) if ranges is not None else None
    string_opts = encode_or_none(string_document(strings)) if strings is not None else None
    if raw == 0:
        range_opts = reader.take(reader.byte())
    elif raw == 1:
        string_opts = reader.take(reader.byte())
    value = encode_or_none({"v": expression(reader) if is_expression else bson_value(reader)})
    if value is None:
        return
    result = ENGINE.encrypt(
        value,
        algorithm,
        key_id=key_id,
        key_alt_name=key_alt_name,
        query_type=query_type,
        contention_factor=contention,
        range_opts=range_opts,
        is_expression=is_expression,
        string_opts=string_opts,
    )
    if query_type is None and not is_expression:
        # Insert payloads and FLE1 ciphertexts decrypt back to the exact value.
        ciphertext = bson.decode(result)["v"]
        if not (isinstance(ciphertext, Binary) and ciphertext.subtype == 6):
            raise AssertionError(f"encrypt returned {type(ciphertext).__name__}, not a ciphertext")
        if ENGINE.decrypt(result) != value:
            raise AssertionError(f"{algorithm} round trip changed the value")


def public_encrypt(reader: Reader) -> None:
    """Mode 1: ClientEncryption with the public option classes."""
    ranges = optional(reader, range_fields)
    strings = optional(reader, string_fields)
    key_choice = reader.byte() % 3
    contention = optional(reader, option_int)
    opts = EncryptOpts(
        pick(reader, ALGORITHMS),
        key_id=Binary(KEY_ID, 4) if key_choice == 0 else None,
        key_alt_name=None if key_choice == 0 else ("local" if key_choice == 1 else reader.text(8)),
        contention_factor=contention,
        query_type=optional(reader, lambda r: pick(r, QUERY_TYPES)),
        range_opts=None if ranges is None else RangeOpts(**ranges),
        string_opts=None if strings is None else StringOpts(**strings),
    )
    is_expression = reader.byte() % 4 == 0
    value = expression(reader) if is_expression else bson_value(reader)
    if encode_or_none({"v": value}) is None:
        return
    bounds = {k: v for k, v in (ranges or {}).items() if k in ("min", "max")}
    if encode_or_none(bounds) is None:
        return  # bounds bson cannot encode: not an input the options can be blamed for
    if is_expression:
        CLIENT_ENCRYPTION.encrypt_expression(value, opts)
    else:
        ciphertext = CLIENT_ENCRYPTION.encrypt(value, opts)
        if opts.query_type is None and not isinstance(ciphertext, Binary):
            raise AssertionError(f"encrypt returned {type(ciphertext).__name__}")


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    reader = Reader(data[1:])
    try:
        if data[0] % 2 == 0:
            engine_encrypt(reader)
        else:
            public_encrypt(reader)
    except TYPED:
        pass
    check_live_contexts(BASELINE)


if __name__ == "__main__":
    run(TestOneInput)
