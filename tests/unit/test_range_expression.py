"""encrypt_expression: the expression's shape is checked before libmongocrypt sees it, and no
message ever quotes a bound (the plaintext being queried)."""

from __future__ import annotations

import uuid
from typing import Any

import bson
import pymongo
import pytest
from bson import Binary
from pymongo.encryption import ClientEncryption as PymongoClientEncryption
from pymongo.encryption_options import RangeOpts as PymongoRangeOpts

from mongocrypt import ClientEncryption, EncryptOpts
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.options import RangeOpts

SECRET = 424242
RANGE_OPTS = bson.encode(RangeOpts(min=0, max=1_000_000, sparsity=1, trim_factor=1).document)


def _encrypt(encrypter: ExplicitEncrypter, key_id: Any, expression: Any) -> bytes:
    return encrypter.encrypt(
        bson.encode({"v": expression}),
        "Range",
        key_id=key_id,
        query_type="range",
        contention_factor=0,
        range_opts=RANGE_OPTS,
        is_expression=True,
    )


@pytest.mark.requirement("CSE-CE-12")
@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ({"$gte": SECRET}, "must be {'$and': [...]}"),
        ({"age": {"$gte": SECRET}}, "must be {'$and': [...]}"),
        ({"$and": [{"age": {"$gte": SECRET}}], "$or": []}, "must be {'$and': [...]}"),
        ({"$and": []}, "1 or 2 bounds"),
        ({"$and": {"age": {"$gte": SECRET}}}, "1 or 2 bounds"),
        ({"$and": [{"age": {"$gte": SECRET}}] * 3}, "1 or 2 bounds"),
        ({"$and": [{"age": {"$eq": SECRET}}]}, "'$eq' is not a range bound"),
        ({"$and": [{"$eq": ["$age", SECRET]}]}, "'$eq' is not a range bound"),
        ({"$and": [{"age": {"$gte": SECRET, "$lt": SECRET}}]}, "one bound per element"),
        ({"$and": [{"age": SECRET}]}, "one bound per element"),
        ({"$and": [{"$gte": ["age", SECRET]}]}, '["$field", value]'),
        ({"$and": [{"$gte": ["$age"]}]}, '["$field", value]'),
        (
            {"$and": [{"age": {"$gte": SECRET}}, {"other": {"$lt": SECRET}}]},
            "one field: 'age' and 'other'",
        ),
        (
            {"$and": [{"age": {"$gte": SECRET}}, {"age": {"$gt": SECRET}}]},
            "two lower bounds",
        ),
        (
            {"$and": [{"age": {"$lte": SECRET}}, {"$lt": ["$age", SECRET]}]},
            "not both",
        ),
        ("age >= 424242", "must be {'$and': [...]}"),
    ],
)
def test_malformed_expressions_are_refused_without_their_values(
    encrypter: ExplicitEncrypter, key_id: Any, expression: Any, text: str
) -> None:
    """CSE-CE-12: only the specification's shapes; no plaintext in any message."""
    with pytest.raises(ValueError) as info:
        _encrypt(encrypter, key_id, expression)
    message = str(info.value)
    assert text in message
    assert str(SECRET) not in message


def test_a_libmongocrypt_refusal_quotes_no_value(encrypter: ExplicitEncrypter, key_id: Any) -> None:
    """A well-shaped expression libmongocrypt still refuses (a bound of the wrong type): its
    message, which quotes the expression, is redacted."""
    with pytest.raises(Exception) as info:
        _encrypt(encrypter, key_id, {"$and": [{"age": {"$gte": f"abc{SECRET}"}}]})
    assert "FLE2RangeInsertSpec" in str(info.value) or "type" in str(info.value)
    assert str(SECRET) not in str(info.value)


@pytest.mark.parametrize(
    "expression",
    [
        {"$and": [{"age": {"$gte": SECRET}}]},
        {"$and": [{"age": {"$lt": SECRET}}]},
        {"$and": [{"age": {"$gte": SECRET}}, {"age": {"$lt": SECRET + 1}}]},
        {"$and": [{"$gt": ["$age", SECRET]}, {"$lte": ["$age", SECRET + 1]}]},
    ],
)
def test_the_specifications_forms_are_accepted(
    encrypter: ExplicitEncrypter, key_id: Any, expression: Any
) -> None:
    result = bson.decode(_encrypt(encrypter, key_id, expression))["v"]
    assert "$and" in result
    assert str(SECRET) not in str(result)


@pytest.mark.parametrize("api", ["mongocrypt", "pymongo"])
def test_through_client_encryption(api: str) -> None:
    """The issue's case: ``{"$gte": 424242}`` without ``$and``, through mongocrypt's
    ClientEncryption and pymongo's own (the drop-in path); refused before any I/O."""
    key_id = Binary(uuid.uuid4().bytes, 4)
    providers = {"local": {"key": b"k" * 96}}
    with pymongo.MongoClient[Any](connect=False) as client:
        if api == "mongocrypt":
            with ClientEncryption(providers, "kv.keys", client) as ce:
                opts = EncryptOpts(
                    "Range",
                    key_id=key_id,
                    query_type="range",
                    contention_factor=0,
                    range_opts=RangeOpts(min=0, max=1_000_000, sparsity=1, trim_factor=1),
                )
                with pytest.raises(ValueError) as refused:
                    ce.encrypt_expression({"$gte": SECRET}, opts)
                message = str(refused.value)
        else:
            pce = PymongoClientEncryption[Any](providers, "kv.keys", client, client.codec_options)
            try:
                with pytest.raises(pymongo.errors.EncryptionError) as wrapped:
                    pce.encrypt_expression(
                        {"$gte": SECRET},
                        "Range",
                        key_id=key_id,
                        query_type="range",
                        contention_factor=0,
                        range_opts=PymongoRangeOpts(min=0, max=1_000_000, sparsity=1),
                    )
                message = str(wrapped.value)
            finally:
                pce.close()
    assert "must be {'$and': [...]}" in message
    assert str(SECRET) not in message
