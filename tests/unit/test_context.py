"""engine/context.py: one libmongocrypt context, its states, options, lifecycle and adoption."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from typing import Any

import bson
import pytest

from conftest import RANDOM, v
from mongocrypt.engine import ExplicitEncryptOptions, MongoCrypt, MongoCryptOptions, State
from mongocrypt.engine.context import MongoCryptContext
from mongocrypt.engine.native import ffi, lib, live_objects
from mongocrypt.engine.options import DataKeyOptions
from mongocrypt.errors import MongoCryptClosedError, MongoCryptError


@pytest.fixture
def crypt() -> Iterator[MongoCrypt]:
    with MongoCrypt(
        MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    ) as handle:
        yield handle


def test_states_mirror_libmongocrypts_values() -> None:
    assert {state.name: int(state) for state in State} == {
        "ERROR": lib.MONGOCRYPT_CTX_ERROR,
        "NEED_MONGO_COLLINFO": lib.MONGOCRYPT_CTX_NEED_MONGO_COLLINFO,
        "NEED_MONGO_COLLINFO_WITH_DB": lib.MONGOCRYPT_CTX_NEED_MONGO_COLLINFO_WITH_DB,
        "NEED_MONGO_MARKINGS": lib.MONGOCRYPT_CTX_NEED_MONGO_MARKINGS,
        "NEED_MONGO_KEYS": lib.MONGOCRYPT_CTX_NEED_MONGO_KEYS,
        "NEED_KMS": lib.MONGOCRYPT_CTX_NEED_KMS,
        "NEED_KMS_CREDENTIALS": lib.MONGOCRYPT_CTX_NEED_KMS_CREDENTIALS,
        "READY": lib.MONGOCRYPT_CTX_READY,
        "DONE": lib.MONGOCRYPT_CTX_DONE,
    }


def test_explicit_options_reach_the_key_request(crypt: MongoCrypt) -> None:
    ctx = crypt.explicit_encryption_context(v(1), ExplicitEncryptOptions(RANDOM, key_alt_name="a"))
    assert ctx.state is State.NEED_MONGO_KEYS
    assert bson.decode(ctx.mongo_operation()) == {
        "$or": [{"_id": {"$in": []}}, {"keyAltNames": {"$in": ["a"]}}]
    }
    ctx.close()


def test_a_data_key_goes_ready_then_done(crypt: MongoCrypt) -> None:
    with crypt.data_key_context(DataKeyOptions("local", key_alt_names=["a", "b"])) as ctx:
        before = ctx.state
        key = bson.decode(ctx.finish())
        assert (before, ctx.state) == (State.READY, State.DONE)
        with pytest.raises(MongoCryptError, match="wrong state"):
            ctx.finish()
    assert sorted(key["keyAltNames"]) == ["a", "b"]
    assert key["masterKey"] == {"provider": "local"}


def test_option_and_init_failures_carry_libmongocrypts_message(crypt: MongoCrypt) -> None:
    with crypt._context() as ctx, pytest.raises(MongoCryptError, match="unrecognized KMS provider"):
        ctx.set_key_encryption_key("vault", None)
    with crypt._context() as ctx, pytest.raises(MongoCryptError, match="malformed bson") as info:
        ctx.init_decrypt(b"not bson at all")
    assert info.value.code == 1
    with crypt._context() as ctx, pytest.raises(MongoCryptError, match="uninitialized"):
        ctx.finish()


def test_mongo_database_outside_its_state_is_an_error(crypt: MongoCrypt) -> None:
    with (
        (
            crypt.explicit_encryption_context(
                v(1), ExplicitEncryptOptions(RANDOM, key_alt_name="a")
            )
        ) as ctx,
        pytest.raises(MongoCryptError, match="wrong state"),
    ):
        ctx.mongo_database  # noqa: B018


def test_close_is_idempotent_and_the_context_manager_closes(crypt: MongoCrypt) -> None:
    gc.collect()
    before = live_objects()["contexts"]
    with crypt.decryption_context(bson.encode({"a": 1})) as ctx:
        assert not ctx.closed
        assert live_objects()["contexts"] == before + 1
    assert ctx.closed
    assert live_objects()["contexts"] == before  # released now, not at garbage collection
    ctx.close()
    assert ctx.closed


USES: list[Callable[[MongoCryptContext], Any]] = [
    lambda ctx: ctx.check_open(),
    lambda ctx: ctx.raise_error(),
    lambda ctx: ctx.mongo_database,
    lambda ctx: ctx.mongo_operation(),
    lambda ctx: ctx.add_mongo_operation_result(bson.encode({})),
    lambda ctx: ctx.complete_mongo_operation(),
    lambda ctx: ctx.provide_kms_providers(bson.encode({})),
    lambda ctx: ctx.kms_contexts(),
    lambda ctx: ctx.complete_kms(),
    lambda ctx: ctx.finish(),
]


@pytest.mark.parametrize("use", USES)
def test_use_after_close_raises_closed_error(
    crypt: MongoCrypt, use: Callable[[MongoCryptContext], Any]
) -> None:
    ctx = crypt.decryption_context(bson.encode({"a": 1}))
    ctx.close()
    with pytest.raises(MongoCryptClosedError, match="encryption context is closed"):
        use(ctx)


def test_an_adopted_native_context_is_owned_like_a_new_one(crypt: MongoCrypt) -> None:
    gc.collect()
    before = live_objects()["contexts"]
    # As the fast path hands one over: wrapped in ffi.gc the moment it reaches Python.
    native = ffi.gc(lib.mongocrypt_py_ctx_new(crypt._crypt), lib.mongocrypt_py_ctx_destroy)
    ctx = MongoCryptContext(crypt._crypt, "db", ("aws",), ctx=native)
    assert (ctx.database, ctx.on_demand_providers) == ("db", ("aws",))
    ctx.init_decrypt(bson.encode({"a": 1}))
    assert ctx.state is State.READY
    assert live_objects()["contexts"] == before + 1
    del ctx, native
    gc.collect()  # the gc safety net frees an adopted context that was never closed
    assert live_objects()["contexts"] == before
