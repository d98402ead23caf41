"""A key vault the client may not read (SecantusDB with ``--auth``): pymongo's own code gets the
server's ``OperationFailure`` (code 18) as ``EncryptionError.cause``, as it would with
pymongocrypt, and mongocrypt's own API the same error as a ``KeyVaultError``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo.encryption import ClientEncryption as PymongoClientEncryption
from pymongo.encryption_options import AutoEncryptionOpts as PymongoAutoEncryptionOpts
from pymongo.errors import EncryptionError, OperationFailure

from helpers.peers.process import Peer, free_port, port_open
from mongocrypt import Algorithm, ClientEncryption, EncryptOpts, KeyVaultError

BIN = Path(sys.executable).parent
LOCAL = {"local": {"key": os.urandom(96)}}


def _secantus(directory: Path, port: int, *extra: str) -> Peer:
    config = directory / "secantusd.toml"
    config.write_text("")
    return Peer(
        "SecantusDB (auth)",
        [
            str(BIN / "secantusd-py"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(directory / "data"),
            "--standalone",
            *extra,
        ],
        directory / f"secantusd{len(extra)}.log",
        ready=lambda: port_open(port),
    )


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """SecantusDB with ``--auth``, a user ``admin``, and a key vault holding one data key and a
    ciphertext made with it (prepared before authentication was required)."""
    directory = tmp_path_factory.mktemp("secantus-auth")
    port = free_port()
    uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=5000"
    setup = _secantus(directory, port)
    try:
        with pymongo.MongoClient[Any](uri) as client:
            client.admin.command("createUser", "admin", pwd="right-password", roles=["root"])
            with ClientEncryption(LOCAL, "kv.keys", client) as ce:
                key_id = ce.create_data_key("local")
                ciphertext = ce.encrypt(
                    "secret", EncryptOpts(Algorithm.DETERMINISTIC, key_id=key_id)
                )
    finally:
        setup.stop()
    server = _secantus(directory, port, "--auth")
    yield {
        "good": f"mongodb://admin:right-password@127.0.0.1:{port}/?authSource=admin",
        "bad": f"mongodb://admin:wrong-password@127.0.0.1:{port}/?authSource=admin",
        "key_id": key_id,
        "ciphertext": ciphertext,
    }
    server.stop()


def _assert_authentication_failed(error: BaseException) -> None:
    assert isinstance(error, OperationFailure), repr(error)
    assert error.code == 18, error.code
    assert error.details is not None and error.details.get("code") == 18


def test_the_setup_is_readable_with_the_right_password(auth_server: dict[str, Any]) -> None:
    with pymongo.MongoClient[Any](auth_server["good"]) as client:
        assert client.kv.keys.count_documents({}) == 1


@pytest.mark.requirement("CSE-ERR-06")
def test_pymongos_client_encryption_sees_the_operation_failure(
    auth_server: dict[str, Any],
) -> None:
    """CSE-ERR-06 / prose 3: decrypting needs the key, the key vault refuses the client."""
    with pymongo.MongoClient[Any](auth_server["bad"]) as bad:
        ce = PymongoClientEncryption[Any](LOCAL, "kv.keys", bad, bad.codec_options)
        try:
            with pytest.raises(EncryptionError) as info:
                ce.decrypt(auth_server["ciphertext"])
        finally:
            ce.close()
    _assert_authentication_failed(info.value.cause)


def test_pymongos_auto_encryption_sees_the_operation_failure(
    auth_server: dict[str, Any],
) -> None:
    """Automatic decryption through a key_vault_client that cannot authenticate."""
    with pymongo.MongoClient[Any](auth_server["good"]) as good:
        good.app.things.insert_one({"_id": 1, "secret": auth_server["ciphertext"]})
    with pymongo.MongoClient[Any](auth_server["bad"]) as bad:
        opts = PymongoAutoEncryptionOpts(
            LOCAL, "kv.keys", key_vault_client=bad, bypass_auto_encryption=True
        )
        with (
            pymongo.MongoClient[Any](auth_server["good"], auto_encryption_opts=opts) as client,
            pytest.raises(EncryptionError) as info,
        ):
            client.app.things.find_one({"_id": 1})
    _assert_authentication_failed(info.value.cause)


@pytest.mark.requirement("CSE-ERR-02")
@pytest.mark.parametrize("operation", ["decrypt", "get_key"])
def test_mongocrypts_client_encryption_raises_a_key_vault_error(
    auth_server: dict[str, Any], operation: str
) -> None:
    """CSE-ERR-02: the distinct key-vault type, still pymongo's OperationFailure (a fresh client
    each: after a failed authentication pymongo's pool waits before it tries again)."""
    with (
        pymongo.MongoClient[Any](auth_server["bad"]) as bad,
        ClientEncryption(LOCAL, "kv.keys", bad) as ce,
        pytest.raises(KeyVaultError) as info,
    ):
        if operation == "decrypt":
            ce.decrypt(auth_server["ciphertext"])
        else:
            ce.get_key(auth_server["key_id"])
    _assert_authentication_failed(info.value)
