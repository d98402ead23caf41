"""Automatic encryption with no mongocryptd and no crypt_shared: the embedded analyzer marks
commands in-process (query_analysis="embedded"), or behind mongocrypt-cryptd spawned the way
pymongo spawns mongocryptd. The server only ever stores ciphertext for encrypted fields."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from bson import Binary
from pymongo.encryption_options import AutoEncryptionOpts as PymongoAutoEncryptionOpts
from pymongo.errors import EncryptionError

from conftest import present
from helpers.peers.process import free_port
from mongocrypt import ClientEncryption, DataKeyOpts
from mongocrypt.auto_encryption import AutoEncryptionOpts

DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"


@pytest.fixture
def setup(mongodb_uri: str) -> Iterator[dict[str, Any]]:
    """A local data key and a CSFLE schema: ssn deterministic, medical random, in a fresh db."""
    name = f"embedded_{uuid.uuid4().hex[:8]}"
    providers = {"local": {"key": os.urandom(96)}}
    with (
        pymongo.MongoClient[Any](mongodb_uri) as plain,
        ClientEncryption(providers, f"{name}.keys", plain) as ce,
    ):
        key_id = ce.create_data_key("local", DataKeyOpts(key_alt_names=["people"]))
        schema = {
            "bsonType": "object",
            "properties": {
                "ssn": {
                    "encrypt": {"keyId": [key_id], "bsonType": "string", "algorithm": DETERMINISTIC}
                },
                "medical": {"encrypt": {"keyId": [key_id], "algorithm": RANDOM}},
            },
        }
        yield {
            "db": name,
            "providers": providers,
            "namespace": f"{name}.keys",
            "schema_map": {f"{name}.people": schema},
            "plain": plain,
        }
        plain.drop_database(name)


def check_crud(client: pymongo.MongoClient[Any], setup: dict[str, Any]) -> None:
    people = client[setup["db"]].people
    people.insert_many(
        [
            {"_id": 1, "name": "Ada", "ssn": "457-55-5462", "medical": {"allergies": ["nuts"]}},
            {"_id": 2, "name": "Alan", "ssn": "123-45-6789", "medical": {"allergies": []}},
        ]
    )
    raw = setup["plain"][setup["db"]].people.find_one({"_id": 1})
    for field in ("ssn", "medical"):
        assert isinstance(raw[field], Binary) and raw[field].subtype == 6
    assert raw["name"] == "Ada"
    found = present(people.find_one({"ssn": "457-55-5462"}))
    assert found["_id"] == 1 and found["medical"] == {"allergies": ["nuts"]}
    assert [d["_id"] for d in people.find({"ssn": {"$in": ["123-45-6789", "000-00-0000"]}})] == [2]
    assert people.count_documents({"ssn": "457-55-5462"}) == 1
    people.update_one({"ssn": "123-45-6789"}, {"$set": {"ssn": "999-99-9999"}})
    assert setup["plain"][setup["db"]].people.find_one({"_id": 2})["ssn"].subtype == 6
    assert present(people.find_one({"_id": 2}))["ssn"] == "999-99-9999"
    assert [d["_id"] for d in people.aggregate([{"$match": {"ssn": "999-99-9999"}}])] == [2]
    assert people.delete_one({"ssn": "999-99-9999"}).deleted_count == 1
    with pytest.raises(EncryptionError):  # a random field cannot be compared: refused, not sent
        people.find_one({"medical": {"allergies": ["nuts"]}})


@pytest.mark.requirement("CSE-AEO-04", "CSE-AUTO-01", "CSE-AUTO-03", "CSE-LMC-02")
def test_embedded_crud(mongodb_uri: str, setup: dict[str, Any]) -> None:
    options = AutoEncryptionOpts(
        setup["providers"],
        setup["namespace"],
        schema_map=setup["schema_map"],
        query_analysis="embedded",
    )
    with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as client:
        check_crud(client, setup)


def test_environment_opt_in_for_unchanged_pymongo_code(
    mongodb_uri: str, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGOCRYPT_QUERY_ANALYSIS", "embedded")
    options = PymongoAutoEncryptionOpts(
        setup["providers"], setup["namespace"], schema_map=setup["schema_map"]
    )
    with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as client:
        check_crud(client, setup)


@pytest.mark.requirement("CSE-CRYPTD-01", "CSE-CRYPTD-13", "CSE-KVC-08")
def test_spawned_daemon_end_to_end(mongodb_uri: str, setup: dict[str, Any], tmp_path: Path) -> None:
    """pymongo spawns mongocrypt-cryptd in place of mongocryptd, connects, and gets markings."""
    port = free_port()
    pid_file = tmp_path / "cryptd.pid"
    script = Path(sys.executable).parent / "mongocrypt-cryptd"
    if not script.exists():
        pytest.skip("needs the installed mongocrypt-cryptd console script")
    options = AutoEncryptionOpts(
        setup["providers"],
        setup["namespace"],
        schema_map=setup["schema_map"],
        query_analysis="mongocryptd",
        mongocryptd_uri=f"mongodb://127.0.0.1:{port}",
        mongocryptd_spawn_path=str(script),
        mongocryptd_spawn_args=[
            f"--port={port}",
            f"--pidfilepath={pid_file}",
            "--idleShutdownTimeoutSecs=5",
        ],
    )
    with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as client:
        check_crud(client, setup)
    assert pid_file.exists()
    os.kill(int(pid_file.read_text()), 15)
