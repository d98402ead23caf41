"""The handle: libmongocrypt's verdict on its configuration, crypt_shared, lifecycle."""

from __future__ import annotations

import base64
import gc
import os
from pathlib import Path
from typing import Any

import bson
import pytest

from conftest import DETERMINISTIC, RANDOM, present, unv, v
from mongocrypt import MongoCryptClosedError, MongoCryptError
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import ExplicitEncryptOptions, MongoCrypt, MongoCryptOptions, State
from mongocrypt.io.memory import InMemoryIO


@pytest.mark.requirement("CSE-API-05")
@pytest.mark.parametrize(
    ("providers", "text"),
    [
        ({"vault": {"x": 1}}, "unrecognized KMS provider `vault`"),
        ({"aws": {"accessKeyId": 1}}, "accessKeyId"),
        ({"local:bad name": {"key": os.urandom(96)}}, "unsupported character"),
    ],
)
def test_libmongocrypt_rejects_bad_providers_with_its_message(
    providers: dict[str, Any], text: str
) -> None:
    with pytest.raises(MongoCryptError, match=text):
        MongoCrypt(MongoCryptOptions(providers))


def test_malformed_schema_map_bson() -> None:
    with pytest.raises(MongoCryptError, match="invalid bson"):
        MongoCrypt(
            MongoCryptOptions({"local": {"key": os.urandom(96)}}, schema_map=b"\x05\0\0\0\x01")
        )


@pytest.mark.requirement("CSE-API-05", "CSE-KMS-01", "CSE-LMC-15", "CSE-SHL-04", "CSE-SHL-07")
def test_every_provider_type_and_named_providers_are_accepted() -> None:
    providers = {
        "local": {"key": os.urandom(96)},
        "local:other": {"key": os.urandom(96)},
        "aws": {"accessKeyId": "id", "secretAccessKey": "secret"},
        "aws:eu": {"accessKeyId": "id", "secretAccessKey": "secret", "sessionToken": "token"},
        "azure": {"tenantId": "t", "clientId": "c", "clientSecret": "s"},
        "gcp": {"email": "e@example.com", "privateKey": "AAAA"},
        "kmip": {"endpoint": "localhost:5696"},
        "kmip:backup": {"endpoint": "localhost:5697"},
    }
    with MongoCrypt(MongoCryptOptions(providers, bypass_encryption=True)) as crypt:
        assert crypt.crypt_shared_lib_version is None


@pytest.mark.requirement("CSE-SHL-04", "CSE-XOPT-06")
def test_crypt_shared_required_but_absent() -> None:
    options = MongoCryptOptions(
        {"local": {"key": os.urandom(96)}},
        crypt_shared_lib_required=True,
        crypt_shared_lib_search_paths=[],
    )
    with pytest.raises(MongoCryptError, match="crypt_shared_lib_required is set"):
        MongoCrypt(options)


@pytest.mark.requirement("CSE-LMC-15", "CSE-SHL-01", "CSE-SHL-05", "CSE-XOPT-05", "CSE-XOPT-07")
def test_crypt_shared_path_override_is_passed_through(tmp_path: Path) -> None:
    """libmongocrypt itself reports the override it could not load (we do not validate it)."""
    path = tmp_path / "missing" / "mongo_crypt_v1.so"
    options = MongoCryptOptions({"local": {"key": os.urandom(96)}}, crypt_shared_lib_path=path)
    with pytest.raises(MongoCryptError, match="override path") as info:
        MongoCrypt(options)
    assert str(path) in str(info.value)


def test_closed_handle_refuses_new_contexts() -> None:
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}}))
    crypt.close()
    crypt.close()  # idempotent
    with pytest.raises(MongoCryptClosedError, match="handle is closed"):
        crypt.decryption_context(bson.encode({}))
    with pytest.raises(MongoCryptClosedError):
        crypt.crypt_shared_lib_version  # noqa: B018


@pytest.mark.requirement("CSE-LMC-17")
def test_open_context_outlives_its_closed_handle(local_key: bytes) -> None:
    """Closing the handle while a context is open must not free memory the context uses."""
    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.io.memory import InMemoryIO

    io = InMemoryIO()
    maker = ExplicitEncrypter(
        io, MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
    )
    key_id = maker.create_data_key("local")
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True))
    ctx = crypt.explicit_encryption_context(v("x"), ExplicitEncryptOptions(RANDOM, key_id=key_id))
    crypt.close()
    del crypt
    gc.collect()
    assert ctx.state == State.NEED_MONGO_KEYS
    ctx.add_mongo_operation_result(io.keys[0])
    ctx.complete_mongo_operation()
    assert unv(maker.decrypt(v(unv(ctx.finish())))) == "x"
    ctx.close()


def test_closed_context_refuses_use() -> None:
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}}))
    ctx = crypt.decryption_context(bson.encode({"a": 1}))
    ctx.close()
    ctx.close()
    assert ctx.closed
    with pytest.raises(MongoCryptClosedError, match="context is closed"):
        ctx.state  # noqa: B018


def test_failed_init_closes_the_context() -> None:
    """A context whose options libmongocrypt rejects is released at once, not leaked."""
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}}))
    with pytest.raises(MongoCryptError, match="cannot set both key alt name and index type"):
        crypt.explicit_encryption_context(v(1), ExplicitEncryptOptions("Indexed", key_alt_name="a"))


def test_database_must_be_a_string() -> None:
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}}))
    with pytest.raises(TypeError, match="database must be a str"):
        crypt.encryption_context(b"db", bson.encode({"ping": 1}))  # type: ignore[arg-type]  # a wrong type on purpose


