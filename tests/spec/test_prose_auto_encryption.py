"""The specification's prose tests of automatic encryption (client-side-encryption/README.md):
4 (BSON size limits and batch splitting), 9 (deadlock tests), 14 (decryption events), and the
client-side-operations-timeout rules for automatic encryption, on pymongo's MongoClient with
mongocrypt's ``AutoEncryptionOpts(query_analysis="embedded")`` (no mongocryptd, no crypt_shared),
against SecantusDB (or MONGODB_URI) and the session's KMS peers.

SecantusDB refuses to store ``$jsonSchema`` validators that use the ``encrypt`` keyword. Where the
spec creates a collection with such a validator, prose 4 gives the schema in ``schema_map``; prose
9, whose expectations include the ``listCollections`` that fetches the schema, completes the reply
of that (real, monitored) listCollections with the validator the server refused (see
``stored_validators``). Each adaptation is said where it is made.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import bson
import pymongo
import pytest
from bson import Binary
from pymongo import InsertOne
from pymongo.errors import (
    AutoReconnect,
    DocumentTooLarge,
    EncryptionError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
    TopologyListener,
    TopologyOpenedEvent,
)
from pymongo.write_concern import WriteConcern

from conftest import SPEC_LOCAL_KEY, present
from helpers.peers.process import free_port
from mongocrypt import Algorithm, ClientEncryption, DataKeyOpts, EncryptOpts
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.errors import MongoCryptTimeoutError
from mongocrypt.events import EncryptionEventListener, KmsRequestStarted

DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
MIB = 1024 * 1024
LOCAL_PROVIDERS = {"local": {"key": SPEC_LOCAL_KEY}}
KEYVAULT = "keyvault.datakeys"

# --- The spec's data, inlined -------------------------------------------------------------------

#: ``_id`` of the spec's local data key ("LOCALAAAAAAAAAAAAAAAAA==", UUID subtype 4).
SPEC_KEY_ID = Binary(base64.b64decode("LOCALAAAAAAAAAAAAAAAAA=="), 4)
_SPEC_KEY_DATE = datetime.datetime.fromtimestamp(1557827033.449, tz=datetime.timezone.utc)
#: client-side-encryption/limits/limits-key.json (client-side-encryption/external/external-key.json
#: is the same document): the local data key wrapped with SPEC_LOCAL_KEY, alt name "local".
SPEC_DATA_KEY: dict[str, Any] = {
    "status": 1,
    "_id": SPEC_KEY_ID,
    "masterKey": {"provider": "local"},
    "updateDate": _SPEC_KEY_DATE,
    "keyMaterial": Binary(
        base64.b64decode(
            "Ce9HSz/HKKGkIt4uyy+jDuKGA+rLC2cycykMo6vc8jXxqa1UVDYHWq1r+vZKbnnSRBfB981akzRKZCFpC05C"
            "TyFqDhXv6OnMjpG97OZEREGIsHEYiJkBW0jJJvfLLgeLsEpBzsro9FztGGXASxyxFRZFhXvHxyiLOKrdWfs7X"
            "1O/iK3pEoHMx6uSNSfUOgbebLfIqW7TO++iQS5g1xovXA=="
        ),
        0,
    ),
    "creationDate": _SPEC_KEY_DATE,
    "keyAltNames": ["local"],
}
_SPEC_ENCRYPT = {"keyId": [SPEC_KEY_ID], "bsonType": "string", "algorithm": DETERMINISTIC}
#: client-side-encryption/limits/limits-schema.json: the properties "00" to "99", each encrypted
#: deterministically as a string with the spec's local key.
LIMITS_SCHEMA: dict[str, Any] = {
    "properties": {f"{i:02d}": {"encrypt": dict(_SPEC_ENCRYPT)} for i in range(100)},
    "bsonType": "object",
}
#: client-side-encryption/limits/limits-doc.json: "00" to "99", each the string "a" (1005 bytes of
#: BSON that encrypt to about 10 kB).
LIMITS_DOC: dict[str, Any] = {f"{i:02d}": "a" for i in range(100)}
#: client-side-encryption/external/external-schema.json.
EXTERNAL_SCHEMA: dict[str, Any] = {
    "properties": {"encrypted": {"encrypt": dict(_SPEC_ENCRYPT)}},
    "bsonType": "object",
}


# --- Helpers ------------------------------------------------------------------------------------


class Commands(CommandListener):
    """Every command event, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.events.append(event)

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self.events.append(event)

    def failed(self, event: CommandFailedEvent) -> None:
        self.events.append(event)

    def started_events(self) -> list[CommandStartedEvent]:
        return [e for e in self.events if isinstance(e, CommandStartedEvent)]

    def clear(self) -> None:
        self.events.clear()


class Topologies(TopologyListener):
    """Records TopologyOpenedEvents: one per MongoClient that gets going (the spec's count)."""

    def __init__(self) -> None:
        self.opened_events: list[TopologyOpenedEvent] = []

    def opened(self, event: TopologyOpenedEvent) -> None:
        self.opened_events.append(event)

    def description_changed(self, event: Any) -> None: ...

    def closed(self, event: Any) -> None: ...


def closed_port() -> str:
    """A mongocryptd URI where nothing listens. pymongo builds a mongocryptd client (connect=False)
    for every auto-encrypting client; with the embedded analyzer it must never be used, and an
    operation that needed it would fail on server selection here."""
    return f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=1000"


