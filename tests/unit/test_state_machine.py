"""The state machine drives automatic encryption and decryption through every state, sync and
async, reproducing libmongocrypt's own recorded results."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import bson
import pytest
from test_encrypter import AsyncMemoryIO

from conftest import RecordingIO, load_http_reply, load_json
from mongocrypt import MongoCryptError
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import (
    AsyncAutoEncrypter,
    AutoEncrypter,
    MongoCrypt,
    MongoCryptOptions,
    State,
    run_state_machine,
)
from mongocrypt.io.memory import InMemoryIO

FIND = "libmongocrypt/fle1-find/"
AWS_KEY = "libmongocrypt/keys/12345678123498761234123456789012-aws-document.json"
AWS_REPLY = "libmongocrypt/keys/12345678123498761234123456789012-aws-decrypt-reply.txt"
AWS = {"aws": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "example"}}


def recorded_find_io() -> RecordingIO:
    """Collection info, mongocryptd's reply and the AWS-wrapped key of libmongocrypt's recording."""
    io = RecordingIO(
        kms={"aws": lambda _request: load_http_reply(AWS_REPLY)},
        collection_infos=[load_json(FIND + "collinfo.json")],
        marker=lambda _db, _cmd: load_json(FIND + "mongocryptd-reply.json"),
    )
    io.keys.append(bson.encode(load_json(AWS_KEY)))
    return io


def auto_options(**kwargs: Any) -> MongoCryptOptions:
    return MongoCryptOptions(AWS, crypt_shared_lib_search_paths=[], **kwargs)


@pytest.mark.requirement(
    "CSE-AUTO-01",
    "CSE-LMC-01",
    "CSE-LMC-07",
    "CSE-LMC-08",
    "CSE-LMC-09",
    "CSE-LMC-10",
)
def test_auto_encryption_reproduces_libmongocrypts_recorded_command() -> None:
    io = recorded_find_io()
    encrypter = AutoEncrypter(io, auto_options())
    command = load_json(FIND + "cmd.json")
    encrypted = bson.decode(encrypter.encrypt("db", bson.encode(command)))
    assert encrypted == load_json(FIND + "encrypted-payload.json")
    assert io.kinds() == ["collinfo", "markings", "keys", "kms"]
    (_, (database, listing)), (_, (marking_db, to_mongocryptd)) = io.requests[:2]
    assert (database, listing) == ("db", {"name": "test"})
    assert marking_db == "db"
    assert to_mongocryptd == load_json(FIND + "cmd-to-mongocryptd.json")
    encrypter.close()


@pytest.mark.requirement("CSE-LMC-07")
def test_auto_decryption_restores_the_value() -> None:
    io = recorded_find_io()
    encrypter = AutoEncrypter(io, auto_options())
    reply = load_json(FIND + "encrypted-payload.json")
    decrypted = bson.decode(encrypter.decrypt(bson.encode(reply)))
    assert decrypted["filter"] == {"value": {"$eq": 123456}}
    assert io.kinds() == ["keys", "kms"]


@pytest.mark.requirement("CSE-LMC-11")
def test_second_operation_uses_cached_schema_and_key() -> None:
    io = recorded_find_io()
    encrypter = AutoEncrypter(io, auto_options())
    command = bson.encode(load_json(FIND + "cmd.json"))
    encrypter.encrypt("db", command)
    encrypter.encrypt("db", command)
    assert io.kinds() == ["collinfo", "markings", "keys", "kms", "markings"]


@pytest.mark.requirement("CSE-AEO-09", "CSE-CACHE-02", "CSE-LMC-15")
def test_key_expiration_reaches_libmongocrypt() -> None:
    """With a 1 ms key cache the second operation fetches the key again; by default it does not."""
    for expiration, expected_fetches in ((1, 2), (None, 1)):
        io = recorded_find_io()
        encrypter = AutoEncrypter(io, auto_options(key_expiration_ms=expiration))
        command = bson.encode(load_json(FIND + "cmd.json"))
        encrypter.encrypt("db", command)
        import time

        time.sleep(0.01)
        encrypter.encrypt("db", command)
        assert io.kinds().count("keys") == expected_fetches, expiration


@pytest.mark.requirement("CSE-LMC-15")
def test_schema_map_replaces_listcollections() -> None:
    schema = load_json(FIND + "collinfo.json")["options"]["validator"]["$jsonSchema"]
    io = recorded_find_io()
    encrypter = AutoEncrypter(io, auto_options(schema_map={"db.test": schema}))
    encrypter.encrypt("db", bson.encode(load_json(FIND + "cmd.json")))
    assert "collinfo" not in io.kinds()
    marking_command = io.requests[0][1][1]
    assert marking_command["isRemoteSchema"] is False and marking_command["jsonSchema"] == schema


@pytest.mark.requirement("CSE-LMC-15")
def test_bypass_query_analysis_skips_markings() -> None:
    io = recorded_find_io()
    encrypter = AutoEncrypter(io, auto_options(bypass_query_analysis=True))
    command = load_json(FIND + "cmd.json")
    result = bson.decode(encrypter.encrypt("db", bson.encode(command)))
    assert "markings" not in io.kinds()
    assert result["filter"] == command["filter"]


def single_key_qe_reply(folder: str) -> dict[str, Any]:
    """The recorded QE marking, with its user key (``ku``) set to the index key (``ki``) so one
    recorded AWS key serves both."""
    reply = load_json(folder + "mongocryptd-reply.json")
    marking = reply["result"]["documents"][0]["ssn"]
    placeholder = bson.decode(bytes(marking)[1:])
    placeholder["ku"] = placeholder["ki"]
    reply["result"]["documents"][0]["ssn"] = bson.Binary(
        bytes(marking[:1]) + bson.encode(placeholder), 6
    )
    return reply  # type: ignore[no-any-return]  # load_json gives Any


@pytest.mark.requirement("CSE-LMC-15")
def test_queryable_encryption_insert() -> None:
    folder = "libmongocrypt/fle2-insert/"
    io = recorded_find_io()
    io.marker = lambda _db, _cmd: single_key_qe_reply(folder)
    encrypter = AutoEncrypter(
        io, auto_options(encrypted_fields_map=load_json(folder + "encrypted-field-map.json"))
    )
    result = bson.decode(encrypter.encrypt("db", bson.encode(load_json(folder + "cmd.json"))))
    ssn = result["documents"][0]["ssn"]
    assert isinstance(ssn, bson.Binary) and ssn.subtype == 6 and ssn[0] == 11
    assert "value123" not in bson.encode(result).decode("latin-1")
    assert "encryptionInformation" in result
    assert "collinfo" not in io.kinds()
    sent = io.requests[0][1][1]
    assert "encryptionInformation" in sent  # what query analysis saw


@pytest.mark.requirement("CSE-LMC-10", "CSE-LMC-14")
def test_invalid_markings_reply_fails_the_operation() -> None:
    io = recorded_find_io()
    io.marker = lambda _db, _cmd: load_json("libmongocrypt/mongocryptd-reply-invalid.json")
    encrypter = AutoEncrypter(io, auto_options())
    with pytest.raises(MongoCryptError):
        encrypter.encrypt("db", bson.encode(load_json(FIND + "cmd.json")))


def test_async_auto_encryption_matches_sync() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        encrypter = AsyncAutoEncrypter(AsyncMemoryIO(recorded_find_io()), auto_options())
        command = bson.encode(load_json(FIND + "cmd.json"))
        encrypted = await encrypter.encrypt("db", command)
        decrypted = await encrypter.decrypt(encrypted)
        await encrypter.close()
        return encrypted, decrypted

    encrypted, decrypted = asyncio.run(scenario())
    assert bson.decode(encrypted) == load_json(FIND + "encrypted-payload.json")
    assert bson.decode(decrypted)["filter"] == {"value": {"$eq": 123456}}


@pytest.mark.requirement("CSE-CRED-01", "CSE-CRED-02", "CSE-LMC-13", "CSE-LMC-15")
def test_on_demand_credentials_are_asked_for_and_used() -> None:
    key = os.urandom(96)
    io = RecordingIO(credentials={"local": {"key": key}})
    encrypter = ExplicitEncrypter(io, MongoCryptOptions({"local": {}}, bypass_encryption=True))
    key_id = encrypter.create_data_key("local")
    assert io.kinds() == ["credentials"]
    # The key really was wrapped with the credentials given: a handle configured with that key
    # up front reads it.
    reader = ExplicitEncrypter(
        InMemoryIO(), MongoCryptOptions({"local": {"key": key}}, bypass_encryption=True)
    )
    reader.callback.keys.extend(io.keys)
    ciphertext = reader.encrypt(
        bson.encode({"v": 1}), "AEAD_AES_256_CBC_HMAC_SHA_512-Random", key_id=key_id
    )
    assert bson.decode(encrypter.decrypt(ciphertext))["v"] == 1


def test_on_demand_credentials_without_support_are_a_clear_error() -> None:
    encrypter = ExplicitEncrypter(
        InMemoryIO(), MongoCryptOptions({"local": {}, "aws": {}}, bypass_encryption=True)
    )
    with pytest.raises(MongoCryptError, match="local, aws are configured for on-demand"):
        encrypter.create_data_key("local")


@pytest.mark.requirement("CSE-LMC-14")
def test_error_state_raises_the_context_error() -> None:
    crypt = MongoCrypt(
        MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    )
    with crypt.decryption_context(bson.encode({"a": 1})) as ctx:
        assert ctx.state == State.READY
        ctx.finish()
        assert ctx.state == State.DONE  # type: ignore[comparison-overlap]  # mypy keeps the READY narrowing across finish()
        assert run_state_machine(ctx, InMemoryIO()) is None
