"""mongocrypt.AutoEncryptionOpts on pymongo's MongoClient / AsyncMongoClient: the encryption I/O
runs through mongocrypt (events, credential providers, connect callback), decryption follows the
command-monitoring rules, and the options fail early and clearly."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from bson import Binary
from pymongo.errors import EncryptionError

from conftest import present
from helpers.peers.http_proxy import ConnectProxy
from helpers.peers.process import free_port
from mongocrypt import (
    Algorithm,
    ClientEncryption,
    DataKeyOpts,
    EncryptOpts,
    MongoCryptError,
    cryptd,
)
from mongocrypt.analysis import _hello
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.events import EncryptionEventListener, KeyVaultOperationStarted, KmsRequestSucceeded
from mongocrypt.io.proxy import HttpProxyConnect


class Recorder(EncryptionEventListener):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def kms_request_succeeded(self, event: Any) -> None:
        self.events.append(event)

    key_vault_operation_started = kms_request_succeeded


class Commands(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.log: list[tuple[str, str, Any]] = []

    def started(self, event: Any) -> None:
        self.log.append(("started", event.command_name, event.command))

    def succeeded(self, event: Any) -> None:
        self.log.append(("succeeded", event.command_name, event.reply))

    def failed(self, event: Any) -> None:
        self.log.append(("failed", event.command_name, None))


@pytest.fixture
def stored(mongodb_uri: str, kms_setup: Any) -> Iterator[dict[str, Any]]:
    """A key vault and a collection holding one explicitly encrypted document (aws:mock key)."""
    name = f"auto_{uuid.uuid4().hex[:8]}"
    with (
        pymongo.MongoClient[Any](mongodb_uri) as client,
        ClientEncryption(
            kms_setup.providers, f"{name}.keys", client, kms_tls_options=kms_setup.tls_options
        ) as ce,
    ):
        key_id = ce.create_data_key("aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
        secret = ce.encrypt("457-55-5462", EncryptOpts(Algorithm.DETERMINISTIC, key_id=key_id))
        client[name].people.insert_one({"_id": 1, "ssn": secret})
        yield {"db": name, "namespace": f"{name}.keys", "secret": secret, "key_id": key_id}
        client.drop_database(name)


def opts(kms_setup: Any, stored: dict[str, Any], **extra: Any) -> AutoEncryptionOpts:
    extra.setdefault("kms_tls_options", kms_setup.tls_options)
    providers = extra.pop("kms_providers", kms_setup.providers)
    return AutoEncryptionOpts(providers, stored["namespace"], bypass_auto_encryption=True, **extra)


@pytest.mark.requirement("CSE-AEO-03", "CSE-AEO-07", "CSE-API-08", "CSE-AUTO-12")
@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (
            {"query_analysis": "magic"},
            ValueError,
            "query_analysis must be one of auto, mongocryptd",
        ),
        (
            {"schema_map": {"db.c": {}}, "encrypted_fields_map": {"db.c": {"fields": []}}},
            ValueError,
            "db.c is in both schema_map and encrypted_fields_map",
        ),
        (
            {"credential_providers": {"aws": lambda: {}}},
            ValueError,
            "requires kms_providers['aws']",
        ),
        ({"kms_connect_callback": 3}, TypeError, "kms_connect_callback must be callable"),
    ],
)
def test_options_fail_early(kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error) as info:
        AutoEncryptionOpts(
            {"aws": {"accessKeyId": "a", "secretAccessKey": "b"}}, "kv.keys", **kwargs
        )
    assert text in str(info.value)


def test_query_analysis_modes_set_pymongos_options() -> None:
    providers = {"local": {"key": b"k" * 96}}
    assert AutoEncryptionOpts(providers, "kv.keys", query_analysis="none")._bypass_query_analysis
    assert AutoEncryptionOpts(
        providers, "kv.keys", query_analysis="crypt_shared"
    )._crypt_shared_lib_required


@pytest.mark.requirement("CSE-AEO-01", "CSE-AEO-05", "CSE-AEO-10", "CSE-API-08", "CSE-AUTO-04")
def test_decryption_runs_through_mongocrypts_io(
    mongodb_uri: str, kms_setup: Any, stored: dict[str, Any]
) -> None:
    recorder = Recorder()
    options = opts(kms_setup, stored, event_listeners=[recorder])
    with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as client:
        assert present(client[stored["db"]].people.find_one({"_id": 1}))["ssn"] == "457-55-5462"
    kinds = {type(e) for e in recorder.events}
    assert kinds == {KmsRequestSucceeded, KeyVaultOperationStarted}
    assert all(
        e.provider == "aws:mock" for e in recorder.events if isinstance(e, KmsRequestSucceeded)
    )


@pytest.mark.requirement("CSE-AEO-11")
def test_credential_provider_and_proxy(
    mongodb_uri: str, kms_setup: Any, stored: dict[str, Any], cloud_kms: Any
) -> None:
    calls: list[int] = []

    def aws_credentials() -> dict[str, str]:
        calls.append(1)
        return {"accessKeyId": "provided", "secretAccessKey": "provided-secret"}

    proxy = ConnectProxy()
    providers = {**kms_setup.providers}
    try:
        options = opts(
            kms_setup,
            stored,
            kms_providers=providers,
            kms_connect_callback=HttpProxyConnect("127.0.0.1", proxy.port),
        )
        with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as client:
            assert present(client[stored["db"]].people.find_one({"_id": 1}))["ssn"] == "457-55-5462"
        assert proxy.tunnels == [cloud_kms.endpoint]
    finally:
        proxy.close()
    with (
        pymongo.MongoClient[Any](mongodb_uri) as plain,
        ClientEncryption(
            {"aws": {}},
            stored["namespace"],
            plain,
            credential_providers={"aws": aws_credentials},
            kms_tls_options={"aws": kms_setup.tls_options["aws:mock"]},
        ) as ce,
    ):
        key_id = ce.create_data_key("aws", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
        ciphertext = ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
    options = opts(
        kms_setup,
        stored,
        kms_providers={"aws": {}},
        credential_providers={"aws": aws_credentials},
        kms_tls_options={"aws": kms_setup.tls_options["aws:mock"]},
    )
    with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as client:
        client[stored["db"]].more.insert_one({"_id": 2, "x": ciphertext})
        assert present(client[stored["db"]].more.find_one({"_id": 2}))["x"] == "x"
    assert len(calls) >= 2


@pytest.mark.requirement("CSE-AEO-05", "CSE-APM-01", "CSE-APM-02", "CSE-AUTO-14")
def test_decryption_happens_after_the_succeeded_event(
    mongodb_uri: str, kms_setup: Any, stored: dict[str, Any]
) -> None:
    """Prose 14 cases 3 and 4 (bypass_auto_encryption): the succeeded event carries ciphertext, a
    decryption error is raised after it, and plaintext never reaches monitoring."""
    commands = Commands()
    with pymongo.MongoClient[Any](mongodb_uri) as plain:
        tampered = bytearray(stored["secret"])
        tampered[-1] ^= 1
        plain[stored["db"]].people.insert_one({"_id": 2, "ssn": Binary(bytes(tampered), 6)})
    options = opts(kms_setup, stored)
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=options, event_listeners=[commands]
    ) as client:
        people = client[stored["db"]].people
        assert present(people.find_one({"_id": 1}))["ssn"] == "457-55-5462"
        with pytest.raises(EncryptionError, match="HMAC validation failure"):
            people.find_one({"_id": 2})
    finds = [
        entry
        for entry in commands.log
        if entry[1] == "find" and (entry[0] != "started" or entry[2]["find"] == "people")
    ]
    finds = [f for i, f in enumerate(finds) if f[0] == "started" or finds[i - 1][0] == "started"]
    assert [kind for kind, _, _ in finds] == ["started", "succeeded", "started", "succeeded"]
    for _, _, reply in finds[1::2]:
        document = reply["cursor"]["firstBatch"][0]
        assert isinstance(document["ssn"], Binary) and document["ssn"].subtype == 6
    assert "457-55-5462" not in repr(commands.log)


def test_async_mongo_client(mongodb_uri: str, kms_setup: Any, stored: dict[str, Any]) -> None:
    recorder = Recorder()

    async def scenario() -> Any:
        options = opts(kms_setup, stored, event_listeners=[recorder])
        client: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(
            mongodb_uri, auto_encryption_opts=options
        )
        try:
            return await client[stored["db"]].people.find_one({"_id": 1})
        finally:
            await client.close()

    assert asyncio.run(scenario())["ssn"] == "457-55-5462"
    assert any(isinstance(e, KmsRequestSucceeded) for e in recorder.events)


@pytest.mark.requirement("CSE-CRYPTD-02", "CSE-XOPT-06")
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # pymongo leaks its half-built client
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_crypt_shared_mode_requires_the_library(
    mongodb_uri: str, kms_setup: Any, stored: dict[str, Any]
) -> None:
    options = AutoEncryptionOpts(
        {"local": {"key": b"k" * 96}}, stored["namespace"], query_analysis="crypt_shared"
    )
    with pytest.raises(Exception, match="crypt_shared"):
        pymongo.MongoClient(mongodb_uri, auto_encryption_opts=options)


@pytest.mark.requirement(
    "CSE-AEO-06",
    "CSE-QE-02",
    "CSE-QE-03",
    "CSE-QE-04",
    "CSE-QE-06",
    "CSE-QE-07",
    "CSE-QE-08",
    "CSE-QE-12",
)
def test_queryable_encryption_create_and_drop_helpers(mongodb_uri: str) -> None:
    """With encrypted_fields_map, create_collection makes the ESC and ECOC state collections
    (clustered on _id), then the data collection with encryptedFields; drop removes all three.
    SecantusDB refuses encryptedFields on create: there the sequence is checked up to it."""
    import os

    commands = Commands()
    fields = {"fields": [{"path": "ssn", "bsonType": "string", "keyId": Binary(os.urandom(16), 4)}]}
    database = f"qe_{uuid.uuid4().hex[:6]}"
    options = AutoEncryptionOpts(
        {"local": {"key": os.urandom(96)}},
        "kv.keys",
        encrypted_fields_map={f"{database}.people": fields},
        query_analysis="none",
    )
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=options, event_listeners=[commands]
    ) as client:
        try:
            client[database].create_collection("people")
            created = True
        except pymongo.errors.OperationFailure as exc:
            assert "encryptedFields" in str(exc)  # SecantusDB: no server-side QE
            created = False
        client[database].drop_collection("people")
        client.drop_database(database)
    started = [(name, command) for kind, name, command in commands.log if kind == "started"]
    creates = [c for n, c in started if n == "create"]
    assert [c["create"] for c in creates] == ["enxcol_.people.esc", "enxcol_.people.ecoc", "people"]
    for state in creates[:2]:
        index = state["clusteredIndex"]
        assert dict(index["key"]) == {"_id": 1} and index["unique"] is True
    assert creates[2]["encryptedFields"]["fields"][0]["path"] == "ssn"
    if created:
        indexes = [c for n, c in started if n == "createIndexes"]
        assert indexes and dict(indexes[0]["indexes"][0]["key"]) == {"__safeContent__": 1}
    drops = [c["drop"] for n, c in started if n == "drop"]
    assert drops == ["enxcol_.people.esc", "enxcol_.people.ecoc", "people"]


def _qe_fields() -> dict[str, Any]:
    return {
        "fields": [{"path": "ssn", "bsonType": "string", "keyId": Binary(uuid.uuid4().bytes, 4)}]
    }


def _started(commands: Commands, name: str) -> list[Any]:
    return [command for kind, n, command in commands.log if kind == "started" and n == name]


@pytest.mark.requirement("CSE-QE-05")
def test_state_collections_are_created_without_looking_in_the_map(mongodb_uri: str) -> None:
    """An encrypted_fields_map entry for the ESC's own namespace is not used for it: the state
    collections are plain clustered collections, with no state collections of their own."""
    database = f"qe_{uuid.uuid4().hex[:6]}"
    options = AutoEncryptionOpts(
        {"local": {"key": b"\x01" * 96}},
        "kv.keys",
        encrypted_fields_map={
            f"{database}.people": _qe_fields(),
            f"{database}.enxcol_.people.esc": _qe_fields(),
            f"{database}.enxcol_.people.ecoc": _qe_fields(),
        },
        query_analysis="none",
    )
    commands = Commands()
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=options, event_listeners=[commands]
    ) as client:
        with contextlib.suppress(pymongo.errors.OperationFailure):  # SecantusDB: no encryptedFields
            client[database].create_collection("people")
        client.drop_database(database)
    creates = _started(commands, "create")
    assert [c["create"] for c in creates] == ["enxcol_.people.esc", "enxcol_.people.ecoc", "people"]
    assert ["encryptedFields" in c for c in creates] == [False, False, True]


@pytest.mark.requirement("CSE-QE-07", "CSE-QE-08")
@pytest.mark.parametrize("helper", ["database", "collection"])
def test_drop_helpers_take_encrypted_fields(mongodb_uri: str, helper: str) -> None:
    """With no encrypted_fields_map, an ``encrypted_fields`` option given to either drop helper
    drops the state collections too, and is not sent in the ``drop`` command."""
    database = f"qe_{uuid.uuid4().hex[:6]}"
    options = AutoEncryptionOpts({"local": {"key": b"\x01" * 96}}, "kv.keys", query_analysis="none")
    commands = Commands()
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=options, event_listeners=[commands]
    ) as client:
        for name in ("enxcol_.people.esc", "enxcol_.people.ecoc", "people"):
            client[database].create_collection(name)
        if helper == "database":
            client[database].drop_collection("people", encrypted_fields=_qe_fields())
        else:
            client[database].people.drop(encrypted_fields=_qe_fields())
        left = client[database].list_collection_names()
        client.drop_database(database)
    drops = _started(commands, "drop")
    assert [d["drop"] for d in drops] == ["enxcol_.people.esc", "enxcol_.people.ecoc", "people"]
    assert not any("encryptedFields" in d for d in drops)
    assert left == []


@pytest.mark.requirement("CSE-CACHE-04")
def test_each_client_and_client_encryption_keeps_its_own_key_cache(mongodb_uri: str) -> None:
    """One handle (and key cache) per MongoClient: its second decryption fetches no key; another
    MongoClient, or another ClientEncryption, fetches the key again."""
    database = f"cache_{uuid.uuid4().hex[:6]}"
    providers = {"local": {"key": b"\x02" * 96}}
    auto_vault, explicit_vault = Commands(), Commands()

    def key_finds(commands: Commands) -> int:
        return len([c for c in _started(commands, "find") if c["find"] == "keys"])

    with (
        pymongo.MongoClient[Any](mongodb_uri) as plain,
        pymongo.MongoClient[Any](mongodb_uri, event_listeners=[auto_vault]) as auto_kv,
        pymongo.MongoClient[Any](mongodb_uri, event_listeners=[explicit_vault]) as explicit_kv,
        ClientEncryption(providers, f"{database}.keys", explicit_kv) as ce,
    ):
        key_id = ce.create_data_key("local")
        ciphertext = ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
        assert key_finds(explicit_vault) == 1
        plain[database].coll.insert_one({"v": ciphertext})
        decrypting = AutoEncryptionOpts(
            providers, f"{database}.keys", key_vault_client=auto_kv, bypass_auto_encryption=True
        )
        for expected_finds in (1, 2):  # a second MongoClient has its own handle
            with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=decrypting) as auto:
                for _ in range(2):
                    assert present(auto[database].coll.find_one())["v"] == "x"
            assert key_finds(auto_vault) == expected_finds
        assert ce.decrypt(ciphertext) == "x" and key_finds(explicit_vault) == 1
        with ClientEncryption(providers, f"{database}.keys", explicit_kv) as other:
            assert other.decrypt(ciphertext) == "x"
        assert key_finds(explicit_vault) == 2
        plain.drop_database(database)


@pytest.mark.requirement("CSE-ERR-03", "CSE-LMC-06")
def test_libmongocrypt_errors_reach_the_user_as_encryption_errors(mongodb_uri: str) -> None:
    """A ciphertext whose HMAC does not verify: ClientEncryption raises MongoCryptError, and an
    auto-decrypting MongoClient raises pymongo's EncryptionError around it, both with
    libmongocrypt's message."""
    database = f"errors_{uuid.uuid4().hex[:6]}"
    providers = {"local": {"key": b"\x03" * 96}}
    with (
        pymongo.MongoClient[Any](mongodb_uri) as plain,
        ClientEncryption(providers, f"{database}.keys", plain) as ce,
    ):
        key_id = ce.create_data_key("local")
        ciphertext = ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
        tampered = Binary(ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), 6)
        with pytest.raises(MongoCryptError, match="HMAC validation failure"):
            ce.decrypt(tampered)
        plain[database].coll.insert_one({"v": tampered})
        decrypting = AutoEncryptionOpts(providers, f"{database}.keys", bypass_auto_encryption=True)
        with (
            pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=decrypting) as auto,
            pytest.raises(EncryptionError, match="HMAC validation failure") as raised,
        ):
            auto[database].coll.find_one()
        assert isinstance(raised.value.cause, MongoCryptError)
        plain.drop_database(database)