def embedded_opts(**kwargs: Any) -> AutoEncryptionOpts:
    """The spec's AutoEncryptionOpts (local provider, keyvault.datakeys), embedded analysis."""
    kwargs.setdefault("kms_providers", LOCAL_PROVIDERS)
    kwargs.setdefault("key_vault_namespace", KEYVAULT)
    return AutoEncryptionOpts(
        query_analysis="embedded",
        mongocryptd_uri=closed_port(),
        mongocryptd_bypass_spawn=True,
        **kwargs,
    )


# --- Prose 4: BSON Size Limits and Batch Splitting ----------------------------------------------


@pytest.fixture
def limits(mongodb_uri: str) -> Iterator[pymongo.MongoClient[Any]]:
    """Setup steps 1, 2 and 4 with ``client``: db.coll and keyvault.datakeys (the limits key)."""
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        hello = client.admin.command("hello")
        if hello["maxBsonObjectSize"] != 16 * MIB:
            pytest.skip(
                f"the sizes assume maxBsonObjectSize 16 MiB, not {hello['maxBsonObjectSize']}"
            )
        assert hello["maxMessageSizeBytes"] >= 48_000_000
        client.db.drop_collection("coll")
        # Step 2 creates db.coll with limits-schema.json as its $jsonSchema validator: SecantusDB
        # refuses the `encrypt` keyword, so the collection is created bare and the same schema is
        # the encrypted client's schema_map (what is encrypted, and every size, is unchanged).
        client.db.create_collection("coll")
        client.keyvault.drop_collection("datakeys")
        client.keyvault.datakeys.insert_one(SPEC_DATA_KEY)
        yield client
        client.db.drop_collection("coll")
        client.keyvault.drop_collection("datakeys")


def with_limits_doc(_id: str, unencrypted: str) -> dict[str, Any]:
    """limits-doc.json concatenated with ``{"_id": ..., "unencrypted": ...}``."""
    return {**LIMITS_DOC, "_id": _id, "unencrypted": unencrypted}


@pytest.mark.requirement("CSE-SIZE-01", "CSE-SIZE-02", "CSE-SIZE-03")
def test_prose_4_bson_size_limits_and_batch_splitting(
    mongodb_uri: str, limits: pymongo.MongoClient[Any]
) -> None:
    commands = Commands()
    # Step 5: client_encrypted, local provider with the spec's master key, keyvault.datakeys.
    options = embedded_opts(schema_map={"db.coll": LIMITS_SCHEMA})
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=options, event_listeners=[commands]
    ) as client_encrypted:
        coll = client_encrypted.db.coll

        def inserts() -> list[CommandStartedEvent]:
            found = [e for e in commands.started_events() if e.command_name == "insert"]
            commands.clear()
            return found

        # 1. Just over 2 MiB, far under 16 MiB: succeeds.
        coll.insert_one({"_id": "over_2mib_under_16mib", "unencrypted": "a" * (2 * MIB)})
        assert len(inserts()) == 1

        # 2. Under 2 MiB before encryption, over it after (but under 16 MiB): succeeds.
        coll.insert_one(with_limits_doc("encryption_exceeds_2mib", "a" * (2 * MIB - 2000)))
        sent = inserts()
        assert len(sent) == 1
        stored = present(limits.db.coll.find_one({"_id": "encryption_exceeds_2mib"}))
        assert all(isinstance(stored[k], Binary) and stored[k].subtype == 6 for k in LIMITS_DOC)
        assert len(bson.encode(stored)) > 2 * MIB

        # 3. bulkWrite of two documents over 2 MiB: split after the first (two inserts).
        coll.bulk_write(
            [
                InsertOne({"_id": "over_2mib_1", "unencrypted": "a" * (2 * MIB)}),
                InsertOne({"_id": "over_2mib_2", "unencrypted": "a" * (2 * MIB)}),
            ]
        )
        sent = inserts()
        assert [[d["_id"] for d in e.command["documents"]] for e in sent] == [
            ["over_2mib_1"],
            ["over_2mib_2"],
        ]

        # 4. bulkWrite of two documents over 2 MiB only once encrypted: split after the first.
        coll.bulk_write(
            [
                InsertOne(with_limits_doc("encryption_exceeds_2mib_1", "a" * (2 * MIB - 2000))),
                InsertOne(with_limits_doc("encryption_exceeds_2mib_2", "a" * (2 * MIB - 2000))),
            ]
        )
        sent = inserts()
        assert [[d["_id"] for d in e.command["documents"]] for e in sent] == [
            ["encryption_exceeds_2mib_1"],
            ["encryption_exceeds_2mib_2"],
        ]

        # 5. Just under maxBsonObjectSize: succeeds.
        coll.insert_one({"_id": "under_16mib", "unencrypted": "a" * (16 * MIB - 2000)})
        assert len(inserts()) == 1

        # 6. Over maxBsonObjectSize once encrypted: fails (driver-side, or code 2 / 10334 from
        # the server if the write is sent).
        with pytest.raises((DocumentTooLarge, WriteError, OperationFailure)) as info:
            coll.insert_one(with_limits_doc("encryption_exceeds_16mib", "a" * (16 * MIB - 2000)))
        if isinstance(info.value, OperationFailure):  # WriteError is one too
            assert info.value.code in (2, 10334), info.value
        assert limits.db.coll.find_one({"_id": "encryption_exceeds_16mib"}) is None

    assert limits.db.coll.count_documents({}) == 7


