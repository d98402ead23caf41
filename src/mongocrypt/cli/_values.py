"""``mongocrypt encrypt``, ``encrypt-expression`` and ``decrypt``: one value at a time."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from typing import Any, Optional, TypeVar

from bson import Binary

from mongocrypt import Algorithm, ClientEncryption, EncryptOpts, QueryType, RangeOpts, StringOpts
from mongocrypt.cli._output import Output, dump_json, json_object, parse_json
from mongocrypt.cli._settings import Settings, UsageError, key_vault_session

ALGORITHMS = {
    "deterministic": Algorithm.DETERMINISTIC,
    "random": Algorithm.RANDOM,
    "indexed": Algorithm.INDEXED,
    "unindexed": Algorithm.UNINDEXED,
    "range": Algorithm.RANGE,
    "string": Algorithm.STRING,
}
QUERY_TYPES = ("equality", "range", "prefix", "suffix", "substring")
#: Full algorithm names by their lower-case spelling, short names included.
_ALGORITHM_NAMES = {
    **{name.lower(): name for name in ALGORITHMS.values()},
    **ALGORITHMS,
}


def algorithm(value: str) -> str:
    """``--algorithm``: a short name or a full one, in any case; anything else a usage error."""
    try:
        return _ALGORITHM_NAMES[value.lower()]
    except KeyError:
        valid = ", ".join([*ALGORITHMS, *ALGORITHMS.values()])
        raise argparse.ArgumentTypeError(f"unknown algorithm {value!r} (valid: {valid})") from None


# -- encrypt / decrypt ------------------------------------------------------------------------


def _input_value(value: Optional[str]) -> str:
    if value is None or value == "-":
        value = sys.stdin.read()
    if not value.strip():
        raise UsageError("no value given (pass it as an argument or on stdin)")
    return value


#: The JSON field names of --range-opts and --string-opts -> the option classes' parameters.
_RANGE_FIELDS = {
    "min": "min",
    "max": "max",
    "sparsity": "sparsity",
    "precision": "precision",
    "trimFactor": "trim_factor",
}
_STRING_FIELDS = {
    "caseSensitive": "case_sensitive",
    "diacriticSensitive": "diacritic_sensitive",
    "prefix": "prefix",
    "suffix": "suffix",
    "substring": "substring",
}
_Opts = TypeVar("_Opts", RangeOpts, StringOpts)


def _options(
    text: Optional[str], flag: str, fields: dict[str, str], kind: type[_Opts]
) -> Optional[_Opts]:
    """The options ``flag`` gives as a JSON document, built as ``kind``."""
    document = json_object(text, flag)
    if document is None:
        return None
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise UsageError(f"unknown {flag} field {unknown[0]!r} (known: {', '.join(fields)})")
    try:
        return kind(**{fields[k]: v for k, v in document.items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _range_opts(text: Optional[str]) -> Optional[RangeOpts]:
    return _options(text, "--range-opts", _RANGE_FIELDS, RangeOpts)


def _string_opts(text: Optional[str]) -> Optional[StringOpts]:
    return _options(text, "--string-opts", _STRING_FIELDS, StringOpts)


def _encrypt_opts(
    args: argparse.Namespace, algorithm: str, query_type: Optional[str]
) -> EncryptOpts:
    """The options of ``encrypt`` and ``encrypt-expression``, checked before connecting."""
    key_id = None
    if args.key_id is not None:
        try:
            key_id = uuid.UUID(args.key_id)
        except ValueError:
            raise UsageError(f"--key-id must be a UUID, not {args.key_id!r}") from None
    try:
        return EncryptOpts(
            Algorithm.named(algorithm, "--algorithm"),
            key_id=key_id,
            key_alt_name=args.key_alt_name,
            contention_factor=args.contention_factor,
            query_type=None if query_type is None else QueryType.named(query_type, "--query-type"),
            range_opts=_range_opts(args.range_opts),
            string_opts=_string_opts(getattr(args, "string_opts", None)),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def cmd_encrypt(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    if args.query_type == "range":
        raise UsageError(
            "a range query encrypts an expression, not one value: use "
            "'mongocrypt encrypt-expression' with the query's $and of bounds"
        )
    opts = _encrypt_opts(args, args.algorithm, args.query_type)
    value = parse_json(_input_value(args.value), "value")
    return _encrypt_and_print(
        settings, out, args.canonical, "ciphertext", lambda ce: ce.encrypt(value, opts)
    )


def cmd_encrypt_expression(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    opts = _encrypt_opts(args, Algorithm.RANGE, "range")
    expression = parse_json(_input_value(args.expression), "expression")
    if not (isinstance(expression, dict) and list(expression) == ["$and"]):
        raise UsageError(
            'expression must be an Extended JSON {"$and": [...]} of bounds, e.g. '
            '{"$and": [{"age": {"$gte": 18}}, {"age": {"$lt": 65}}]}'
        )
    return _encrypt_and_print(
        settings,
        out,
        args.canonical,
        "expression",
        lambda ce: ce.encrypt_expression(expression, opts),
    )


def _encrypt_and_print(
    settings: Settings,
    out: Output,
    canonical: bool,
    key: str,
    encrypt: Callable[[ClientEncryption], Any],
) -> int:
    """Run ``encrypt`` on the key vault's ``ClientEncryption``; print its result under ``key``."""
    with key_vault_session(settings, need_kms=True) as (_client, client_encryption):
        encrypted = encrypt(client_encryption)
    out.result(
        {key: json.loads(dump_json(encrypted, True))}, lambda: dump_json(encrypted, canonical)
    )
    return 0


def cmd_decrypt(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    ciphertext = parse_json(_input_value(args.ciphertext), "ciphertext")
    if not (isinstance(ciphertext, Binary) and ciphertext.subtype == 6):
        raise UsageError(
            'ciphertext must be Extended JSON binary of subtype 6: {"$binary": '
            '{"base64": "...", "subType": "06"}}'
        )
    with key_vault_session(settings, need_kms=True) as (_client, client_encryption):
        value = client_encryption.decrypt(ciphertext)
    data = {"value": json.loads(dump_json(value, True))}
    out.result(data, lambda: dump_json(value, args.canonical))
    return 0
