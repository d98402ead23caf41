"""Hostile or mistaken input gives a typed error with a clear message, never a crash."""

from __future__ import annotations

import os

import bson
import pytest

from conftest import DETERMINISTIC, RANDOM, unv, v
from mongocrypt import MongoCryptError
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCrypt, MongoCryptOptions
from mongocrypt.engine.binary import BinaryView
from mongocrypt.errors import MongoCryptClosedError, MongoCryptKmsError
from mongocrypt.io.memory import InMemoryIO


def test_error_tree() -> None:
    assert issubclass(MongoCryptKmsError, MongoCryptError)
    assert issubclass(MongoCryptClosedError, MongoCryptError)
    error = MongoCryptError("message", 7)
    assert (str(error), error.code) == ("message", 7)
    assert MongoCryptError("m").code == 0


@pytest.mark.parametrize(
    ("document", "text"),
    [
        (b"garbage", "malformed bson"),
        (b"\x05\0\0\0\0", "must contain 'v'"),
        (bson.encode({"v": 1}), "'v' must contain a binary"),
        (bson.encode({"v": bson.Binary(b"\x01abc", 6)}), "too small"),
    ],
)
def test_malformed_explicit_decrypt_input(
    encrypter: ExplicitEncrypter, document: bytes, text: str
) -> None:
    with pytest.raises(MongoCryptError, match=text):
        encrypter.decrypt(document)


def test_malformed_auto_decrypt_input() -> None:
    with (
        MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}})) as crypt,
        pytest.raises(MongoCryptError, match="malformed bson"),
    ):
        crypt.decryption_context(b"\x10\0\0\0garbage")


def test_non_buffer_input_is_a_type_error(encrypter: ExplicitEncrypter) -> None:
    with pytest.raises(TypeError, match="expected bytes-like BSON data, not dict"):
        encrypter.decrypt({"v": 1})  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(TypeError):
        BinaryView(3)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(ValueError, match="empty buffer"):
        encrypter.decrypt(b"")


@pytest.mark.requirement("CSE-ERR-04")
def test_ciphertext_from_another_key_vault(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    ciphertext = encrypter.encrypt(v("x"), RANDOM, key_id=key_id)
    stranger = ExplicitEncrypter(
        InMemoryIO(), MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    )
    with pytest.raises(MongoCryptError, match="not all keys requested were satisfied"):
        stranger.decrypt(ciphertext)


@pytest.mark.requirement("CSE-ERR-04")
def test_key_wrapped_by_another_master_key(
    encrypter: ExplicitEncrypter, key_id: bson.Binary, memory_io: InMemoryIO
) -> None:
    ciphertext = encrypter.encrypt(v("x"), RANDOM, key_id=key_id)
    other = InMemoryIO()
    other.keys.extend(memory_io.keys)
    stranger = ExplicitEncrypter(
        other, MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    )
    with pytest.raises(MongoCryptError, match="HMAC validation failure"):
        stranger.decrypt(ciphertext)


@pytest.mark.requirement("CSE-ERR-04")
@pytest.mark.parametrize("algorithm", [DETERMINISTIC, RANDOM, "Unindexed"])
def test_truncated_and_tampered_ciphertexts(
    encrypter: ExplicitEncrypter, key_id: bson.Binary, algorithm: str
) -> None:
    ciphertext = bytes(unv(encrypter.encrypt(v("a secret value"), algorithm, key_id=key_id)))
    for cut in (len(ciphertext) - 1, len(ciphertext) - 16, 18, 17):
        with pytest.raises(MongoCryptError):
            encrypter.decrypt(v(bson.Binary(ciphertext[:cut], 6)))
    for position in (20, len(ciphertext) // 2, len(ciphertext) - 1):
        tampered = bytearray(ciphertext)
        tampered[position] ^= 0x40
        with pytest.raises(MongoCryptError):
            encrypter.decrypt(v(bson.Binary(bytes(tampered), 6)))


@pytest.mark.requirement("CSE-AUTO-09")
def test_encrypting_an_encrypted_value_is_refused(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    ciphertext = unv(encrypter.encrypt(v("x"), RANDOM, key_id=key_id))
    with pytest.raises(MongoCryptError, match="subtype 6 is invalid for encryption"):
        encrypter.encrypt(v(ciphertext), RANDOM, key_id=key_id)


@pytest.mark.requirement("CSE-API-07")
def test_unknown_algorithm_and_query_type(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    with pytest.raises(MongoCryptError, match="unsupported algorithm"):
        encrypter.encrypt(v("x"), "Rot13", key_id=key_id)
    with pytest.raises(MongoCryptError, match=r"(?i)unsupported query_type"):
        encrypter.encrypt(v("x"), "Indexed", key_id=key_id, contention_factor=0, query_type="fuzzy")


def test_unknown_provider_for_a_data_key(encrypter: ExplicitEncrypter) -> None:
    with pytest.raises(MongoCryptError, match="aws"):
        encrypter.create_data_key("aws", master_key={"region": "us-east-1", "key": "arn"})


def test_bad_range_options(encrypter: ExplicitEncrypter, key_id: bson.Binary) -> None:
    with pytest.raises(MongoCryptError):
        encrypter.encrypt(
            v(500),
            "Range",
            key_id=key_id,
            contention_factor=0,
            range_opts=bson.encode({"min": 0, "max": 10, "sparsity": bson.Int64(1)}),
        )
    with pytest.raises(MongoCryptError):
        encrypter.encrypt(v(5), "Range", key_id=key_id, contention_factor=0, range_opts=b"\x01\x02")