@pytest.mark.requirement("CSE-SIZE-04")
def test_prose_4_bson_size_limits_max_write_batch_size(
    mongodb_uri: str, limits: pymongo.MongoClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optional part: with maxWriteBatchSize mocked to 1, two small documents are two
    inserts. pymongo takes maxWriteBatchSize from the server's hello, so hello is what is mocked."""
    from pymongo.hello import Hello

    monkeypatch.setattr(Hello, "max_write_batch_size", property(lambda self: 1))
    commands = Commands()
    options = embedded_opts(schema_map={"db.coll": LIMITS_SCHEMA})
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=options, event_listeners=[commands]
    ) as client_encrypted:
        client_encrypted.db.coll.insert_many([{"_id": "a"}, {"_id": "b"}])
    sent = [e for e in commands.started_events() if e.command_name == "insert"]
    assert [[d["_id"] for d in e.command["documents"]] for e in sent] == [["a"], ["b"]]


def test_prose_4_bson_size_limits_client_bulk_write_qe() -> None:
    """Steps 3 (db.coll2) and 7-8 need MongoDB 8.0+ with Queryable Encryption."""
    pytest.skip(
        "prose 4 setup step 3 and steps 7-8: SecantusDB reports 8.2 but refuses encryptedFields "
        "(no server-side Queryable Encryption), and pymongo's MongoClient.bulk_write raises "
        "'does not currently support automatic encryption'"
    )


# --- Prose 9: Deadlock Tests --------------------------------------------------------------------


