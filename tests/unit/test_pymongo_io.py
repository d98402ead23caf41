"""io/asynchronous/pymongo_io.py and its generated io/synchronous/pymongo_io.py on SecantusDB: key
reads and inserts, their events, key-vault errors as KeyVaultError, credentials, close."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import bson
import pymongo
import pytest
from pymongo.errors import OperationFailure

from mongocrypt.credentials import OnDemandCredentials
from mongocrypt.errors import KeyVaultError, MongoCryptError
from mongocrypt.events import (
    EncryptionEventListener,
    EventPublisher,
    KeyVaultOperationFailed,
    KeyVaultOperationStarted,
    KeyVaultOperationSucceeded,
)
from mongocrypt.io.key_vault import key_vault_error
from mongocrypt.io.kms import AsyncKmsTransport, KmsTransport
from mongocrypt.io.pymongo_io import AsyncPymongoIO, PymongoIO

KeyVaultEvent = KeyVaultOperationStarted | KeyVaultOperationSucceeded | KeyVaultOperationFailed


class Recorder(EncryptionEventListener):
    def __init__(self) -> None:
        self.events: list[KeyVaultEvent] = []

    def key_vault_operation_started(self, event: KeyVaultOperationStarted) -> None:
        self.events.append(event)

    def key_vault_operation_succeeded(self, event: KeyVaultOperationSucceeded) -> None:
        self.events.append(event)

    def key_vault_operation_failed(self, event: KeyVaultOperationFailed) -> None:
        self.events.append(event)


class ClosingTransport(KmsTransport):
    """A real transport that counts how often it was closed."""

    closes = 0

    def close(self) -> None:
        self.closes += 1
        super().close()


def key(*alt_names: str) -> dict[str, Any]:
    return {"_id": bson.Binary(uuid.uuid4().bytes, 4), "keyAltNames": list(alt_names)}


@pytest.fixture
def database(mongodb_uri: str) -> Iterator[str]:
    name = f"pio_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        client[name]["keys"].create_index(
            "keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}}
        )
        yield name
        client.drop_database(name)


@pytest.fixture
def collection(mongodb_uri: str, database: str) -> Iterator[Any]:
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        yield client[database]["keys"]


def test_the_key_vault_reads_and_writes_by_majority(collection: Any) -> None:
    io = PymongoIO(collection, KmsTransport())
    assert io.key_vault.read_concern.level == "majority"
    assert io.key_vault.write_concern.document == {"w": "majority"}
    assert io.namespace == f"{collection.database.name}.keys"


def test_fetch_keys_yields_the_matching_raw_keys_and_publishes(collection: Any) -> None:
    wanted, other = key("a"), key("b")
    collection.insert_many([wanted, other])
    recorder = Recorder()
    io = PymongoIO(collection, KmsTransport(), events=EventPublisher([recorder]))
    found = list(io.fetch_keys(bson.encode({"keyAltNames": {"$in": ["a"]}})))
    assert [bson.decode(raw) for raw in found] == [wanted]
    started, succeeded = recorder.events
    assert started == KeyVaultOperationStarted("find", io.namespace)
    assert isinstance(succeeded, KeyVaultOperationSucceeded)
    assert (succeeded.operation, succeeded.documents) == ("find", 1)
    assert succeeded.duration >= 0


def test_insert_data_key_stores_the_key_and_returns_its_id(collection: Any) -> None:
    document = key("new")
    recorder = Recorder()
    io = PymongoIO(collection, KmsTransport(), events=EventPublisher([recorder]))
    key_id = io.insert_data_key(bson.encode(document))
    assert key_id == document["_id"]
    assert isinstance(key_id, bson.Binary) and key_id.subtype == 4
    assert collection.find_one({"_id": key_id}) == document
    started, succeeded = recorder.events
    assert started == KeyVaultOperationStarted("insert", io.namespace)
    assert isinstance(succeeded, KeyVaultOperationSucceeded)
    assert succeeded == KeyVaultOperationSucceeded("insert", io.namespace, succeeded.duration, 1)


def test_a_server_error_becomes_a_key_vault_error_with_code_and_details(collection: Any) -> None:
    collection.insert_one(key("taken"))
    recorder = Recorder()
    io = PymongoIO(collection, KmsTransport(), events=EventPublisher([recorder]))
    with pytest.raises(KeyVaultError) as info:
        io.insert_data_key(bson.encode(key("taken")))
    error = info.value
    assert str(error).startswith(f"key vault insert on {io.namespace} failed: ")
    assert error.code == 11000
    assert error.details is not None and error.details["code"] == 11000
    assert isinstance(error.__cause__, pymongo.errors.DuplicateKeyError)
    failed = recorder.events[-1]
    assert isinstance(failed, KeyVaultOperationFailed)
    assert failed.failure.startswith("DuplicateKeyError: ")


def test_an_unreachable_key_vault_is_a_key_vault_error_without_a_code() -> None:
    with pymongo.MongoClient[Any](
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100&connectTimeoutMS=100"
    ) as client:
        io = PymongoIO(client.keyvault.datakeys, KmsTransport())
        with pytest.raises(KeyVaultError, match=r"key vault find on keyvault\.datakeys") as info:
            list(io.fetch_keys(bson.encode({})))
    assert (info.value.code, info.value.details, info.value.error_labels) == (0, None, ())


def test_error_labels_and_details_are_kept() -> None:
    details = {"ok": 0, "code": 91, "errmsg": "shutting down", "errorLabels": ["B", "A"]}
    error = key_vault_error("find", "kv.keys", OperationFailure("shutting down", 91, details))
    assert (error.code, error.details, error.error_labels) == (91, details, ("A", "B"))


def test_explicit_only_io_refuses_automatic_encryption_requests(collection: Any) -> None:
    io = PymongoIO(collection, KmsTransport())
    with pytest.raises(MongoCryptError, match="explicit encryption only: it cannot look up"):
        io.collection_info("db", bson.encode({}))
    with pytest.raises(MongoCryptError, match="explicit encryption only: it cannot mark"):
        io.mark_command("db", bson.encode({}))


def test_credentials_come_from_the_configured_source(collection: Any) -> None:
    aws = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "example"}
    io = PymongoIO(
        collection, KmsTransport(), credentials=OnDemandCredentials(aws_provider=lambda: aws)
    )
    assert io.fetch_kms_credentials(["aws"]) == {"aws": aws}


def test_close_closes_the_kms_transport(collection: Any) -> None:
    transport = ClosingTransport()
    PymongoIO(collection, transport).close()
    assert transport.closes == 1


def test_the_async_io_does_the_same_over_an_async_client(mongodb_uri: str, database: str) -> None:
    wanted = key("async")

    async def run() -> tuple[list[bytes], Any, KeyVaultError]:
        client: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(mongodb_uri)
        try:
            io = AsyncPymongoIO(client[database]["keys"], AsyncKmsTransport())
            key_id = await io.insert_data_key(bson.encode(wanted))
            found = [raw async for raw in io.fetch_keys(bson.encode({"_id": key_id}))]
            with pytest.raises(KeyVaultError) as info:
                await io.insert_data_key(bson.encode(wanted))
            await io.close()
            return found, key_id, info.value
        finally:
            await client.close()

    found, key_id, error = asyncio.run(run())
    assert key_id == wanted["_id"]
    assert [bson.decode(raw) for raw in found] == [wanted]
    assert error.code == 11000
