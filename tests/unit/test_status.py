"""engine/status.py: the one place a libmongocrypt status becomes a Python exception."""

from __future__ import annotations

import json
import os
from typing import Any

import bson
import pytest

from conftest import RANDOM, http_reply, load_json, v
from mongocrypt.engine import ExplicitEncryptOptions, MongoCrypt, MongoCryptOptions, State
from mongocrypt.engine import status as status_module
from mongocrypt.engine.binary import BinaryView
from mongocrypt.engine.native import lib
from mongocrypt.engine.status import raise_status
from mongocrypt.errors import KeyVaultError, MongoCryptError, MongoCryptKmsError

AWS_KEY = "libmongocrypt/keys/12345678123498761234123456789012-aws-document.json"


def local_crypt() -> MongoCrypt:
    return MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True))


def test_a_client_error_keeps_libmongocrypts_message_and_code() -> None:
    ctx = local_crypt()._context()
    with BinaryView(b"not bson at all") as binary:
        assert not lib.mongocrypt_ctx_decrypt_init(ctx._ctx, binary)
    with pytest.raises(MongoCryptError) as info:
        raise_status(lib.mongocrypt_ctx_status, ctx._ctx)
    assert type(info.value) is MongoCryptError
    assert (str(info.value), info.value.code) == ("malformed bson", 1)


def test_the_requested_class_is_raised_for_client_errors() -> None:
    with pytest.raises(MongoCryptError, match="unrecognized KMS provider `vault`") as info:
        local_crypt()._context().set_key_encryption_key("vault", None)
    ctx = local_crypt()._context()
    with pytest.raises(MongoCryptError, match="unrecognized KMS provider"):
        ctx.set_key_encryption_key("vault", None)
    with pytest.raises(KeyVaultError) as chosen:
        raise_status(lib.mongocrypt_ctx_status, ctx._ctx, KeyVaultError)
    assert str(chosen.value) == str(info.value)
    assert chosen.value.code == info.value.code != 0


def test_an_empty_status_still_raises_with_a_message() -> None:
    ctx = local_crypt()._context()  # nothing failed: its status is OK and has no message
    with pytest.raises(MongoCryptError) as info:
        raise_status(lib.mongocrypt_ctx_status, ctx._ctx)
    assert (str(info.value), info.value.code) == (
        "libmongocrypt reported a failure without a message",
        0,
    )


class _KmsTyped:
    """``lib`` whose statuses all report libmongocrypt's KMS type (libmongocrypt sets that type
    on few paths, none of which a unit test can reach without a network)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(lib, name)

    def mongocrypt_status_type(self, status: Any) -> int:
        return int(lib.MONGOCRYPT_STATUS_ERROR_KMS)


def test_a_kms_typed_status_always_raises_a_kms_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = local_crypt()._context()
    with pytest.raises(MongoCryptError):
        ctx.set_key_encryption_key("vault", None)
    monkeypatch.setattr(status_module, "lib", _KmsTyped())
    with pytest.raises(MongoCryptKmsError, match="unrecognized KMS provider"):
        raise_status(lib.mongocrypt_ctx_status, ctx._ctx, KeyVaultError)


def test_secrets_quoted_by_libmongocrypt_are_redacted() -> None:
    key = load_json(AWS_KEY)
    crypt = MongoCrypt(
        MongoCryptOptions(
            {"aws": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "example"}},
            bypass_encryption=True,
        )
    )
    ctx = crypt.explicit_encryption_context(
        v(1), ExplicitEncryptOptions(RANDOM, key_id=bytes(key["_id"]))
    )
    ctx.add_mongo_operation_result(bson.encode(key))
    ctx.complete_mongo_operation()
    assert ctx.state is State.NEED_KMS
    body = {"message": "refused", "secretAccessKey": "hush-123", "Plaintext": "pt-999"}
    with pytest.raises(MongoCryptKmsError) as info:
        ctx.kms_contexts()[0].feed(http_reply(400, json.dumps(body).encode(), "Bad Request"))
    message = str(info.value)
    assert "HTTP status=400" in message
    assert '"message": "refused"' in message  # what is not secret is quoted verbatim
    assert "hush-123" not in message
    assert "pt-999" not in message
    assert message.count("<redacted>") == 2