@pytest.fixture
def stored_validators(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """``{"db.coll": validator}``, added to the listCollections replies the automatic encrypter
    reads, as a server that stored the validator returns them.

    The spec creates db.coll with external-schema.json as its ``$jsonSchema`` validator, and its
    expectations count the listCollections that fetches it. SecantusDB refuses the ``encrypt``
    keyword, and a schema_map would make libmongocrypt skip listCollections (dropping those
    expectations). So the listCollections is still sent, by whichever client pymongo picks, and
    monitored; only its reply gets the validator the server would have stored.
    """
    from pymongo.synchronous.encryption import _EncryptionIO

    validators: dict[str, dict[str, Any]] = {}
    original = _EncryptionIO.collection_info

    def collection_info(self: Any, database: str, filter: bytes) -> Optional[list[bytes]]:
        infos = original(self, database, filter)
        completed = []
        for raw in infos or []:
            info = bson.decode(raw)
            validator = validators.get(f"{database}.{info['name']}")
            if validator is not None:
                assert not info.get("options", {}).get("validator")
                info.setdefault("options", {})["validator"] = validator
            completed.append(bson.encode(info))
        return completed

    monkeypatch.setattr(_EncryptionIO, "collection_info", collection_info)
    return validators


@dataclass
class DeadlockSetup:
    client_test: pymongo.MongoClient[Any]
    client_keyvault: pymongo.MongoClient[Any]
    keyvault_commands: Commands
    ciphertext: Binary


@pytest.fixture
def deadlock(
    mongodb_uri: str, stored_validators: dict[str, dict[str, Any]]
) -> Iterator[DeadlockSetup]:
    keyvault_commands = Commands()
    with (
        pymongo.MongoClient[Any](mongodb_uri) as client_test,
        pymongo.MongoClient[Any](
            mongodb_uri, maxPoolSize=1, event_listeners=[keyvault_commands]
        ) as client_keyvault,
    ):
        client_test.keyvault.drop_collection("datakeys")
        client_test.db.drop_collection("coll")
        client_test.keyvault.get_collection(
            "datakeys", write_concern=WriteConcern(w="majority")
        ).insert_one(SPEC_DATA_KEY)
        # {"create": "coll", "validator": {"$jsonSchema": external-schema.json}}: refused by
        # SecantusDB, so db.coll is created bare and listCollections replies carry the validator.
        client_test.db.create_collection("coll")
        stored_validators["db.coll"] = {"$jsonSchema": EXTERNAL_SCHEMA}
        with ClientEncryption(LOCAL_PROVIDERS, KEYVAULT, client_test) as client_encryption:
            ciphertext = client_encryption.encrypt(
                "string0", EncryptOpts(Algorithm.DETERMINISTIC, key_alt_name="local")
            )
        keyvault_commands.clear()
        yield DeadlockSetup(client_test, client_keyvault, keyvault_commands, ciphertext)
        client_test.db.drop_collection("coll")
        client_test.keyvault.drop_collection("datakeys")


@dataclass(frozen=True)
class DeadlockCase:
    max_pool_size: Optional[int]
    bypass_auto_encryption: bool
    key_vault_client: bool
    #: (command, database, issuer): issuer "encrypted" (client_encrypted itself) or "internal"
    #: (the internal client pymongo makes from it, which shares its listeners).
    encrypted_events: list[tuple[str, str, str]]
    keyvault_events: list[tuple[str, str]]
    clients: int


ENC, INT = "encrypted", "internal"
# The spec's "MaxPoolSize: 0" is an unlimited pool. pymongo documents both maxPoolSize=0 and None
# as unlimited, but only None makes it skip the internal client (its _get_internal_client tests
# `max_pool_size is None`), as pymongo's own deadlock tests do: None stands for the spec's 0.
DEADLOCK_CASES = {
    1: DeadlockCase(
        1,
        False,
        False,
        [
            ("listCollections", "db", INT),
            ("find", "keyvault", INT),
            ("insert", "db", ENC),
            ("find", "db", ENC),
        ],
        [],
        2,
    ),
    2: DeadlockCase(
        1,
        False,
        True,
        [("listCollections", "db", INT), ("insert", "db", ENC), ("find", "db", ENC)],
        [("find", "keyvault")],
        2,
    ),
    # The spec says "three CommandStartedEvent" for cases 3 and 7 but lists two: the two listed.
    3: DeadlockCase(1, True, False, [("find", "db", ENC), ("find", "keyvault", INT)], [], 2),
    4: DeadlockCase(1, True, True, [("find", "db", ENC)], [("find", "keyvault")], 1),
    5: DeadlockCase(
        None,
        False,
        False,
        [
            ("listCollections", "db", ENC),
            ("listCollections", "keyvault", ENC),
            ("find", "keyvault", ENC),
            ("insert", "db", ENC),
            ("find", "db", ENC),
        ],
        [],
        1,
    ),
    6: DeadlockCase(
        None,
        False,
        True,
        [("listCollections", "db", ENC), ("insert", "db", ENC), ("find", "db", ENC)],
        [("find", "keyvault")],
        1,
    ),
    7: DeadlockCase(None, True, False, [("find", "db", ENC), ("find", "keyvault", ENC)], [], 1),
    8: DeadlockCase(None, True, True, [("find", "db", ENC)], [("find", "keyvault")], 1),
}


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.requirement(
    "CSE-AEO-02",
    "CSE-AUTO-02",
    "CSE-KVC-01",
    "CSE-KVC-02",
    "CSE-KVC-03",
    "CSE-KVC-04",
    "CSE-KVC-05",
    "CSE-KVC-06",
    "CSE-KVC-07",
)
@pytest.mark.parametrize("case", sorted(DEADLOCK_CASES), ids=lambda n: f"case_{n}")
def test_prose_9_deadlock_tests(mongodb_uri: str, deadlock: DeadlockSetup, case: int) -> None:
    spec = DEADLOCK_CASES[case]
    commands = Commands()
    topologies = Topologies()
    # The spec's mongocryptd is not there at all: the embedded analyzer marks commands in-process.
    # pymongo still builds its mongocryptd client (connect=False, none of our listeners, so it is
    # not in the count, as in the spec); embedded_opts points it where nothing listens, so the
    # operations succeeding shows it had no part. Everything else is the spec's.
    options = embedded_opts(
        bypass_auto_encryption=spec.bypass_auto_encryption,
        key_vault_client=deadlock.client_keyvault if spec.key_vault_client else None,
    )
    with pymongo.MongoClient[Any](
        mongodb_uri,
        maxPoolSize=spec.max_pool_size,
        auto_encryption_opts=options,
        event_listeners=[commands, topologies],
    ) as client_encrypted:
        if spec.bypass_auto_encryption:
            deadlock.client_test.db.coll.insert_one({"_id": 0, "encrypted": deadlock.ciphertext})
        else:
            client_encrypted.db.coll.insert_one({"_id": 0, "encrypted": "string0"})
        assert client_encrypted.db.coll.find_one({"_id": 0}) == {"_id": 0, "encrypted": "string0"}
        started = commands.started_events()
        keyvault_started = deadlock.keyvault_commands.started_events()
        wait_for(lambda: len(topologies.opened_events) >= spec.clients)
        # Which client sent each command: with maxPoolSize 1 each client has one connection, so the
        # server's connection id tells client_encrypted's commands from its internal client's
        # (the only other client with these listeners). With an unlimited pool there is one client.
        own = client_encrypted.admin.command("hello")["connectionId"]
        internal = getattr(client_encrypted._encrypter, "_internal_client", None)

    def issuer(event: CommandStartedEvent) -> str:
        if spec.max_pool_size is None:
            return ENC
        return ENC if event.server_connection_id == own else INT

    assert [(e.command_name, e.database_name, issuer(e)) for e in started] == spec.encrypted_events
    assert [(e.command_name, e.database_name) for e in keyvault_started] == spec.keyvault_events
    for event in started + keyvault_started:
        if event.command_name == "find" and event.database_name == "keyvault":
            assert event.command["find"] == "datakeys"
        if event.command_name == "listCollections":
            assert event.command["filter"]["name"] == (
                "coll" if event.database_name == "db" else "datakeys"
            )
    # ExpectedNumberOfClients, as the spec counts them: TopologyOpenedEvents.
    assert len(topologies.opened_events) == spec.clients
    assert (internal is not None) == (spec.clients == 2)
    assert len({e.topology_id for e in topologies.opened_events}) == spec.clients


# --- Prose 14: Decryption Events ----------------------------------------------------------------


class AggregateEvents(CommandListener):
    """The most recent CommandSucceededEvent reply and CommandFailedEvent error of "aggregate"."""

    def __init__(self) -> None:
        self.succeeded_reply: Optional[Mapping[str, Any]] = None
        self.failure: Optional[Any] = None

    def started(self, event: CommandStartedEvent) -> None: ...

    def succeeded(self, event: CommandSucceededEvent) -> None:
        if event.command_name == "aggregate":
            self.succeeded_reply = event.reply

    def failed(self, event: CommandFailedEvent) -> None:
        if event.command_name == "aggregate":
            self.failure = event.failure


@dataclass
class DecryptionEvents:
    setup_client: pymongo.MongoClient[Any]
    encrypted_client: pymongo.MongoClient[Any]
    listener: AggregateEvents
    ciphertext: Binary
    malformed_ciphertext: Binary


@contextlib.contextmanager
def decryption_events_setup(uri: str) -> Iterator[DecryptionEvents]:
    """Prose 14's test setup, on ``uri``."""
    listener = AggregateEvents()
    with pymongo.MongoClient[Any](uri) as setup_client:
        setup_client.keyvault.drop_collection("datakeys")
        setup_client.db.drop_collection("decryption_events")
        setup_client.db.create_collection("decryption_events")
        with ClientEncryption(LOCAL_PROVIDERS, KEYVAULT, setup_client) as client_encryption:
            key_id = client_encryption.create_data_key("local", DataKeyOpts())
            ciphertext = client_encryption.encrypt(
                "hello", EncryptOpts(Algorithm.DETERMINISTIC, key_id=key_id)
            )
        malformed = bytearray(ciphertext)
        malformed[-1] ^= 0xFF  # a different last byte: an invalid HMAC tag
        try:
            with pymongo.MongoClient[Any](
                uri,
                auto_encryption_opts=embedded_opts(),
                retryReads=False,
                event_listeners=[listener],
            ) as encrypted_client:
                yield DecryptionEvents(
                    setup_client,
                    encrypted_client,
                    listener,
                    ciphertext,
                    Binary(bytes(malformed), 6),
                )
        finally:
            setup_client.db.drop_collection("decryption_events")
            setup_client.keyvault.drop_collection("datakeys")


@contextlib.contextmanager
def fail_point(client: pymongo.MongoClient[Any], data: dict[str, Any]) -> Iterator[None]:
    client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": data})
    try:
        yield
    finally:
        client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def test_prose_14_decryption_events_case_1_command_error(failpoint_uri: str) -> None:
    with decryption_events_setup(failpoint_uri) as setup:
        data = {"errorCode": 123, "failCommands": ["aggregate"]}
        with fail_point(setup.setup_client, data), pytest.raises(OperationFailure) as info:
            list(setup.encrypted_client.db.decryption_events.aggregate([]))
        assert info.value.code == 123
        assert isinstance(setup.listener.failure, dict) and setup.listener.failure["code"] == 123
        assert setup.listener.succeeded_reply is None


def test_prose_14_decryption_events_case_2_network_error(failpoint_uri: str) -> None:
    with decryption_events_setup(failpoint_uri) as setup:
        data = {"errorCode": 123, "closeConnection": True, "failCommands": ["aggregate"]}
        with fail_point(setup.setup_client, data), pytest.raises(AutoReconnect):
            list(setup.encrypted_client.db.decryption_events.aggregate([]))
        assert setup.listener.failure is not None
        assert setup.listener.succeeded_reply is None


def test_prose_14_decryption_events_case_3_decrypt_error(mongodb_uri: str) -> None:
    with decryption_events_setup(mongodb_uri) as setup:
        coll = setup.encrypted_client.db.decryption_events
        coll.insert_one({"encrypted": setup.malformed_ciphertext})
        with pytest.raises(EncryptionError, match="HMAC validation failure"):
            list(coll.aggregate([]))
        assert setup.listener.failure is None
        reply = setup.listener.succeeded_reply
        assert reply is not None
        encrypted = reply["cursor"]["firstBatch"][0]["encrypted"]
        assert isinstance(encrypted, Binary) and encrypted.subtype == 6
        assert bytes(encrypted) == bytes(setup.malformed_ciphertext)


def test_prose_14_decryption_events_case_4_decrypt_success(mongodb_uri: str) -> None:
    with decryption_events_setup(mongodb_uri) as setup:
        coll = setup.encrypted_client.db.decryption_events
        coll.insert_one({"encrypted": setup.ciphertext})
        assert [d["encrypted"] for d in coll.aggregate([])] == ["hello"]
        assert setup.listener.failure is None
        reply = setup.listener.succeeded_reply
        assert reply is not None
        encrypted = reply["cursor"]["firstBatch"][0]["encrypted"]
        assert isinstance(encrypted, Binary) and encrypted.subtype == 6
        assert bytes(encrypted) == bytes(setup.ciphertext)


# --- Client-side operations timeout: automatic encryption against a stalled KMS ------------------


class KmsStarts(EncryptionEventListener):
    def __init__(self) -> None:
        self.endpoints: list[str] = []

    def kms_request_started(self, event: KmsRequestStarted) -> None:
        self.endpoints.append(event.endpoint)


@pytest.fixture
def stalled_key(mongodb_uri: str, kms_setup: Any, black_hole: str) -> Iterator[dict[str, Any]]:
    """A key vault holding an "aws:mock" data key whose masterKey endpoint never answers.

    Creating a key against a stalled KMS cannot succeed, so a real key is created against the
    cloud KMS mock and its document is stored again under a new _id with the black hole as the
    masterKey endpoint: decrypting that key (to encrypt with it) stalls at the KMS.
    """
    name = f"csot_{uuid.uuid4().hex[:8]}"
    namespace = f"{name}.keys"
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        with ClientEncryption(
            kms_setup.providers, namespace, client, kms_tls_options=kms_setup.tls_options
        ) as client_encryption:
            real_id = client_encryption.create_data_key(
                "aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"])
            )
        keys = client[name].keys
        document = present(keys.find_one({"_id": real_id}))
        document["_id"] = Binary.from_uuid(uuid.uuid4())
        document["masterKey"]["endpoint"] = black_hole
        keys.insert_one(document)
        schema = {
            "bsonType": "object",
            "properties": {
                "secret": {
                    "encrypt": {
                        "keyId": [document["_id"]],
                        "bsonType": "string",
                        "algorithm": DETERMINISTIC,
                    }
                }
            },
        }
        yield {
            "db": name,
            "namespace": namespace,
            "schema_map": {f"{name}.people": schema},
            "black_hole": black_hole,
            "plain": client,
        }
        client.drop_database(name)


