"""Leaks: the engine's native objects are released on every error path (checked with
``mongocrypt.engine.native.live_objects()``), and memory stays flat over many operations (RSS and
tracemalloc, in a fresh process: tests/helpers/leak_run.py).

Sizes: ``MONGOCRYPT_LEAK_EXPLICIT`` (default 50,000), ``MONGOCRYPT_LEAK_AUTO`` (default 10,000
facade automatic decryptions) and ``MONGOCRYPT_LEAK_PYMONGO`` (default 2,000 finds through an
auto-decrypting pymongo client). The long run is the same test with 1,000,000 / 100,000 / 100,000.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import bson
import pymongo
import pytest

from conftest import DETERMINISTIC, RANDOM, http_reply, v
from mongocrypt import (
    Algorithm,
    AsyncClientEncryption,
    ClientEncryption,
    DataKeyOpts,
    EncryptOpts,
    KeyVaultError,
    MongoCryptClosedError,
    MongoCryptError,
    MongoCryptKmsError,
)
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import (
    AutoEncrypter,
    ExplicitEncryptOptions,
    KmsContext,
    MongoCrypt,
    MongoCryptOptions,
)
from mongocrypt.engine.native import live_objects
from mongocrypt.io.memory import InMemoryIO

LEAK_RUN = Path(__file__).resolve().parents[1] / "helpers" / "leak_run.py"
AWS = {"aws": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "leak-secret"}}
AWS_MASTER_KEY = {"region": "us-east-1", "key": "arn:aws:kms:us-east-1:1:key/leak"}


def released(action: Callable[[], Any], *expected: type[BaseException]) -> None:
    """Run ``action`` (it must raise one of ``expected``); then the live counters must be back
    at their baseline once garbage is collected."""
    gc.collect()
    before = live_objects()
    with pytest.raises(expected or (MongoCryptError,)):
        action()
    gc.collect()
    assert live_objects() == before, f"{action.__name__} leaked"


def local_encrypter(io: InMemoryIO | None = None, **options: Any) -> ExplicitEncrypter:
    providers = {"local": {"key": os.urandom(96)}}
    return ExplicitEncrypter(
        io or InMemoryIO(), MongoCryptOptions(providers, bypass_encryption=True, **options)
    )


# -- engine error paths ----------------------------------------------------------------------


def test_handle_configuration_failures() -> None:
    def bad_providers() -> None:  # libmongocrypt refuses it (Python checks only local keys)
        MongoCrypt(MongoCryptOptions({"aws": {"accessKeyId": "only-half"}}))

    def short_local_key() -> None:
        MongoCrypt(MongoCryptOptions({"local": {"key": b"short"}}))

    def missing_crypt_shared() -> None:
        MongoCrypt(
            MongoCryptOptions(
                {"local": {"key": os.urandom(96)}},
                crypt_shared_lib_required=True,
                crypt_shared_lib_search_paths=[],
            )
        )

    def bad_schema_map() -> None:
        MongoCrypt(
            MongoCryptOptions({"local": {"key": os.urandom(96)}}, schema_map=b"\x05\0\0\0\1")
        )

    for action in (bad_providers, missing_crypt_shared, bad_schema_map):
        released(action)
    released(short_local_key, ValueError)


def test_context_initialisation_failures() -> None:
    encrypter = local_encrypter()
    key_id = bytes(encrypter.create_data_key("local"))

    def garbage_ciphertext() -> None:
        encrypter.decrypt(v(bson.Binary(b"\x01" + b"\0" * 40, 6)))

    def not_bson() -> None:
        encrypter.decrypt(b"\x10\0\0\0garbage")

    def unknown_algorithm() -> None:
        encrypter.encrypt(v(1), "Rot13", key_id=key_id)

    def bad_range_options() -> None:
        encrypter.encrypt(v(1), "Range", key_id=key_id, contention_factor=0, range_opts=b"xx")

    def invalid_option_value() -> None:
        encrypter.encrypt(v(1), DETERMINISTIC, key_id=b"short")

    def deterministic_document() -> None:
        encrypter.encrypt(v({"a": 1}), DETERMINISTIC, key_id=key_id)

    def bad_master_key() -> None:
        encrypter.create_data_key("aws", master_key={"region": "us-east-1"})

    def bad_key_material() -> None:
        encrypter.create_data_key("local", key_material=b"short")

    def both_string_option_names() -> None:
        encrypter.encrypt(v("x"), "String", key_id=key_id, string_opts=b"", text_opts=b"")

    for action in (
        garbage_ciphertext,
        not_bson,
        unknown_algorithm,
        bad_range_options,
        deterministic_document,
        bad_master_key,
    ):
        released(action)
    released(invalid_option_value, ValueError)
    released(bad_key_material, ValueError)
    released(both_string_option_names, ValueError)
    encrypter.close()


def test_failures_in_the_middle_of_the_state_machine() -> None:
    """Errors raised by libmongocrypt, by the I/O callback, and BaseExceptions (Ctrl-C) while a
    context waits in a state."""

    class Failing(InMemoryIO):
        failure: BaseException | None = None

        def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
            if self.failure is not None:
                raise self.failure
            return super().fetch_keys(filter)

    io = Failing()
    encrypter = local_encrypter(io, key_expiration_ms=1)
    key_id = bytes(encrypter.create_data_key("local", key_alt_names=["k"]))
    ciphertext = encrypter.encrypt(v("x"), RANDOM, key_id=key_id)

    def missing_key() -> None:
        encrypter.encrypt(v(1), RANDOM, key_alt_name="absent")

    def corrupt_key_document() -> None:
        io.keys.append(bson.encode({"_id": bson.Binary(uuid.uuid4().bytes, 4), "junk": 1}))
        try:
            encrypter.encrypt(v(1), RANDOM, key_id=bytes(bson.decode(io.keys[-1])["_id"]))
        finally:
            io.keys.pop()

    released(missing_key)
    released(corrupt_key_document)
    for failure, expected in (
        (OSError("key vault down"), OSError),
        (KeyboardInterrupt(), KeyboardInterrupt),
        (MongoCryptError("vault refused"), MongoCryptError),
    ):
        io.failure = failure

        def decrypt_while_the_callback_fails() -> None:
            gc.collect()
            import time

            time.sleep(0.002)  # past key_expiration_ms: the key must be fetched again
            encrypter.decrypt(ciphertext)

        released(decrypt_while_the_callback_fails, expected)
    io.failure = None
    encrypter.close()


def test_kms_failures() -> None:
    def respond(replies: list[bytes]) -> Callable[[KmsContext], bytes]:
        return lambda _request: replies.pop(0)

    def kms_error_reply() -> None:
        body = b'{"__type": "AccessDeniedException", "message": "denied"}'
        io = InMemoryIO(kms={"aws": respond([http_reply(400, body)])})
        ExplicitEncrypter(io, MongoCryptOptions(AWS, bypass_encryption=True)).create_data_key(
            "aws", master_key=AWS_MASTER_KEY
        )

    def network_failures_until_give_up() -> None:
        class Dropping(InMemoryIO):
            def kms_request(self, kms_context: KmsContext) -> None:
                kms_context.fail()

        encrypter = ExplicitEncrypter(Dropping(), MongoCryptOptions(AWS, bypass_encryption=True))
        encrypter.create_data_key("aws", master_key=AWS_MASTER_KEY)

    def malformed_reply() -> None:
        io = InMemoryIO(kms={"aws": respond([http_reply(200, b"{not json")])})
        ExplicitEncrypter(io, MongoCryptOptions(AWS, bypass_encryption=True)).create_data_key(
            "aws", master_key=AWS_MASTER_KEY
        )

    def reply_ends_early() -> None:
        io = InMemoryIO(kms={"aws": respond([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"])})
        ExplicitEncrypter(io, MongoCryptOptions(AWS, bypass_encryption=True)).create_data_key(
            "aws", master_key=AWS_MASTER_KEY
        )

    def no_responder() -> None:
        encrypter = ExplicitEncrypter(InMemoryIO(), MongoCryptOptions(AWS, bypass_encryption=True))
        encrypter.create_data_key("aws", master_key=AWS_MASTER_KEY)

    released(kms_error_reply, MongoCryptKmsError)
    released(network_failures_until_give_up, MongoCryptKmsError)
    released(malformed_reply, MongoCryptKmsError)
    released(reply_ends_early, OSError)
    released(no_responder)


def test_auto_encryption_failures() -> None:
    providers = {"local": {"key": os.urandom(96)}}
    schema = {
        "db.coll": {
            "bsonType": "object",
            "properties": {
                "ssn": {
                    "encrypt": {
                        "keyId": [bson.Binary(uuid.uuid4().bytes, 4)],
                        "bsonType": "string",
                        "algorithm": DETERMINISTIC,
                    }
                }
            },
        }
    }
    auto = AutoEncrypter(
        InMemoryIO(),
        MongoCryptOptions(providers, schema_map=schema, crypt_shared_lib_search_paths=[]),
    )

    def no_query_analysis() -> None:
        auto.encrypt("db", bson.encode({"find": "coll", "filter": {"ssn": "x"}}))

    def garbage_reply() -> None:
        auto.decrypt(b"\x10\0\0\0garbage")

    def reply_with_unknown_key() -> None:
        blob = bson.Binary(b"\x01" + uuid.uuid4().bytes + b"\x02" + b"\0" * 64, 6)
        auto.decrypt(bson.encode({"cursor": {"firstBatch": [{"v": blob}]}, "ok": 1}))

    for action in (no_query_analysis, garbage_reply, reply_with_unknown_key):
        released(action)
    auto.close()


def test_closed_objects_and_abandoned_contexts() -> None:
    encrypter = local_encrypter()
    key_id = bytes(encrypter.create_data_key("local"))
    crypt = encrypter.mongocrypt

    def use_after_close() -> None:
        closed = local_encrypter()
        closed_key = bytes(closed.create_data_key("local"))
        closed.close()
        closed.encrypt(v(1), RANDOM, key_id=closed_key)

    def abandoned_context() -> None:
        context = crypt.explicit_encryption_context(
            v(1), ExplicitEncryptOptions(RANDOM, key_id=key_id)
        )
        assert context.state.name == "NEED_MONGO_KEYS"
        del context  # never closed: ffi.gc must release it
        raise MongoCryptError("abandoned")

    released(abandoned_context)
    released(use_after_close, MongoCryptClosedError)
    encrypter.close()


# -- error paths through the public API and pymongo -------------------------------------------


@pytest.fixture
def namespace(mongodb_uri: str) -> Iterator[str]:
    name = f"leaks_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient(mongodb_uri) as client:
        client[name].keys.create_index(
            "keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}}
        )
        yield f"{name}.keys"
        client.drop_database(name)


def test_client_encryption_error_paths(
    mongodb_uri: str, namespace: str, kms_setup: Any, tls: Any, black_hole: str
) -> None:
    with pymongo.MongoClient(mongodb_uri) as client:
        gc.collect()
        baseline = live_objects()
        ce = ClientEncryption(
            kms_setup.providers,
            namespace,
            client,
            kms_tls_options={**kms_setup.tls_options, "aws": {"tlsCAFile": str(tls.other_ca)}},
            timeout_ms=2000,
        )
        ce.create_data_key("local", DataKeyOpts(key_alt_names=["taken"]))

        def duplicate_alt_name() -> None:
            ce.create_data_key("local", DataKeyOpts(key_alt_names=["taken"]))

        def tls_verification_failure() -> None:
            ce.create_data_key("aws", DataKeyOpts(kms_setup.master_keys["aws"]))

        def kms_timeout() -> None:
            master_key = {**kms_setup.master_keys["aws:mock"], "endpoint": black_hole}
            ce.create_data_key("aws:mock", DataKeyOpts(master_key))

        def missing_key() -> None:
            ce.encrypt("x", EncryptOpts(Algorithm.DETERMINISTIC, key_alt_name="absent"))

        def wrong_type() -> None:
            ce.decrypt(bson.Binary(b"x", 0))

        released(duplicate_alt_name, KeyVaultError)
        released(tls_verification_failure, MongoCryptKmsError)
        released(kms_timeout, MongoCryptError)
        released(missing_key)
        released(wrong_type, TypeError)
        ce.close()
        gc.collect()
        assert live_objects() == baseline


def test_automatic_decryption_error_paths(mongodb_uri: str, namespace: str) -> None:
    """pymongo's MongoClient with mongocrypt's AutoEncryptionOpts and pymongo's own
    ClientEncryption on the facade: failures release everything."""
    from pymongo.encryption import ClientEncryption as PymongoClientEncryption
    from pymongo.errors import EncryptionError

    providers = {"local": {"key": os.urandom(96)}}
    database = namespace.split(".")[0]
    with pymongo.MongoClient(mongodb_uri) as client:
        gc.collect()
        baseline = live_objects()
        with ClientEncryption(providers, namespace, client) as ce:
            key_id = ce.create_data_key("local")
            secret = ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
            ce.delete_key(key_id)
        client[database].people.insert_one({"_id": 1, "v": secret})
        opts = AutoEncryptionOpts(providers, namespace, bypass_auto_encryption=True)
        with pymongo.MongoClient(mongodb_uri, auto_encryption_opts=opts) as reader:

            def key_deleted() -> None:
                reader[database].people.find_one()

            released(key_deleted, EncryptionError)
        pymongo_ce: Any = PymongoClientEncryption(
            providers, namespace, client, bson.codec_options.CodecOptions()
        )

        def facade_decrypt_failure() -> None:
            pymongo_ce.decrypt(secret)

        def facade_bad_algorithm() -> None:
            pymongo_ce.encrypt("x", "Rot13", key_id=key_id)

        released(facade_decrypt_failure, EncryptionError)
        released(facade_bad_algorithm, EncryptionError)
        pymongo_ce.close()

        async def async_failures() -> None:
            aclient: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(mongodb_uri)
            async with AsyncClientEncryption(providers, namespace, aclient) as ace:
                with pytest.raises(MongoCryptError):
                    await ace.decrypt(secret)
                with pytest.raises(MongoCryptError):
                    await ace.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_alt_name="absent"))
            await aclient.close()

        asyncio.run(async_failures())
        gc.collect()
        assert live_objects() == baseline


# -- memory over many operations ----------------------------------------------------------------


def test_memory_stays_flat_over_many_operations(mongodb_uri: str, tmp_path: Path) -> None:
    report = tmp_path / "leaks.json"
    sizes = {
        "--explicit": os.environ.get("MONGOCRYPT_LEAK_EXPLICIT", "50000"),
        "--auto": os.environ.get("MONGOCRYPT_LEAK_AUTO", "10000"),
        "--pymongo": os.environ.get("MONGOCRYPT_LEAK_PYMONGO", "2000"),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(LEAK_RUN),
            *(item for pair in sizes.items() for item in pair),
            "--uri",
            mongodb_uri,
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    print(done.stdout)
    assert report.exists(), done.stderr
    records = json.loads(report.read_text())
    assert [r["phase"] for r in records] == ["explicit", "auto", "pymongo"]
    for record in records:
        assert record["rss_growth_pct"] < 5, record
        assert record["traced_growth_pct"] < 5, record
        assert record["live_objects_end"] == record["live_objects_start"], record
    assert done.returncode == 0, done.stdout + done.stderr
