"""Secrets never escape: a full run (data keys with the local provider and the emulated AWS,
Azure, GCP and KMIP KMSs, explicit encryption of every kind, automatic decryption through
mongocrypt's AutoEncryptionOpts, rewrap, on-demand credentials, an authenticated KMS proxy, and
failures of many kinds) with DEBUG logging captured for every logger, mongocrypt's event
listeners and pymongo's command monitoring; then every log line, event, command event, repr and
str of options and of every error raised (with its causes) is scanned for key material (local
master keys, the data keys' own material, recovered by unwrapping), credentials (secret access
keys, client secrets, private keys, tokens, proxy passwords) and the plaintext values encrypted.

pymongo's command monitoring legitimately shows key documents (wrapped key material, which is
ciphertext) and explicitly encrypted values (ciphertext); the scan looks for the raw secrets and
plaintexts in every encoding they could take (text, hex, base64, bytes reprs), so ciphertext never
matches.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import bson
import pymongo
import pytest
from bson import Binary, Decimal128, Int64
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from helpers.peers.cloud_kms import AZURE_TOKEN, GCP_TOKEN
from helpers.peers.http_fake import FakeServer
from helpers.peers.http_proxy import ConnectProxy
from mongocrypt import (
    Algorithm,
    ClientEncryption,
    DataKeyOpts,
    EncryptOpts,
    MongoCryptError,
    QueryType,
    RangeOpts,
    RewrapManyDataKeyOpts,
    StringOpts,
    has_string_algorithm,
)
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.credentials import CredentialEndpoints, OnDemandCredentials, _azure
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import (
    DataKeyOptions,
    ExplicitEncryptOptions,
    MongoCrypt,
    MongoCryptOptions,
)
from mongocrypt.errors import redact
from mongocrypt.events import EncryptionEventListener
from mongocrypt.io.proxy import HttpProxyConnect


def _token(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


#: Every secret is looked for as 16-character fragments of its printed forms.
GRAM = 16


class Secrets:
    """Secret values by label, as the fragments any printing of them would contain.

    Text secrets (tokens, passwords, plaintext strings) end in random characters: their last
    16 characters are looked for. Binary secrets (keys, key material) are looked for as hex of
    every 8-byte window and base64/base64url/bytes-repr of every 12-byte window (every offset,
    so any alignment inside a larger encoded buffer matches). Numbers are looked for as digits.
    """

    def __init__(self) -> None:
        self.fragments: dict[str, str] = {}  # 16-character fragment -> label
        self.short: list[tuple[str, str]] = []  # (label, text) looked for as is

    def text(self, label: str, value: str) -> None:
        if len(value) >= GRAM:
            self.fragments[value[-GRAM:]] = label
        else:
            self.short.append((label, value))

    def number(self, label: str, value: int) -> None:
        self.short.append((label, str(value)))

    def binary(self, label: str, value: bytes) -> None:
        for i in range(len(value) - 11):
            window = value[i : i + 12]
            for form in (
                window[:8].hex(),
                window[:8].hex().upper(),
                base64.b64encode(window).decode(),
                base64.urlsafe_b64encode(window).decode(),
                repr(window)[2:-1],
            ):
                if len(form) >= GRAM:
                    self.fragments[form[:GRAM]] = label

    def leaks(self, corpus: list[tuple[str, str]]) -> list[str]:
        """``where: label: excerpt`` for every corpus entry holding a secret."""
        grams = {text[j : j + GRAM] for _, text in corpus for j in range(len(text) - GRAM + 1)}
        wanted = [(label, f) for f, label in self.fragments.items() if f in grams] + self.short
        found = []
        for where, text in corpus:
            labels: set[str] = set()
            for label, fragment in wanted:
                at = text.find(fragment)
                if at >= 0 and label not in labels:
                    labels.add(label)
                    found.append(f"{where}: {label}: ...{text[max(0, at - 120) : at + 80]}...")
        return found


class EventLog(EncryptionEventListener):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def _add(self, event: Any) -> None:
        self.events.append(event)

    kms_request_started = kms_request_succeeded = kms_request_failed = _add
    key_vault_operation_started = key_vault_operation_succeeded = _add
    key_vault_operation_failed = _add


class CommandLog(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def started(self, event: Any) -> None:
        self.events.append(("started", event.command_name, event.command))

    def succeeded(self, event: Any) -> None:
        self.events.append(("succeeded", event.command_name, event.reply))

    def failed(self, event: Any) -> None:
        self.events.append(("failed", event.command_name, event.failure))


def unwrap_local(master_key: bytes, wrapped: bytes) -> bytes:
    """Data key material from a key wrapped by a local master key (AEAD AES-256-CBC +
    HMAC-SHA-512, as libmongocrypt wraps it)."""
    iv, body, tag = wrapped[:16], wrapped[16:-32], wrapped[-32:]
    mac = hmac.new(master_key[:32], iv + body + bytes(8), hashlib.sha512).digest()[:32]
    assert hmac.compare_digest(mac, tag)
    decryptor = Cipher(algorithms.AES(master_key[32:64]), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    return padded[: -padded[-1]]


def errors_in_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    server = FakeServer()
    server.start()
    url = server.url
    endpoints = CredentialEndpoints(
        gcp_metadata=url, azure_imds=url, aws_ec2_metadata=url, aws_ecs=url, aws_sts=url
    )
    monkeypatch.setattr(
        CredentialEndpoints, "from_environment", classmethod(lambda cls, env=None: endpoints)
    )
    _azure.TOKENS.clear()
    yield server
    _azure.TOKENS.clear()
    server.stop()


def test_no_secret_or_plaintext_escapes(
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    mongodb_uri: str,
    kms_setup: Any,
    tls: Any,
    cloud_kms: Any,
    imds: FakeServer,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: pymongo, httpx, mongocrypt, everything
    found = Secrets()
    raised: list[BaseException] = []
    reprs: list[tuple[str, str]] = []

    def expect_failure(action: Callable[[], Any], *kinds: type[BaseException]) -> None:
        with pytest.raises(kinds or (MongoCryptError,)) as info:
            action()
        raised.append(info.value)

    # -- secrets ---------------------------------------------------------------------------
    local_key, local_new_key = os.urandom(96), os.urandom(96)
    found.binary("local master key", local_key)
    found.binary("local:new master key", local_new_key)
    gcp_der = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    found.binary("gcp private key", gcp_der)
    gcp_b64 = base64.b64encode(gcp_der).decode()
    found.text("gcp private key (base64)", gcp_b64[100:140])  # (also covered by the windows)
    credentials_ = {
        "aws secretAccessKey": _token("aws-secret-access-key"),
        "aws:mock secretAccessKey": _token("mock-secret-access-key"),
        "azure clientSecret": _token("azure-client-secret"),
        "proxy password": _token("proxy-password"),
        "on-demand aws secretAccessKey": _token("ondemand-secret"),
        "on-demand aws sessionToken": _token("ondemand-session-token"),
        "IMDS token in a bad reply": _token("imds-token"),
    }
    for label, value in credentials_.items():
        found.text(label, value)
    found.text("azure access token (mock KMS)", AZURE_TOKEN)
    found.text("gcp access token (mock KMS)", GCP_TOKEN)
    providers: dict[str, Any] = {
        "local": {"key": local_key},
        "local:new": {"key": local_new_key},
        "aws": {
            "accessKeyId": "AKIASECRETSCAN",
            "secretAccessKey": credentials_["aws secretAccessKey"],
        },
        "aws:mock": {
            "accessKeyId": "AKIAMOCKSCAN",
            "secretAccessKey": credentials_["aws:mock secretAccessKey"],
        },
        "azure": {
            "tenantId": "tenant",
            "clientId": "client",
            "clientSecret": credentials_["azure clientSecret"],
            "identityPlatformEndpoint": cloud_kms.endpoint,
        },
        "gcp": {
            "email": "scan@project.iam.gserviceaccount.com",
            "privateKey": gcp_b64,
            "endpoint": cloud_kms.endpoint,
        },
        "kmip": {"endpoint": kms_setup.providers["kmip"]["endpoint"]},
    }
    tls_options = kms_setup.tls_options
    master_keys = {**kms_setup.master_keys, "local:new": None}
    plaintexts = {
        "ssn": _token("ssn-457-55-5462"),
        "diagnosis": _token("diagnosis"),
        "indexed": _token("indexed-plaintext"),
        "text": _token("text-search-plaintext"),
    }
    numbers = {"salary": secrets.randbelow(10**8) + 9 * 10**8, "age": 987_654_321}
    for label, value in plaintexts.items():
        found.text(f"plaintext {label}", value)
    for label, number in numbers.items():
        found.number(f"plaintext {label}", number)

    # -- the run ---------------------------------------------------------------------------
    proxy = ConnectProxy()
    connect = HttpProxyConnect(
        "127.0.0.1", proxy.port, username="scan", password=credentials_["proxy password"]
    )
    events, commands = EventLog(), CommandLog()
    name = f"secrets_{uuid.uuid4().hex[:8]}"
    namespace = f"{name}.keys"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongodb_uri, event_listeners=[commands])
    client[name].keys.create_index(
        "keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}}
    )
    ce = ClientEncryption(
        providers,
        namespace,
        client,
        kms_tls_options=tls_options,
        kms_connect_callback=connect,
        event_listeners=[events],
    )
    try:
        keys: dict[str, Binary] = {}
        for provider in ("local", "aws", "aws:mock", "azure", "gcp", "kmip"):
            material = os.urandom(96) if provider in ("aws", "kmip") else None
            opts = DataKeyOpts(
                master_keys[provider], key_alt_names=[provider], key_material=material
            )
            reprs.append((f"DataKeyOpts for {provider}", repr(opts) + str(opts)))
            keys[provider] = ce.create_data_key(provider, opts)
            wrapped = bytes(ce.get_key(keys[provider])["keyMaterial"])
            if material is None:
                material = (
                    unwrap_local(local_key, wrapped)
                    if provider == "local"
                    else cloud_kms.unwrap(wrapped)
                )
            assert len(material) == 96
            found.binary(f"data key material ({provider})", material)

        people = client[name].people
        stored = 0
        for provider, key_id in keys.items():
            det = EncryptOpts(Algorithm.DETERMINISTIC, key_id=key_id)
            rnd = EncryptOpts(Algorithm.RANDOM, key_alt_name=provider)
            document = {
                "_id": provider,
                "ssn": ce.encrypt(plaintexts["ssn"], det),
                "record": ce.encrypt({"diagnosis": plaintexts["diagnosis"]}, rnd),
                "salary": ce.encrypt(numbers["salary"], rnd),
            }
            people.insert_one(document)
            stored += 1
            reprs.append((f"EncryptOpts {provider}", repr(det) + repr(rnd)))
        local = keys["local"]
        indexed = EncryptOpts(Algorithm.INDEXED, key_id=local, contention_factor=0)
        ranged = EncryptOpts(
            Algorithm.RANGE,
            key_id=local,
            contention_factor=0,
            range_opts=RangeOpts(min=0, max=10**9, sparsity=1, trim_factor=1),
        )
        people.insert_one(
            {
                "_id": "qe",
                "indexed": ce.encrypt(plaintexts["indexed"], indexed),
                "age": ce.encrypt(numbers["age"], ranged),
            }
        )
        query = EncryptOpts(
            Algorithm.RANGE,
            key_id=local,
            contention_factor=0,
            query_type=QueryType.RANGE,
            range_opts=RangeOpts(min=0, max=10**9, sparsity=1, trim_factor=1),
        )
        ce.encrypt_expression(
            {"$and": [{"age": {"$gte": numbers["age"]}}, {"age": {"$lt": numbers["age"] + 1}}]},
            query,
        )
        reprs.append(("range options", repr(indexed) + repr(ranged) + repr(query)))
        if has_string_algorithm:
            string_opts = StringOpts(
                case_sensitive=True,
                diacritic_sensitive=True,
                prefix={"strMinQueryLength": 2, "strMaxQueryLength": 10},
            )
            text = ce.encrypt(
                plaintexts["text"],
                EncryptOpts(
                    Algorithm.STRING, key_id=local, contention_factor=0, string_opts=string_opts
                ),
            )
            assert ce.decrypt(text) == plaintexts["text"]
            reprs.append(("StringOpts", repr(string_opts)))

        # Automatic decryption (pymongo's client, mongocrypt's options), with command monitoring.
        auto_opts = AutoEncryptionOpts(
            providers,
            namespace,
            bypass_auto_encryption=True,
            kms_tls_options=tls_options,
            kms_connect_callback=connect,
            event_listeners=[events],
        )
        reprs.append(("AutoEncryptionOpts", repr(auto_opts) + str(auto_opts)))
        with pymongo.MongoClient(
            mongodb_uri, auto_encryption_opts=auto_opts, event_listeners=[commands]
        ) as reader:
            documents = {d["_id"]: d for d in reader[name].people.find()}
            assert len(documents) == stored + 1
            for provider in keys:
                assert documents[provider]["ssn"] == plaintexts["ssn"]
                assert documents[provider]["record"] == {"diagnosis": plaintexts["diagnosis"]}
                assert documents[provider]["salary"] == numbers["salary"]
            assert documents["qe"]["indexed"] == plaintexts["indexed"]
            assert documents["qe"]["age"] == numbers["age"]
            by_ciphertext = reader[name].people.find_one(
                {
                    "ssn": ce.encrypt(
                        plaintexts["ssn"], EncryptOpts(Algorithm.DETERMINISTIC, key_id=local)
                    )
                }
            )
            assert by_ciphertext is not None and by_ciphertext["_id"] == "local"

        # Automatic encryption with the embedded analyzer: commands are marked (and logged).
        schema = {
            "bsonType": "object",
            "properties": {
                "ssn": {
                    "encrypt": {
                        "bsonType": "string",
                        "algorithm": Algorithm.DETERMINISTIC,
                        "keyId": [local],
                    }
                }
            },
        }
        marking_opts = AutoEncryptionOpts(
            providers,
            namespace,
            schema_map={f"{name}.marked": schema},
            kms_tls_options=tls_options,
            query_analysis="embedded",
        )
        with pymongo.MongoClient(mongodb_uri, auto_encryption_opts=marking_opts) as writer:
            writer[name].marked.insert_one({"_id": 1, "ssn": plaintexts["ssn"]})
            assert writer[name].marked.find_one({"ssn": plaintexts["ssn"]})["_id"] == 1

        # A wrong local master key: unwrapping the local data key fails.
        wrong = dict(providers, local={"key": os.urandom(96)})
        with ClientEncryption(wrong, namespace, client, kms_tls_options=tls_options) as bad:
            local_ssn = people.find_one({"_id": "local"})["ssn"]
            expect_failure(lambda: bad.decrypt(local_ssn))

        # Rewrap everything twice; the data survives.
        rewrap = RewrapManyDataKeyOpts("local:new")
        reprs.append(("RewrapManyDataKeyOpts", repr(rewrap)))
        assert ce.rewrap_many_data_key({}, rewrap).bulk_write_result.modified_count == len(keys)
        rewrap_aws = RewrapManyDataKeyOpts("aws:mock", master_keys["aws:mock"])
        assert ce.rewrap_many_data_key({}, rewrap_aws).bulk_write_result.modified_count == len(keys)
        with ClientEncryption(
            providers, namespace, client, kms_tls_options=tls_options, event_listeners=[events]
        ) as cold:
            assert cold.decrypt(people.find_one({"_id": "gcp"})["ssn"]) == plaintexts["ssn"]

        # -- failures ------------------------------------------------------------------------
        untrusted = dict(tls_options, azure={"tlsCAFile": str(tls.other_ca)})
        with ClientEncryption(providers, namespace, client, kms_tls_options=untrusted) as bad:
            expect_failure(lambda: bad.create_data_key("azure", DataKeyOpts(master_keys["azure"])))
        cloud_kms.set_failpoint("http", 4)
        expect_failure(lambda: ce.create_data_key("gcp", DataKeyOpts(master_keys["gcp"])))
        cloud_kms.reset()
        expect_failure(lambda: ce.create_data_key("aws", DataKeyOpts({"region": "us-east-1"})))
        expect_failure(lambda: ce.create_data_key("local", DataKeyOpts(key_alt_names=["local"])))
        expect_failure(lambda: ce.encrypt({"diagnosis": plaintexts["diagnosis"]}, det))
        expect_failure(
            lambda: ce.encrypt(
                plaintexts["ssn"], EncryptOpts(Algorithm.RANDOM, key_alt_name="none")
            )
        )
        expect_failure(lambda: ce.decrypt(Binary(b"\x01" + bytes(keys["local"]) + b"\x02" * 40, 6)))
        bad_key = os.urandom(95)
        found.binary("invalid local key", bad_key)
        expect_failure(
            lambda: MongoCrypt(MongoCryptOptions({"local": {"key": bad_key}})), ValueError
        )
        bad_gcp = _token("not-base64!private-key")
        found.text("invalid gcp private key", bad_gcp)
        expect_failure(
            lambda: MongoCrypt(
                MongoCryptOptions({"gcp": {"email": "a@b.c", "privateKey": bad_gcp}})
            )
        )
        expect_failure(
            lambda: MongoCrypt(
                MongoCryptOptions(
                    {"azure": {"tenantId": "t", "clientId": "c", "clientSecret": bad_gcp, "x": 1}}
                )
            )
        )
        refusing = ConnectProxy()
        refusing.refuse = True
        blocked = HttpProxyConnect(
            "127.0.0.1", refusing.port, username="scan", password=credentials_["proxy password"]
        )
        reprs.append(("HttpProxyConnect", repr(blocked) + str(blocked)))
        with ClientEncryption(
            providers, namespace, client, kms_tls_options=tls_options, kms_connect_callback=blocked
        ) as bad:
            expect_failure(
                lambda: bad.create_data_key("aws:mock", DataKeyOpts(master_keys["aws:mock"]))
            )
        refusing.close()

        # On-demand credentials: a custom AWS provider, and Azure IMDS failing.
        def partial_credentials() -> dict[str, str]:
            return {"secretAccessKey": credentials_["on-demand aws secretAccessKey"]}

        def full_credentials() -> dict[str, str]:
            return {
                "accessKeyId": "AKIAONDEMAND",
                "secretAccessKey": credentials_["on-demand aws secretAccessKey"],
                "sessionToken": credentials_["on-demand aws sessionToken"],
            }

        reprs.append(("OnDemandCredentials", repr(OnDemandCredentials(full_credentials))))
        for provider_fn in (partial_credentials, full_credentials):
            with ClientEncryption(
                {"aws": {}},
                namespace,
                client,
                kms_tls_options=tls_options,
                credential_providers={"aws": provider_fn},
                event_listeners=[events],
            ) as on_demand:
                reprs.append(("ClientEncryption", repr(on_demand) + repr(on_demand.options)))

                def create(ce: ClientEncryption = on_demand) -> Any:
                    return ce.create_data_key("aws", DataKeyOpts(master_keys["aws"]))

                if provider_fn is partial_credentials:
                    expect_failure(create)
                else:
                    create()
        imds.route(
            "GET",
            "/metadata/identity/oauth2/token",
            '{"access_token": "'
            + credentials_["IMDS token in a bad reply"]
            + '", "expires_in": "soon"',
        )
        with ClientEncryption({"azure": {}}, namespace, client, event_listeners=[events]) as azure:
            expect_failure(
                lambda: azure.create_data_key("azure", DataKeyOpts(master_keys["azure"]))
            )

        # Reprs and strs of every option object, public and engine.
        engine_options = MongoCryptOptions(providers, bypass_encryption=True)
        reprs += [
            ("MongoCryptOptions", repr(engine_options) + str(engine_options)),
            ("ClientEncryption.options", repr(ce.options)),
            ("engine DataKeyOptions", repr(DataKeyOptions("local", None, (), local_key))),
            (
                "engine ExplicitEncryptOptions",
                repr(ExplicitEncryptOptions(Algorithm.RANDOM, key_id=bytes(local))),
            ),
            ("DataKeyOpts with key material", repr(DataKeyOpts(key_material=local_key))),
            ("CredentialEndpoints", repr(CredentialEndpoints())),
            ("ClientEncryption", repr(ce) + str(ce)),
            ("KMS connect callback", repr(connect)),
        ]
    finally:
        ce.close()
        client.drop_database(name)
        client.close()
        proxy.close()

    # -- the scan ------------------------------------------------------------------------------
    out, err = capfd.readouterr()
    corpus: list[tuple[str, str]] = [("captured stdout", out), ("captured stderr", err)]
    corpus += [(f"log {r.name} {r.levelname}", caplog.handler.format(r)) for r in caplog.records]
    corpus += [(f"event {type(e).__name__}", repr(e) + str(e)) for e in events.events]
    corpus += [(f"command {kind} {name_}", repr(doc)) for kind, name_, doc in commands.events]
    corpus += reprs
    for error in raised:
        for link in errors_in_chain(error):
            corpus.append((f"error {type(link).__name__}", repr(link) + str(link)))
    leaks = found.leaks(corpus)
    # mongocrypt's own lines are among those scanned (issue 15 item 7).
    own = {(r.name, r.getMessage().split(" ")[0]) for r in caplog.records}
    for logger, first_word in [
        ("mongocrypt.auto_encryption", "query"),
        ("mongocrypt.engine", "marking"),
        ("mongocrypt.engine", "fetching"),
        ("mongocrypt.engine", "KMS"),
        ("mongocrypt.credentials", "aws"),
    ]:
        assert (logger, first_word) in own, (logger, first_word)
    assert len(caplog.records) > 100 and len(events.events) > 50 and len(commands.events) > 50
    assert len(raised) >= 13, raised
    assert not leaks, "secrets or plaintext escaped:\n" + "\n".join(leaks[:20])


@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        (918_273_645, (0, 10)),
        (Int64(98_765_432_101), (Int64(0), Int64(10))),
        (31415.9265, (0.0, 10.0)),
        (
            datetime.datetime(2099, 1, 2),
            (datetime.datetime(2000, 1, 1), datetime.datetime(2001, 1, 1)),
        ),
        (Decimal128("31415.9265"), (Decimal128("0"), Decimal128("10"))),
    ],
    ids=["int", "long", "double", "date", "decimal128"],
)
def test_range_errors_do_not_quote_the_plaintext(
    encrypter: ExplicitEncrypter, value: Any, bounds: tuple[Any, Any]
) -> None:
    key_id = bytes(encrypter.create_data_key("local"))
    options: dict[str, Any] = {"min": bounds[0], "max": bounds[1], "sparsity": Int64(1)}
    if isinstance(value, (float, Decimal128)):
        options["precision"] = 2
    with pytest.raises(MongoCryptError) as info:
        encrypter.encrypt(
            bson.encode({"v": value}),
            "Range",
            key_id=key_id,
            contention_factor=0,
            range_opts=bson.encode(options),
        )
    message = str(info.value)
    plain = {
        datetime.datetime: lambda d: str(
            int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        ),
        Decimal128: lambda d: "314159265",
        float: lambda f: "31415",
    }.get(type(value), str)(value)
    assert plain not in message, message


def _http(status: int, body: bytes) -> bytes:
    return f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.mark.parametrize("provider", ["aws", "azure"])
def test_kms_errors_do_not_quote_unwrapped_key_material(provider: str) -> None:
    material = os.urandom(96)
    if provider == "aws":
        key = {
            "_id": Binary(uuid.uuid4().bytes, 4),
            "keyMaterial": Binary(os.urandom(200)),
            "masterKey": {"provider": "aws", "region": "us-east-1", "key": "arn:aws:kms:k"},
            "creationDate": datetime.datetime.now(),
            "updateDate": datetime.datetime.now(),
            "status": 0,
        }
        encoded = base64.b64encode(material).decode()
        replies = [_http(200, ('{"Plaintext": "' + encoded + '", "KeyId": ').encode())]
        settings = {"accessKeyId": "a", "secretAccessKey": "b"}
    else:
        key = {
            "_id": Binary(uuid.uuid4().bytes, 4),
            "keyMaterial": Binary(os.urandom(200)),
            "masterKey": {
                "provider": "azure",
                "keyVaultEndpoint": "a.vault.azure.net",
                "keyName": "k",
            },
            "creationDate": datetime.datetime.now(),
            "updateDate": datetime.datetime.now(),
            "status": 0,
        }
        encoded = base64.urlsafe_b64encode(material).decode()
        token = b'{"access_token":"t","expires_in":3599,"token_type":"Bearer"}'
        replies = [
            _http(200, token),
            _http(200, ('{"kid": "k", "value": "' + encoded + '", ').encode()),
        ]
        settings = {"tenantId": "t", "clientId": "c", "clientSecret": "s"}
    from mongocrypt.io.memory import InMemoryIO

    io = InMemoryIO(kms={provider: lambda _request: replies.pop(0)})
    io.keys.append(bson.encode(key))
    encrypter = ExplicitEncrypter(
        io, MongoCryptOptions({provider: settings}, bypass_encryption=True)
    )
    with pytest.raises(MongoCryptError) as info:
        encrypter.encrypt(bson.encode({"v": 1}), Algorithm.RANDOM, key_id=bytes(key["_id"]))
    found = Secrets()
    found.binary("unwrapped data key", material)
    assert found.leaks([("error", str(info.value))]) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"Plaintext": "c2VjcmV0LWtleQ==", "KeyId": ',  # AWS, cut short
        '{"kid": "https://v/k", "value": "c2VjcmV0LWtleQ"',  # Azure
        '{"plaintext": "c2VjcmV0LWtleQ==" ',  # GCP
        '{"access_token": "c2VjcmV0LWtleQ", "expires_in": 3599}',
    ],
    ids=["aws", "azure", "gcp", "token"],
)
def test_redact_removes_unwrapped_keys_and_tokens_from_quoted_bodies(body: str) -> None:
    message = redact(f"Error parsing JSON in KMS response. HTTP status=200. Response body=\n{body}")
    assert "c2VjcmV0LWtleQ" not in message and "<redacted>" in message