def is_timeout(error: BaseException) -> bool:
    """pymongo's own notion: EncryptionError.timeout is True because its cause, mongocrypt's
    MongoCryptTimeoutError, is a pymongo error that says it is a timeout."""
    cause = getattr(error, "cause", None)
    return (
        isinstance(error, PyMongoError)
        and error.timeout
        and isinstance(cause, MongoCryptTimeoutError)
    )


def insert_within_budget(
    uri: str, options: AutoEncryptionOpts, db: str, budget: str
) -> tuple[BaseException, float]:
    """The auto-encrypted insert under ``budget``: the error it raised and the seconds it took."""
    document = {"_id": 1, "secret": "457-55-5462"}
    if budget == "async timeoutMS":

        async def scenario() -> tuple[BaseException, float]:
            client: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(
                uri, auto_encryption_opts=options, timeoutMS=1000
            )
            try:
                started = time.monotonic()
                with pytest.raises(EncryptionError) as info:
                    await client[db].people.insert_one(document)
                return info.value, time.monotonic() - started
            finally:
                await client.close()

        return asyncio.run(scenario())
    extra: dict[str, Any] = {"timeoutMS": 1000} if budget == "timeoutMS" else {}
    with pymongo.MongoClient[Any](uri, auto_encryption_opts=options, **extra) as client:
        started = time.monotonic()
        with pytest.raises(EncryptionError) as info:
            if budget == "timeoutMS":
                client[db].people.insert_one(document)
            else:
                with pymongo.timeout(1.0):
                    client[db].people.insert_one(document)
        return info.value, time.monotonic() - started


