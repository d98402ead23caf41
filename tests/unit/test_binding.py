"""The raw cffi binding: declarations resolved by the compiler match libmongocrypt's ABI."""

from __future__ import annotations

import pytest

from mongocrypt.engine.native import ffi, lib

pytestmark = pytest.mark.smoke


def test_binary_struct_is_the_public_two_field_view() -> None:
    assert ffi.sizeof("mongocrypt_binary_t") == ffi.sizeof("void *") + ffi.sizeof("void *")
    assert ffi.offsetof("mongocrypt_binary_t", "len") == ffi.sizeof("void *")


def test_context_states_are_distinct() -> None:
    names = [n for n in dir(lib) if n.startswith("MONGOCRYPT_CTX_")]
    values = [getattr(lib, n) for n in names]
    assert len(names) == 9 and len(set(values)) == 9


def test_status_round_trip() -> None:
    status = lib.mongocrypt_status_new()
    assert lib.mongocrypt_status_type(status) == lib.MONGOCRYPT_STATUS_OK
    assert lib.mongocrypt_status_code(status) == 0
    lib.mongocrypt_status_destroy(status)


def test_version_string_is_not_empty() -> None:
    length = ffi.new("uint32_t *")
    version = ffi.string(lib.mongocrypt_version(length)).decode()
    assert len(version) == length[0] and version.count(".") >= 2
