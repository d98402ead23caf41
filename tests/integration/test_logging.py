"""mongocrypt's own log lines (issue 15 item 7): the query-analysis mode once at INFO when a
client is built, and at DEBUG each marking, key-vault fetch, KMS request and credential fetch,
naming what was done and never a value. (tests/integration/test_secrets.py scans them for
secrets along with every other line.)"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo.encryption_options import AutoEncryptionOpts as PymongoAutoEncryptionOpts

from mongocrypt import Algorithm, AutoEncryptionOpts, ClientEncryption, DataKeyOpts, EncryptOpts
from mongocrypt._env import QUERY_ANALYSIS


@pytest.fixture
def database(mongodb_uri: str) -> Iterator[str]:
    name = f"log_{uuid.uuid4().hex[:8]}"
    yield name
    with pymongo.MongoClient(mongodb_uri) as client:
        client.drop_database(name)


def lines(caplog: pytest.LogCaptureFixture, logger: str, level: int = logging.DEBUG) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


def test_markings_and_key_fetches_at_debug_the_mode_once_at_info(
    caplog: pytest.LogCaptureFixture, mongodb_uri: str, database: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="mongocrypt")
    providers = {"local": {"key": os.urandom(96)}}
    namespace = f"{database}.keys"
    with (
        pymongo.MongoClient(mongodb_uri) as client,
        ClientEncryption(providers, namespace, client) as ce,
    ):
        key_id = ce.create_data_key("local", DataKeyOpts(key_alt_names=["logged"]))
    schema = {
        "bsonType": "object",
        "properties": {
            "ssn": {
                "encrypt": {
                    "bsonType": "string",
                    "algorithm": Algorithm.DETERMINISTIC,
                    "keyId": [key_id],
                }
            }
        },
    }
    opts = AutoEncryptionOpts(
        providers, namespace, schema_map={f"{database}.people": schema}, query_analysis="embedded"
    )
    caplog.clear()
    with pymongo.MongoClient(mongodb_uri, auto_encryption_opts=opts) as client:
        assert lines(caplog, "mongocrypt.auto_encryption", logging.INFO) == [
            "query analysis: embedded (mongocrypt's in-process analyzer; "
            "query_analysis='embedded' in AutoEncryptionOpts)"
        ]
        client[database].people.insert_one({"_id": 1, "ssn": "457-55-5462"})
        assert client[database].people.find_one({"ssn": "457-55-5462"})["_id"] == 1
    engine = lines(caplog, "mongocrypt.engine")
    assert f"marking insert on {database}.people" in engine
    assert f"marking find on {database}.people" in engine
    assert f"fetching data keys from the key vault: id {key_id.as_uuid()}" in engine
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "457-55-5462" not in everything
    assert len(lines(caplog, "mongocrypt.auto_encryption", logging.INFO)) == 1


def test_the_mode_says_where_it_came_from(
    caplog: pytest.LogCaptureFixture, mongodb_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="mongocrypt")
    providers = {"local": {"key": os.urandom(96)}}
    monkeypatch.setenv(QUERY_ANALYSIS, "embedded")
    opts = PymongoAutoEncryptionOpts(providers, "encryption.__keyVault")
    with pymongo.MongoClient(mongodb_uri, auto_encryption_opts=opts):
        pass
    monkeypatch.delenv(QUERY_ANALYSIS)
    decrypt_only = AutoEncryptionOpts(
        providers, "encryption.__keyVault", bypass_auto_encryption=True
    )
    with pymongo.MongoClient(mongodb_uri, auto_encryption_opts=decrypt_only):
        pass
    assert lines(caplog, "mongocrypt.auto_encryption", logging.INFO) == [
        f"query analysis: embedded (mongocrypt's in-process analyzer; {QUERY_ANALYSIS}=embedded)",
        "query analysis: none (bypass_auto_encryption is set: replies are decrypted only)",
    ]


def test_kms_requests_and_credential_fetches_at_debug(
    caplog: pytest.LogCaptureFixture,
    mongodb_uri: str,
    database: str,
    kms_setup: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mongocrypt")
    master_key = kms_setup.master_keys["aws"]
    host = master_key["endpoint"]
    settings = kms_setup.providers["aws"]

    def credentials() -> dict[str, Any]:
        return dict(settings)

    tls = kms_setup.tls_options
    with pymongo.MongoClient(mongodb_uri) as client:
        with ClientEncryption(
            {"aws": {}},
            f"{database}.keys",
            client,
            kms_tls_options=tls,
            credential_providers={"aws": credentials},
        ) as ce:
            key_id = ce.create_data_key("aws", DataKeyOpts(master_key))
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", str(settings["accessKeyId"]))
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", str(settings["secretAccessKey"]))
        with ClientEncryption({"aws": {}}, f"{database}.keys", client, kms_tls_options=tls) as ce:
            ce.encrypt("v", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
    engine = lines(caplog, "mongocrypt.engine")
    assert engine.count(f"KMS request to aws at {host} (attempt 1)") == 2  # wrap, then unwrap
    assert lines(caplog, "mongocrypt.credentials") == [
        "aws credentials obtained from the custom credential provider",
        "aws credentials obtained from the environment",
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert str(settings["secretAccessKey"]) not in everything
