"""Checked by mypy --strict in test_typing.py, never run: the public types say what
pymongo's do, and the algorithm and query-type names are typed so that a misspelt one fails.

Each ``# type: ignore[...]`` marks a line that must be an error: with ``warn_unused_ignores``
(part of --strict), a line that stopped being one fails the check.
"""

from __future__ import annotations

from typing import Optional

from bson import Binary
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.cursor import Cursor
from pymongo.results import BulkWriteResult, DeleteResult
from typing_extensions import assert_type

from mongocrypt import (
    Algorithm,
    AsyncClientEncryption,
    AutoEncryptionOpts,
    ClientEncryption,
    EncryptOpts,
    QueryType,
    RewrapManyDataKeyResult,
)
from mongocrypt.options import AlgorithmName, QueryTypeName


def sync_api(ce: ClientEncryption, key_id: Binary) -> None:
    assert_type(ce.get_keys(), Cursor[RawBSONDocument])
    assert_type(ce.get_key(key_id), Optional[RawBSONDocument])
    assert_type(ce.get_key_by_alt_name("a"), Optional[RawBSONDocument])
    assert_type(ce.add_key_alt_name(key_id, "a"), Optional[RawBSONDocument])
    assert_type(ce.remove_key_alt_name(key_id, "a"), Optional[RawBSONDocument])
    assert_type(ce.delete_key(key_id), DeleteResult)
    assert_type(ce.create_data_key("local"), Binary)
    result = ce.rewrap_many_data_key({}, progress=lambda matched, rewrapped: None)
    assert_type(result, RewrapManyDataKeyResult)
    assert_type(result.bulk_write_result, Optional[BulkWriteResult])
    assert_type(ce.encrypt("v", EncryptOpts(Algorithm.RANDOM, key_id=key_id)), Binary)


async def async_api(ce: AsyncClientEncryption, key_id: Binary) -> None:
    assert_type(ce.get_keys(), AsyncCursor[RawBSONDocument])
    assert_type(await ce.get_key(key_id), Optional[RawBSONDocument])
    assert_type(await ce.delete_key(key_id), DeleteResult)


def names(setting: str) -> None:
    EncryptOpts(Algorithm.DETERMINISTIC, key_alt_name="a")
    EncryptOpts("Indexed", key_alt_name="a", contention_factor=0, query_type="equality")
    EncryptOpts(Algorithm.named(setting), key_alt_name="a")
    assert_type(Algorithm.named(setting), AlgorithmName)
    assert_type(QueryType.named(setting), QueryTypeName)
    EncryptOpts("Indexd", key_alt_name="a")  # type: ignore[arg-type]
    EncryptOpts(Algorithm.INDEXD, key_alt_name="a")  # type: ignore[attr-defined]
    EncryptOpts(Algorithm.INDEXED, key_alt_name="a", query_type="equalty")  # type: ignore[arg-type]
    EncryptOpts(setting, key_alt_name="a")  # type: ignore[arg-type]


def auto() -> AutoEncryptionOpts:
    return AutoEncryptionOpts({"local": {"key": b"k" * 96}}, "encryption.__keyVault")
