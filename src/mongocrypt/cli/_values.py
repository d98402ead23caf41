"""``mongocrypt encrypt`` and ``mongocrypt decrypt``: one value at a time."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Optional

from bson import Binary

from mongocrypt import Algorithm, EncryptOpts, RangeOpts, StringOpts
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

# -- encrypt / decrypt ------------------------------------------------------------------------


def _input_value(value: Optional[str]) -> str:
    if value is None or value == "-":
        value = sys.stdin.read()
    if not value.strip():
        raise UsageError("no value given (pass it as an argument or on stdin)")
    return value


def _range_opts(text: Optional[str]) -> Optional[RangeOpts]:
    document = json_object(text, "--range-opts")
    if document is None:
        return None
    names = {"min": "min", "max": "max", "sparsity": "sparsity", "precision": "precision"}
    names["trimFactor"] = "trim_factor"
    unknown = sorted(set(document) - set(names))
    if unknown:
        raise UsageError(f"unknown --range-opts field {unknown[0]!r} (known: {', '.join(names)})")
    try:
        return RangeOpts(**{names[k]: v for k, v in document.items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--range-opts: {exc}") from None


def _string_opts(text: Optional[str]) -> Optional[StringOpts]:
    document = json_object(text, "--string-opts")
    if document is None:
        return None
    names = {
        "caseSensitive": "case_sensitive",
        "diacriticSensitive": "diacritic_sensitive",
        "prefix": "prefix",
        "suffix": "suffix",
        "substring": "substring",
    }
    unknown = sorted(set(document) - set(names))
    if unknown:
        raise UsageError(f"unknown --string-opts field {unknown[0]!r} (known: {', '.join(names)})")
    try:
        return StringOpts(**{names[k]: v for k, v in document.items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--string-opts: {exc}") from None


def cmd_encrypt(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    value = parse_json(_input_value(args.value), "value")
    algorithm = ALGORITHMS.get(args.algorithm.lower(), args.algorithm)
    key_id = None
    if args.key_id is not None:
        try:
            key_id = uuid.UUID(args.key_id)
        except ValueError:
            raise UsageError(f"--key-id must be a UUID, not {args.key_id!r}") from None
    try:
        opts = EncryptOpts(
            algorithm,
            key_id=key_id,
            key_alt_name=args.key_alt_name,
            contention_factor=args.contention_factor,
            query_type=args.query_type,
            range_opts=_range_opts(args.range_opts),
            string_opts=_string_opts(args.string_opts),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    with key_vault_session(settings, need_kms=True) as (_client, client_encryption):
        ciphertext = client_encryption.encrypt(value, opts)
    data = {"ciphertext": json.loads(dump_json(ciphertext, True))}
    out.result(data, lambda: dump_json(ciphertext, args.canonical))
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