@pytest.mark.requirement("CSE-CSOT-01", "CSE-CSOT-02")
@pytest.mark.parametrize("budget", ["timeoutMS", "pymongo.timeout", "async timeoutMS"])
def test_csot_auto_encryption_times_out_on_a_stalled_kms(
    mongodb_uri: str, kms_setup: Any, stalled_key: dict[str, Any], budget: str
) -> None:
    """CSOT for client-side encryption: the KMS request that an auto-encrypted insert needs runs
    within the operation's timeoutMS (client option, or ``pymongo.timeout()``; sync and asyncio
    clients), and the operation fails with a timeout error when the KMS never answers. Without a
    budget the KMS exchange would wait 10 s per step (and be retried), so failing in about a
    second shows the budget applies."""
    listener = KmsStarts()
    options = AutoEncryptionOpts(
        kms_setup.providers,
        stalled_key["namespace"],
        schema_map=stalled_key["schema_map"],
        kms_tls_options=kms_setup.tls_options,
        query_analysis="embedded",
        mongocryptd_uri=closed_port(),
        mongocryptd_bypass_spawn=True,
        event_listeners=[listener],
    )
    error, elapsed = insert_within_budget(mongodb_uri, options, stalled_key["db"], budget)
    assert is_timeout(error), repr(getattr(error, "cause", error))
    assert 0.5 <= elapsed < 4.0, elapsed
    assert stalled_key["black_hole"] in listener.endpoints
    assert stalled_key["plain"][stalled_key["db"]].people.count_documents({}) == 0


