"""The analyzer as libmongocrypt's markings callback, end to end with local keys: libmongocrypt
accepts every marking shape, encrypts it, and no plaintext of an encrypted field is left."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from mongocrypt.analysis import mark_command
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import AutoEncrypter, MongoCryptOptions, has_string_algorithm
from mongocrypt.io.memory import InMemoryIO

DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
RAW = CodecOptions(uuid_representation=bson.binary.UuidRepresentation.UNSPECIFIED)


class AnalyzerIO(InMemoryIO):
    """An in-memory key vault whose markings come from the embedded analyzer."""

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        return mark_command(database, cmd)


class Vault:
    def __init__(self) -> None:
        self.io = AnalyzerIO()
        self.providers = {"local": {"key": os.urandom(96)}}
        explicit = ExplicitEncrypter(
            self.io, MongoCryptOptions(self.providers, bypass_encryption=True)
        )
        self.keys = [
            Binary(bytes(explicit.create_data_key("local", key_alt_names=[f"key{i}"])), 4)
            for i in range(6)
        ]

    def encrypter(self, **options: Any) -> AutoEncrypter:
        return AutoEncrypter(
            self.io,
            MongoCryptOptions(self.providers, crypt_shared_lib_search_paths=[], **options),
        )


@pytest.fixture(scope="module")
def vault() -> Vault:
    return Vault()


def encrypt(encrypter: AutoEncrypter, command: dict[str, Any]) -> dict[str, Any]:
    return bson.decode(encrypter.encrypt("db", bson.encode(command)), codec_options=RAW)


def blobs(value: Any) -> Iterator[Binary]:
    """Every BinData 6 value in ``value``."""
    if isinstance(value, Binary) and value.subtype == 6:
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from blobs(item)
    elif isinstance(value, list):
        for item in value:
            yield from blobs(item)


def kinds(value: Any) -> list[int]:
    """The first bytes (blob subtypes) of every BinData 6 value, in document order."""
    return [blob[0] for blob in blobs(value)]


def csfle_schema(vault: Vault) -> dict[str, Any]:
    k = vault.keys
    return {
        "db.people": {
            "bsonType": "object",
            "properties": {
                "ssn": {
                    "encrypt": {"keyId": [k[0]], "bsonType": "string", "algorithm": DETERMINISTIC}
                },
                "notes": {"encrypt": {"keyId": [k[1]], "algorithm": RANDOM}},
                "secret": {"encrypt": {"keyId": "/keyName", "algorithm": RANDOM}},
                "address": {
                    "bsonType": "object",
                    "properties": {
                        "zip": {
                            "encrypt": {
                                "keyId": [k[2]],
                                "bsonType": "int",
                                "algorithm": DETERMINISTIC,
                            }
                        }
                    },
                },
            },
        }
    }


def test_csfle_insert_encrypts_every_encrypted_field_and_decrypts_back(vault: Vault) -> None:
    encrypter = vault.encrypter(schema_map=csfle_schema(vault))
    document = {
        "_id": 1,
        "ssn": "457-55-5462",
        "notes": ["a", {"b": 1}],
        "keyName": "key3",
        "secret": "s3cr3t",
        "address": {"zip": 12345, "city": "Paris"},
    }
    sent = encrypt(encrypter, {"insert": "people", "documents": [document], "ordered": True})
    stored = sent["documents"][0]
    assert kinds(stored) == [
        1,
        2,
        2,
        1,
    ]  # deterministic, random, random (pointer key), deterministic
    assert stored["address"]["city"] == "Paris" and stored["keyName"] == "key3"
    raw = bson.encode(sent)
    for plaintext in (b"457-55-5462", b"s3cr3t"):
        assert plaintext not in raw
    reply = {"cursor": {"firstBatch": [stored], "id": Int64(0), "ns": "db.people"}, "ok": 1.0}
    decrypted = bson.decode(encrypter.decrypt(bson.encode(reply)))
    assert decrypted["cursor"]["firstBatch"][0] == document


def test_csfle_queries_send_the_ciphertext_a_deterministic_insert_stores(vault: Vault) -> None:
    encrypter = vault.encrypter(schema_map=csfle_schema(vault))
    inserted = encrypt(encrypter, {"insert": "people", "documents": [{"ssn": "1", "x": 1}]})
    ciphertext = inserted["documents"][0]["ssn"]
    found = encrypt(
        encrypter,
        {"find": "people", "filter": {"ssn": {"$in": ["2", "1"]}, "address.zip": 75001}},
    )
    assert found["filter"]["$and"][0]["ssn"]["$in"][0] == ciphertext
    assert kinds(found["filter"]) == [1, 1, 1]
    counted = encrypt(encrypter, {"count": "people", "query": {"ssn": "1"}})
    assert counted["query"] == {"ssn": {"$eq": ciphertext}}
    aggregated = encrypt(
        encrypter,
        {
            "aggregate": "people",
            "pipeline": [
                {"$match": {"ssn": "1"}},
                {"$project": {"ssn": 1, "flag": {"$eq": ["$ssn", "1"]}}},
            ],
            "cursor": {},
        },
    )
    assert aggregated["pipeline"][0] == {"$match": {"ssn": {"$eq": ciphertext}}}
    assert aggregated["pipeline"][1]["$project"]["flag"] == {"$eq": ["$ssn", ciphertext]}


def test_csfle_updates_deletes_and_find_and_modify(vault: Vault) -> None:
    encrypter = vault.encrypter(schema_map=csfle_schema(vault))
    updated = encrypt(
        encrypter,
        {
            "update": "people",
            "updates": [
                {"q": {"ssn": "1"}, "u": {"$set": {"notes": "n", "address": {"zip": 1}}}},
                {"q": {"_id": 2}, "u": {"ssn": "2", "x": 1}, "upsert": True},
            ],
        },
    )
    assert [kinds(u) for u in updated["updates"]] == [[1, 2, 1], [1]]
    deleted = encrypt(encrypter, {"delete": "people", "deletes": [{"q": {"ssn": "1"}, "limit": 1}]})
    assert kinds(deleted) == [1]
    modified = encrypt(
        encrypter,
        {"findAndModify": "people", "query": {"ssn": "1"}, "update": {"$set": {"ssn": "3"}}},
    )
    assert kinds(modified) == [1, 1]


def qe_fields(vault: Vault) -> dict[str, Any]:
    k = vault.keys
    fields: list[dict[str, Any]] = [
        {"path": "ssn", "keyId": k[0], "bsonType": "string", "queries": {"queryType": "equality"}},
        {
            "path": "age",
            "keyId": k[1],
            "bsonType": "int",
            "queries": {"queryType": "range", "min": 0, "max": 150, "sparsity": Int64(1)},
        },
        {"path": "salary", "keyId": k[2], "bsonType": "long", "queries": {"queryType": "range"}},
        {"path": "born", "keyId": k[3], "bsonType": "date", "queries": {"queryType": "range"}},
        {"path": "notes", "keyId": k[4], "bsonType": "string"},
        {
            "path": "score",
            "keyId": k[5],
            "bsonType": "double",
            "queries": {"queryType": "range", "min": 0.0, "max": 100.0, "precision": 1},
        },
    ]
    return {"db.people": {"fields": fields}}


def test_queryable_encryption_floating_point_ranges(vault: Vault) -> None:
    k = vault.keys
    fields = [
        {"path": "d", "keyId": k[0], "bsonType": "double", "queries": {"queryType": "range"}},
        {"path": "m", "keyId": k[1], "bsonType": "decimal", "queries": {"queryType": "range"}},
        {
            "path": "p",
            "keyId": k[2],
            "bsonType": "decimal",
            "queries": {
                "queryType": "range",
                "min": Decimal128("0"),
                "max": Decimal128("1000"),
                "precision": 2,
            },
        },
    ]
    encrypter = vault.encrypter(encrypted_fields_map={"db.people": {"fields": fields}})
    inserted = encrypt(
        encrypter,
        {
            "insert": "people",
            "documents": [{"d": 1.5, "m": Decimal128("2.5"), "p": Decimal128("3.25")}],
        },
    )
    assert kinds(inserted["documents"]) == [11, 11, 11]
    found = encrypt(
        encrypter,
        {
            "find": "people",
            "filter": {
                "d": {"$gt": -2.5, "$lte": 7.0},
                "m": {"$lt": Decimal128("9")},
                "p": Decimal128("3.25"),
            },
        },
    )
    assert kinds(found["filter"]) == [13, 13, 13, 13, 13]


def test_queryable_encryption_insert_and_queries(vault: Vault) -> None:
    encrypter = vault.encrypter(encrypted_fields_map=qe_fields(vault))
    born = datetime.datetime(1990, 5, 17, tzinfo=datetime.timezone.utc)
    inserted = encrypt(
        encrypter,
        {
            "insert": "people",
            "documents": [
                {
                    "_id": 1,
                    "ssn": "1",
                    "age": 30,
                    "salary": Int64(5),
                    "born": born,
                    "notes": "n",
                    "score": 12.5,
                }
            ],
        },
    )
    assert kinds(inserted["documents"]) == [11, 11, 11, 11, 16, 11]
    assert "encryptionInformation" in inserted
    found = encrypt(
        encrypter,
        {
            "find": "people",
            "filter": {
                "ssn": "1",
                "age": {"$gte": 18, "$lt": 65},
                "salary": {"$gt": 3},
                "born": {"$lte": born},
                "score": {"$gte": 2.5},
            },
        },
    )
    assert kinds(found["filter"]) == [12, 13, 13, 13, 13, 13]
    assert encrypt(encrypter, {"find": "people", "filter": {"age": {"$in": [1, 2]}}})
    updated = encrypt(
        encrypter,
        {"update": "people", "updates": [{"q": {"age": 30}, "u": {"$set": {"ssn": "2"}}}]},
    )
    assert kinds(updated["updates"]) == [13, 13, 11]
    deleted = encrypt(encrypter, {"delete": "people", "deletes": [{"q": {"ssn": "2"}, "limit": 1}]})
    assert kinds(deleted["deletes"]) == [12]
    aggregated = encrypt(
        encrypter,
        {
            "aggregate": "people",
            "pipeline": [{"$match": {"ssn": "2", "age": {"$gt": 5}}}],
            "cursor": {},
        },
    )
    assert kinds(aggregated["pipeline"]) == [12, 13]


@pytest.mark.skipif(not has_string_algorithm, reason="text search needs libmongocrypt >= 1.15")
def test_queryable_encryption_text_search(vault: Vault) -> None:
    text = {
        "path": "name",
        "keyId": vault.keys[5],
        "bsonType": "string",
        "queries": [
            {
                "queryType": "prefix",
                "strMinQueryLength": 2,
                "strMaxQueryLength": 10,
                "caseSensitive": True,
                "diacriticSensitive": True,
            },
            {
                "queryType": "suffix",
                "strMinQueryLength": 2,
                "strMaxQueryLength": 10,
                "caseSensitive": True,
                "diacriticSensitive": True,
            },
        ],
    }
    encrypter = vault.encrypter(encrypted_fields_map={"db.people": {"fields": [text]}})
    inserted = encrypt(encrypter, {"insert": "people", "documents": [{"name": "Alice"}]})
    assert kinds(inserted["documents"]) == [11]
    found = encrypt(
        encrypter,
        {
            "aggregate": "people",
            "pipeline": [
                {"$match": {"$expr": {"$encStrStartsWith": {"input": "$name", "prefix": "Al"}}}}
            ],
            "cursor": {},
        },
    )
    assert kinds(found["pipeline"]) == [18]


def test_bulk_write_with_queryable_encryption(vault: Vault) -> None:
    encrypter = vault.encrypter(encrypted_fields_map=qe_fields(vault))
    command = {
        "bulkWrite": 1,
        "ops": [{"insert": 0, "document": {"ssn": "1"}}, {"insert": 0, "document": {"age": 3}}],
        "nsInfo": [{"ns": "db.people"}],
    }
    sent = bson.decode(encrypter.encrypt("admin", bson.encode(command)), codec_options=RAW)
    assert kinds(sent["ops"]) == [11, 11]