def test_options_must_be_mongocrypt_options() -> None:
    with pytest.raises(TypeError, match="options must be MongoCryptOptions"):
        MongoCrypt({"local": {}})  # type: ignore[arg-type]  # a wrong type on purpose


def test_commands_libmongocrypt_bypasses_need_no_io() -> None:
    crypt = MongoCrypt(
        MongoCryptOptions({"local": {"key": os.urandom(96)}}, crypt_shared_lib_search_paths=[])
    )
    with crypt.encryption_context("admin", bson.encode({"ping": 1})) as ctx:
        assert ctx.state == State.READY
        assert bson.decode(ctx.finish()) == {"ping": 1}


def test_every_handle_and_context_is_released_on_error_paths(local_key: bytes) -> None:
    """The engine's counters return to where they started after failures of every kind."""
    from mongocrypt.engine.native import live_objects

    gc.collect()
    before = live_objects()
    providers: dict[str, Any]
    for providers in ({"vault": {}}, {"aws": {"accessKeyId": 1}}):
        with pytest.raises(MongoCryptError):
            MongoCrypt(MongoCryptOptions(providers))
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": local_key}}))
    for bad in (b"garbage", bson.encode({"v": 1})):
        with pytest.raises(MongoCryptError):
            crypt.explicit_decryption_context(bad)
    with pytest.raises(MongoCryptError):
        crypt.explicit_encryption_context(v(1), ExplicitEncryptOptions("Indexed", key_alt_name="a"))
    ctx = crypt.decryption_context(bson.encode({"a": 1}))
    assert live_objects()["contexts"] == before["contexts"] + 1
    ctx.close()
    crypt.close()
    del crypt, ctx
    gc.collect()
    assert live_objects() == before


def test_fast_path_contexts_are_owned_like_every_other(local_key: bytes) -> None:
    """A context made by the one-call fast path is released on each of its three outcomes, and
    the ffi.gc safety net frees one that is dropped without being closed."""
    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.engine.native import live_objects
    from mongocrypt.io.memory import InMemoryIO

    io = InMemoryIO()
    options = MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
    key_id = bytes(ExplicitEncrypter(io, options).create_data_key("local"))
    crypt = MongoCrypt(options)
    gc.collect()
    before = live_objects()["contexts"]
    random = ExplicitEncryptOptions(RANDOM, key_id=key_id)
    result, ctx = crypt.explicit_fast(v("x"), random)  # key not cached: a context
    assert result is None and ctx is not None and ctx.state == State.NEED_MONGO_KEYS
    assert live_objects()["contexts"] == before + 1
    del ctx
    gc.collect()
    assert live_objects()["contexts"] == before
    with crypt.explicit_encryption_context(
        v("x"), ExplicitEncryptOptions(RANDOM, key_id=key_id)
    ) as c:
        c.add_mongo_operation_result(io.keys[0])
        c.complete_mongo_operation()
        c.finish()
    ciphertext, none = crypt.explicit_fast(v("x"), random)  # cached: DONE at once
    assert none is None and ciphertext is not None
    assert live_objects()["contexts"] == before
    with pytest.raises(MongoCryptError):
        crypt.explicit_fast(b"\x05\0\0\0\0")  # ERROR: raised, and the context released
    assert live_objects()["contexts"] == before
    assert unv(present(crypt.explicit_fast(ciphertext)[0])) == "x"
    assert live_objects()["contexts"] == before


def test_fast_path_result_too_big_for_its_buffer_comes_back_in_the_context(
    local_key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no room reserved for the ciphertext, the C side leaves the result in the context,
    which Python adopts, copies from and releases."""
    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.engine import handle
    from mongocrypt.engine.native import live_objects
    from mongocrypt.io.memory import InMemoryIO

    io = InMemoryIO()
    options = MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
    maker = ExplicitEncrypter(io, options)
    key_id = maker.create_data_key("local")
    expected = maker.encrypt(v("x"), DETERMINISTIC, key_id=key_id)  # caches the key
    monkeypatch.setattr(handle, "_CIPHERTEXT_OVERHEAD", 0)
    gc.collect()
    before = live_objects()["contexts"]
    ciphertext, ctx = maker.mongocrypt.explicit_fast(
        v("x"), ExplicitEncryptOptions(DETERMINISTIC, key_id=bytes(key_id))
    )
    assert ctx is None and ciphertext == expected
    assert live_objects()["contexts"] == before


@pytest.mark.requirement("CSE-KMS-05")
def test_local_key_may_be_a_base64_string(local_key: bytes) -> None:
    """The string is decoded: a key created under it unwraps under the same 96 bytes given raw."""
    as_text = base64.b64encode(local_key).decode()
    memory_io = InMemoryIO()
    encrypters = [
        ExplicitEncrypter(
            memory_io, MongoCryptOptions({"local": {"key": key}}, bypass_encryption=True)
        )
        for key in (as_text, local_key)
    ]
    try:
        key_id = encrypters[0].create_data_key("local")
        ciphertext = encrypters[0].encrypt(v("x"), RANDOM, key_id=key_id)
        assert unv(encrypters[1].decrypt(ciphertext)) == "x"
    finally:
        for encrypter in encrypters:
            encrypter.close()
    with pytest.raises(TypeError, match="must be 96 bytes or their base64 text"):
        MongoCryptOptions({"local": {"key": as_text[:-8]}}, bypass_encryption=True)