@pytest.mark.requirement("CSE-CSOT-02")
@pytest.mark.parametrize("step", ["listCollections", "key vault find", "mongocryptd"])
def test_csot_auto_encryption_bounds_each_step(
    failpoint_uri: str, black_hole: str, step: str
) -> None:
    """The other steps of automatic encryption run within timeoutMS too: a server holding the
    listCollections (schema) or the key-vault find for 3 s, or a mongocryptd that never answers,
    fails the insert with a timeout well before then."""
    database = f"csot_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient[Any](failpoint_uri) as plain:
        with ClientEncryption(LOCAL_PROVIDERS, f"{database}.keys", plain) as client_encryption:
            key_id = client_encryption.create_data_key("local")
        encrypt = {"keyId": [key_id], "bsonType": "string", "algorithm": DETERMINISTIC}
        schema = {"bsonType": "object", "properties": {"secret": {"encrypt": encrypt}}}
        options: dict[str, Any] = {"query_analysis": "embedded", "mongocryptd_uri": closed_port()}
        if step == "listCollections":
            plain[database].create_collection("people", validator={"$jsonSchema": {}})
        else:
            options["schema_map"] = {f"{database}.people": schema}
        if step == "mongocryptd":
            options = {**options, "query_analysis": "mongocryptd", "mongocryptd_uri": black_hole}
        opts = AutoEncryptionOpts(
            LOCAL_PROVIDERS, f"{database}.keys", mongocryptd_bypass_spawn=True, **options
        )
        blocked = {"listCollections": ["listCollections"], "key vault find": ["find"]}.get(step)
        try:
            if blocked:
                plain.admin.command(
                    "configureFailPoint",
                    "failCommand",
                    mode="alwaysOn",
                    data={"failCommands": blocked, "blockConnection": True, "blockTimeMS": 3000},
                )
            with pymongo.MongoClient[Any](
                failpoint_uri, auto_encryption_opts=opts, timeoutMS=500
            ) as c:
                started = time.monotonic()
                with pytest.raises(PyMongoError) as raised:
                    c[database].people.insert_one({"secret": "457-55-5462"})
                elapsed = time.monotonic() - started
        finally:
            plain.admin.command("configureFailPoint", "failCommand", mode="off")
            plain.drop_database(database)
    # A key-vault timeout arrives wrapped in KeyVaultError, which pymongo's EncryptionError.timeout
    # does not see through (issue 14 item 13): the timeout is looked for along the causes.
    error: Optional[BaseException] = raised.value
    while error is not None and not getattr(error, "timeout", False):
        error = error.__cause__
    assert error is not None, repr(raised.value)
    assert elapsed < 2.5, elapsed


@pytest.mark.requirement("CSE-KCB-05")
def test_csot_auto_encryption_passes_the_remaining_timeout_to_kms_connect_callback(
    mongodb_uri: str, kms_setup: Any, stalled_key: dict[str, Any]
) -> None:
    """ "Drivers supporting CSOT MUST pass remaining timeoutMS" to the kmsConnectCallback (spec,
    kmsConnectCallback): under timeoutMS=1000 each call gets a positive timeout of at most 1 s."""
    timeouts: list[float] = []

    def connect(context: Any) -> socket.socket:
        timeouts.append(context.timeout)
        return socket.create_connection((context.host, context.port), context.timeout)

    options = AutoEncryptionOpts(
        kms_setup.providers,
        stalled_key["namespace"],
        schema_map=stalled_key["schema_map"],
        kms_tls_options=kms_setup.tls_options,
        query_analysis="embedded",
        mongocryptd_uri=closed_port(),
        mongocryptd_bypass_spawn=True,
        kms_connect_callback=connect,
    )
    error, elapsed = insert_within_budget(mongodb_uri, options, stalled_key["db"], "timeoutMS")
    assert is_timeout(error), repr(getattr(error, "cause", error))
    assert elapsed < 4.0
    assert timeouts and all(0 < t <= 1.0 for t in timeouts), timeouts


# --- Prose 3: External Key Vault ----------------------------------------------------------------


@pytest.fixture
def external_key(mongodb_uri: str) -> Iterator[pymongo.MongoClient[Any]]:
    """Steps 1 and 2: db.coll dropped, keyvault.datakeys holding external-key.json."""
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        client.db.drop_collection("coll")
        client.keyvault.drop_collection("datakeys")
        client.keyvault.datakeys.with_options(write_concern=WriteConcern(w="majority")).insert_one(
            SPEC_DATA_KEY
        )
        yield client
        client.db.drop_collection("coll")
        client.keyvault.drop_collection("datakeys")


def authentication_failed(error: BaseException) -> bool:
    """Whether the server's authentication failure (code 18) is ``error`` or behind it."""
    seen: Optional[BaseException] = error
    while seen is not None:
        if isinstance(seen, OperationFailure) and seen.code == 18:
            return True
        seen = getattr(seen, "cause", None) or seen.__cause__
    return False


@pytest.mark.requirement("CSE-AEO-02")
@pytest.mark.parametrize("with_external_key_vault", [False, True], ids=["internal", "external"])
def test_prose_3_external_key_vault(
    mongodb_uri: str, external_key: pymongo.MongoClient[Any], with_external_key_vault: bool
) -> None:
    host = mongodb_uri.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    with contextlib.ExitStack() as stack:
        external: Optional[pymongo.MongoClient[Any]] = None
        if with_external_key_vault:
            # Even a server started without --auth refuses a user it does not know (code 18).
            external = stack.enter_context(
                pymongo.MongoClient(f"mongodb://fake-user:fake-pwd@{host}/")
            )
        client_encrypted = stack.enter_context(
            pymongo.MongoClient[Any](
                mongodb_uri,
                auto_encryption_opts=embedded_opts(
                    key_vault_client=external, schema_map={"db.coll": EXTERNAL_SCHEMA}
                ),
            )
        )
        client_encryption = stack.enter_context(
            ClientEncryption(LOCAL_PROVIDERS, KEYVAULT, external or external_key)
        )
        deterministic = EncryptOpts(Algorithm.DETERMINISTIC, key_id=SPEC_KEY_ID)
        if with_external_key_vault:
            with pytest.raises(Exception) as inserting:
                client_encrypted.db.coll.insert_one({"encrypted": "test"})
            assert authentication_failed(inserting.value), repr(inserting.value)
            with pytest.raises(Exception) as encrypting:
                client_encryption.encrypt("test", deterministic)
            assert authentication_failed(encrypting.value), repr(encrypting.value)
        else:
            client_encrypted.db.coll.insert_one({"encrypted": "test"})
            stored = external_key.db.coll.find_one()
            assert stored is not None and isinstance(stored["encrypted"], Binary)
            ciphertext = client_encryption.encrypt("test", deterministic)
            assert ciphertext == stored["encrypted"]