@pytest.mark.requirement("CSE-QE-04")
@pytest.mark.parametrize("max_wire_version", [20, 21])
def test_queryable_encryption_create_checks_the_wire_version_first(
    monkeypatch: pytest.MonkeyPatch, max_wire_version: int
) -> None:
    """Step (a) of the create helper: a server whose maxWireVersion is below 21 is refused with
    the spec's message before any collection is created; from 21 on the helper goes ahead. The
    server is our mongocryptd-compatible daemon answering hello with that wire version."""
    monkeypatch.setattr(_hello, "MAX_WIRE_VERSION", max_wire_version)
    port = free_port()
    ready = threading.Event()
    serving = threading.Thread(target=cryptd.serve, args=(["127.0.0.1"], port, 3.0, ready))
    serving.daemon = True
    serving.start()
    assert ready.wait(5)
    options = AutoEncryptionOpts(
        {"local": {"key": b"\x01" * 96}},
        "kv.keys",
        encrypted_fields_map={"db.people": _qe_fields()},
        query_analysis="none",
    )
    commands = Commands()
    with pymongo.MongoClient[Any](
        f"mongodb://127.0.0.1:{port}/", auto_encryption_opts=options, event_listeners=[commands]
    ) as client:
        if max_wire_version < 21:
            with pytest.raises(pymongo.errors.ConfigurationError) as raised:
                client.db.create_collection("people", check_exists=False)
            assert str(raised.value).startswith(
                "Driver support of Queryable Encryption is incompatible with server. "
                "Upgrade server to use Queryable Encryption."
            )
        else:
            with contextlib.suppress(pymongo.errors.PyMongoError):  # the daemon creates nothing
                client.db.create_collection("people", check_exists=False)
    creates = [c["create"] for c in _started(commands, "create")]
    assert creates == ([] if max_wire_version < 21 else ["enxcol_.people.esc"])