# --- Prose 5: Views Are Prohibited --------------------------------------------------------------


@pytest.mark.requirement("CSE-AUTO-07")
def test_prose_5_views_are_prohibited(mongodb_uri: str) -> None:
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        client.db.drop_collection("view")
        client.db.command({"create": "view", "viewOn": "coll"})
        try:
            with (
                pymongo.MongoClient[Any](
                    mongodb_uri, auto_encryption_opts=embedded_opts()
                ) as encrypted,
                pytest.raises(EncryptionError, match="cannot auto encrypt a view"),
            ):
                encrypted.db.view.insert_one({"x": 1})
        finally:
            client.db.drop_collection("view")


# --- Prose 8: Bypass Spawning mongocryptd -------------------------------------------------------
# Each case names our mongocryptd-compatible daemon as the spawn path, on a free port: had pymongo
# spawned it, it would answer there. (The "via loading shared library" case needs crypt_shared.)

CRYPTD_SCRIPT = str(Path(sys.executable).parent / "mongocrypt-cryptd")


def assert_nothing_answers(port: int) -> None:
    """Step 3: a handshake on the port fails with a server selection timeout."""
    uri = f"mongodb://localhost:{port}/?serverSelectionTimeoutMS=1000"
    with pymongo.MongoClient[Any](uri) as probe, pytest.raises(ServerSelectionTimeoutError):
        probe.admin.command("hello")


def spawning_opts(port: int, pidfile: Path, **kwargs: Any) -> AutoEncryptionOpts:
    kwargs.setdefault("query_analysis", "mongocryptd")
    return AutoEncryptionOpts(
        LOCAL_PROVIDERS,
        KEYVAULT,
        mongocryptd_spawn_path=CRYPTD_SCRIPT,
        mongocryptd_spawn_args=[f"--pidfilepath={pidfile}", f"--port={port}"],
        **kwargs,
    )


@pytest.mark.requirement("CSE-CRYPTD-01", "CSE-CRYPTD-10", "CSE-XOPT-02")
def test_prose_8_bypass_spawning_via_mongocryptd_bypass_spawn(
    mongodb_uri: str, external_key: pymongo.MongoClient[Any], tmp_path: Path
) -> None:
    port = free_port()
    opts = spawning_opts(
        port,
        tmp_path / "bypass-spawning-mongocryptd.pid",
        schema_map={"db.coll": EXTERNAL_SCHEMA},
        mongocryptd_bypass_spawn=True,
        mongocryptd_uri=f"mongodb://localhost:{port}/?serverSelectionTimeoutMS=1000",
    )
    with (
        pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=opts) as client_encrypted,
        pytest.raises(EncryptionError) as raised,
    ):
        client_encrypted.db.coll.insert_one({"encrypted": "test"})
    assert f"localhost:{port}" in str(raised.value)
    assert_nothing_answers(port)
    assert not (tmp_path / "bypass-spawning-mongocryptd.pid").exists()


@pytest.mark.requirement("CSE-AEO-05", "CSE-AEO-08", "CSE-CRYPTD-01")
@pytest.mark.parametrize(
    "bypass",
    [
        {"bypass_auto_encryption": True},
        {"bypass_query_analysis": True},
        {"query_analysis": "none"},  # mongocrypt's name for bypass_query_analysis
    ],
    ids=["bypass_auto_encryption", "bypass_query_analysis", "query_analysis_none"],
)
def test_prose_8_bypass_spawning_via_bypass_options(
    mongodb_uri: str, external_key: pymongo.MongoClient[Any], tmp_path: Path, bypass: Any
) -> None:
    """The spec's steps, then: replies are still decrypted."""
    port = free_port()
    opts = spawning_opts(port, tmp_path / "bypass-spawning-mongocryptd.pid", **bypass)
    with ClientEncryption(LOCAL_PROVIDERS, KEYVAULT, external_key) as client_encryption:
        ciphertext = client_encryption.encrypt(
            "test", EncryptOpts(Algorithm.DETERMINISTIC, key_id=SPEC_KEY_ID)
        )
    with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=opts) as client_encrypted:
        client_encrypted.db.coll.insert_one({"_id": 1, "unencrypted": "test"})
        external_key.db.coll.insert_one({"_id": 2, "encrypted": ciphertext})
        decrypted = client_encrypted.db.coll.find_one({"_id": 2})
    assert external_key.db.coll.find_one({"_id": 1}) == {"_id": 1, "unencrypted": "test"}
    assert decrypted == {"_id": 2, "encrypted": "test"}
    assert_nothing_answers(port)
    assert not (tmp_path / "bypass-spawning-mongocryptd.pid").exists()