@pytest.mark.requirement("CSE-API-06")
def test_extra_options_is_an_open_map(mongodb_uri: str, tmp_path: Any) -> None:
    """The spec's extraOptions keys configure mongocryptd (here: where to spawn it, on which port,
    and that spawning is bypassed, so the insert fails on that port and nothing was spawned);
    a key this version does not know is accepted; a key given twice is refused."""
    port = free_port()
    known = {
        "mongocryptdURI": f"mongodb://localhost:{port}",
        "mongocryptdBypassSpawn": True,
        "mongocryptdSpawnArgs": [f"--port={port}", f"--pidfilepath={tmp_path / 'pid'}"],
        "someFutureOption": {"any": "value"},
    }
    schema = {
        "bsonType": "object",
        "properties": {
            "x": {
                "encrypt": {"keyId": [Binary(uuid.uuid4().bytes, 4)], "algorithm": Algorithm.RANDOM}
            }
        },
    }
    options = AutoEncryptionOpts(
        {"local": {"key": b"\x01" * 96}},
        "kv.keys",
        schema_map={"db.coll": schema},
        query_analysis="mongocryptd",
        extra_options=known,
    )
    with (
        pymongo.MongoClient[Any](
            mongodb_uri, auto_encryption_opts=options, timeoutMS=1000
        ) as client,
        pytest.raises(EncryptionError, match=f"localhost:{port}"),
    ):
        client.db.coll.insert_one({"x": 1})
    assert not (tmp_path / "pid").exists()
    with pytest.raises(ValueError, match=r"mongocryptd_uri and extra_options\['mongocryptdURI'\]"):
        AutoEncryptionOpts(
            {"local": {"key": b"\x01" * 96}},
            "kv.keys",
            mongocryptd_uri="mongodb://localhost:1",
            extra_options={"mongocryptdURI": "mongodb://localhost:2"},
        )
    with pytest.raises(TypeError, match="extra_options must be a mapping, not list"):
        AutoEncryptionOpts({"local": {"key": b"\x01" * 96}}, "kv.keys", extra_options=[])  # type: ignore[arg-type]
