"""mongocrypt's crypto hooks (bindings/csrc/hooks.c): known-answer vectors through each hook, the
MONGOCRYPT_CRYPTO_HOOKS switch, and a differential test of every algorithm with the hooks on and
off (what must be equal is, and everything decrypts both ways)."""

from __future__ import annotations

import hmac as std_hmac
import logging
import os
import random
import struct
from collections.abc import Callable, Iterator
from typing import Any

import bson
import pytest
from bson import Int64

from conftest import DETERMINISTIC, RANDOM, load_json
from mongocrypt._env import CRYPTO_HOOKS as ENV_CRYPTO_HOOKS
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import (
    ExplicitEncryptOptions,
    MongoCrypt,
    MongoCryptOptions,
    State,
)
from mongocrypt.engine.native import crypto_hooks_wanted, ffi, lib
from mongocrypt.io.memory import InMemoryIO

# -- the hooks one by one (mongocrypt_py_hook_run) --------------------------------------------

CBC_ENCRYPT, CBC_DECRYPT, CTR, HMAC_SHA_512, HMAC_SHA_256, SHA_256, RANDOM_BYTES = range(7)


def hook(which: int, data: bytes = b"", key: bytes = b"", iv: bytes = b"", size: int = 0) -> bytes:
    """Run one hook; ``size`` is the output buffer (default: as long as the input, at least 64)."""
    out = ffi.new("uint8_t[]", size or max(len(data), 64))
    written = lib.mongocrypt_py_hook_run(
        which, key, len(key), iv, len(iv), data, len(data), out, len(out)
    )
    if written < 0:
        raise ValueError("the hook failed")
    return bytes(ffi.buffer(out, written))


STANDARDS = load_json("crypto/standards.json")


@pytest.mark.parametrize("case", STANDARDS["aes-256-cbc"], ids=lambda c: c["name"])
def test_aes_256_cbc_nist(case: dict[str, str]) -> None:
    key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["iv"])
    plaintext, ciphertext = bytes.fromhex(case["plaintext"]), bytes.fromhex(case["ciphertext"])
    assert hook(CBC_ENCRYPT, plaintext, key, iv) == ciphertext
    assert hook(CBC_DECRYPT, ciphertext, key, iv) == plaintext
    # Padding stays off when the thread's context is re-keyed: same length out as in, again.
    assert hook(CBC_ENCRYPT, plaintext[:16], key, iv) == ciphertext[:16]


@pytest.mark.parametrize("case", STANDARDS["hmac"], ids=lambda c: c["name"])
def test_hmac_rfc_4231(case: dict[str, str]) -> None:
    key, data = bytes.fromhex(case["key"]), bytes.fromhex(case["data"])
    for _ in range(2):  # the second time from the per-thread key cache (keys up to a block)
        assert hook(HMAC_SHA_256, data, key).hex() == case["sha256"]
        assert hook(HMAC_SHA_512, data, key).hex() == case["sha512"]


@pytest.mark.parametrize("case", STANDARDS["sha-256"], ids=lambda c: c["name"])
def test_sha_256_fips_180_2(case: dict[str, Any]) -> None:
    assert hook(SHA_256, bytes.fromhex(case["data"]) * case["repeat"]).hex() == case["digest"]


def test_hmac_sha_256_nist_cavp() -> None:
    cases = load_json("crypto/hmac-sha-256-nist-cavp.json")
    assert len(cases) == 225
    for case in cases:
        mac = hook(HMAC_SHA_256, bytes.fromhex(case["input"]), bytes.fromhex(case["key"]))
        assert mac.hex().startswith(case["expect"]), case["testname"]


def _pkcs7(data: bytes) -> bytes:
    fill = 16 - len(data) % 16
    return data + bytes([fill]) * fill


def _aead(algo: str, key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """libmongocrypt's four ciphertext formats, composed from the hooks (as libmongocrypt does)."""
    if algo == "AES-256-CTR/NONE":
        return iv + hook(CTR, plaintext, key, iv)
    if algo == "AES-256-CBC/SHA-512-256":  # FLE1: MAC key first, then the encryption key
        s = hook(CBC_ENCRYPT, _pkcs7(plaintext), key[32:64], iv)
        mac_input = aad + iv + s + struct.pack(">Q", 8 * len(aad))
        return iv + s + hook(HMAC_SHA_512, mac_input, key[:32])[:32]
    mode = CTR if algo == "AES-256-CTR/SHA-256" else CBC_ENCRYPT
    s = hook(mode, plaintext if mode == CTR else _pkcs7(plaintext), key[:32], iv)
    return iv + s + hook(HMAC_SHA_256, aad + iv + s, key[32:64])


@pytest.mark.parametrize(
    "case", load_json("crypto/roundtrip.json"), ids=lambda c: f"{c['file']}: {c['name']}"
)
def test_libmongocrypt_roundtrip_vectors(case: dict[str, str]) -> None:
    key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["iv"])
    aad, plaintext = bytes.fromhex(case.get("aad", "")), bytes.fromhex(case["plaintext"])
    ciphertext = bytes.fromhex(case["ciphertext"])
    assert _aead(case["algo"], key, iv, aad, plaintext) == ciphertext
    body = ciphertext[16:] if case["algo"].endswith("NONE") else ciphertext[16:-32]
    if case["algo"].startswith("AES-256-CTR"):
        assert hook(CTR, body, key[:32], iv) == plaintext
    else:
        ke = key[32:64] if case["algo"].endswith("512-256") else key[:32]
        assert hook(CBC_DECRYPT, body, ke, iv) == _pkcs7(plaintext)


def test_random_bytes_are_fresh_and_never_shared_with_a_forked_child() -> None:
    draws = {hook(RANDOM_BYTES, size=16) for _ in range(1000)}  # across several buffer refills
    assert len(draws) == 1000 and all(len(d) == 16 for d in draws)
    assert len(hook(RANDOM_BYTES, size=200)) == 200  # large requests bypass the buffer
    hook(RANDOM_BYTES, size=16)  # this thread's buffer now holds bytes not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first draw must not be the parent's next one
        os.write(write, hook(RANDOM_BYTES, size=16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != hook(RANDOM_BYTES, size=16)


def test_hooks_refuse_bad_lengths() -> None:
    with pytest.raises(ValueError):
        hook(CBC_ENCRYPT, b"x" * 16, b"short key", b"\0" * 16)
    with pytest.raises(ValueError):
        hook(CTR, b"x" * 16, b"k" * 32, b"short iv")
    with pytest.raises(ValueError):
        hook(HMAC_SHA_512, b"data", b"key", size=32)  # output smaller than the digest


def test_cbc_decryption_keeps_its_key_only_while_it_is_the_same() -> None:
    """CBC decryption re-keys only when the key changes and takes each IV without re-keying:
    interleaved keys, fresh IVs, lengths from one block up, and a refused call in between all
    decrypt what the (NIST-checked, always re-keyed) encryption hook produced."""
    rng = random.Random(16)
    keys = [rng.randbytes(32) for _ in range(3)]
    cases = []
    for _ in range(60):
        key, iv = keys[rng.choice((0, 0, 0, 1, 2))], rng.randbytes(16)
        plaintext = rng.randbytes(16 * rng.randint(1, 8))
        cases.append((key, iv, plaintext, hook(CBC_ENCRYPT, plaintext, key, iv)))
    for i, (key, iv, plaintext, ciphertext) in enumerate(cases):
        if i % 10 == 5:  # not whole blocks: refused, and the next call re-keys in full
            with pytest.raises(ValueError):
                hook(CBC_DECRYPT, ciphertext[:-1], key, iv)
        assert hook(CBC_DECRYPT, ciphertext, key, iv) == plaintext


def _reference_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CTR from its definition, the block cipher being the NIST-checked CBC hook on one
    block with a zero IV: keystream block i is AES(key, iv + i), the counter 128 bits big-endian."""
    counter = int.from_bytes(iv, "big")
    stream = b"".join(
        hook(CBC_ENCRYPT, ((counter + i) % 2**128).to_bytes(16, "big"), key, bytes(16))
        for i in range(-(-len(data) // 16))
    )
    return bytes(a ^ b for a, b in zip(data, stream))


def test_ctr_keeps_its_key_only_while_it_is_the_same() -> None:
    """CTR re-keys only when the key changes and otherwise sets just the IV: interleaved keys,
    fresh IVs (one about to wrap the counter) and lengths that are not whole blocks all match
    the definition."""
    rng = random.Random(17)
    keys = [rng.randbytes(32) for _ in range(3)]
    for i in range(60):
        key = keys[rng.choice((0, 0, 0, 1, 2))]
        iv = b"\xff" * 16 if i == 7 else rng.randbytes(16)
        data = rng.randbytes(rng.randint(1, 100))
        assert hook(CTR, data, key, iv) == _reference_ctr(key, iv, data)
        assert hook(CTR, hook(CTR, data, key, iv), key, iv) == data  # its own inverse


# -- the switch -------------------------------------------------------------------------------


def _handle(hooks: str, monkeypatch: pytest.MonkeyPatch, key: bytes) -> MongoCrypt:
    monkeypatch.setenv(ENV_CRYPTO_HOOKS, hooks)
    crypt = MongoCrypt(MongoCryptOptions({"local": {"key": key}}, bypass_encryption=True))
    monkeypatch.delenv(ENV_CRYPTO_HOOKS)  # read once: the handle keeps what it saw
    return crypt


def test_switch_is_read_once_at_handle_creation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, local_key: bytes
) -> None:
    monkeypatch.delenv(ENV_CRYPTO_HOOKS, raising=False)
    assert crypto_hooks_wanted()  # on by default
    with caplog.at_level(logging.DEBUG, logger="mongocrypt.engine"):
        on, off = _handle("1", monkeypatch, local_key), _handle("0", monkeypatch, local_key)
    assert on.crypto_hooks and not off.crypto_hooks
    lines = [r.getMessage() for r in caplog.records if r.name == "mongocrypt.engine"]
    assert lines[0].startswith("libmongocrypt handle: mongocrypt's crypto hooks on OpenSSL")
    assert (
        lines[1] == f"libmongocrypt handle: libmongocrypt's built-in crypto ({ENV_CRYPTO_HOOKS}=0)"
    )
    monkeypatch.setenv(ENV_CRYPTO_HOOKS, "off")
    with pytest.raises(ValueError, match="MONGOCRYPT_CRYPTO_HOOKS must be 0 or 1, not 'off'"):
        MongoCrypt(MongoCryptOptions({"local": {"key": local_key}}))


# -- differential: hooks on and off -----------------------------------------------------------

RANGE_OPTS = bson.encode({"min": 0, "max": 1_000_000, "sparsity": Int64(1)})
#: Fields of Queryable Encryption insert payloads that hold random ciphertext; all others are
#: tokens derived deterministically from the key and the value.
RANDOM_FIELDS = {"v", "p"}


class Pair:
    """Two handles on the same master key and data key, one with the hooks and one without."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, local_key: bytes) -> None:
        io = InMemoryIO()
        options = MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
        self.key_id = bytes(ExplicitEncrypter(io, options).create_data_key("local"))
        self.key_doc = io.keys[0]
        self.on = _handle("1", monkeypatch, local_key)
        self.off = _handle("0", monkeypatch, local_key)

    def finish(self, ctx: Any) -> bytes:
        with ctx:
            if ctx.state == State.NEED_MONGO_KEYS:
                ctx.add_mongo_operation_result(self.key_doc)
                ctx.complete_mongo_operation()
            return bytes(ctx.finish())

    def encrypt(self, crypt: MongoCrypt, value: Any, opts: ExplicitEncryptOptions) -> bytes:
        return self.finish(crypt.explicit_encryption_context(bson.encode({"v": value}), opts))

    def decrypt(self, crypt: MongoCrypt, ciphertext: bytes) -> Any:
        return bson.decode(self.finish(crypt.explicit_decryption_context(ciphertext)))["v"]

    def check(self, value: Any, opts: ExplicitEncryptOptions, deterministic: bool) -> None:
        """Encrypt with both; compare what must be equal; decrypt each with both."""
        on, off = self.encrypt(self.on, value, opts), self.encrypt(self.off, value, opts)
        if deterministic:
            assert on == off
        elif opts.algorithm in ("Indexed", "Range"):
            assert _tokens(on) == _tokens(off)
        else:
            assert on != off  # fresh IVs
        for ciphertext in (on, off):
            for crypt in (self.on, self.off):
                assert self.decrypt(crypt, ciphertext) == value


def _tokens(ciphertext: bytes) -> Any:
    """A Queryable Encryption payload without its random parts (and without payloadId)."""
    blob = bytes(bson.decode(ciphertext)["v"])
    return _strip(bson.decode(blob[1:]))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in RANDOM_FIELDS | {"payloadId"}}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.fixture
def pair(monkeypatch: pytest.MonkeyPatch, local_key: bytes) -> Iterator[Pair]:
    yield Pair(monkeypatch, local_key)


def _values(rng: random.Random, any_type: bool) -> Iterator[Any]:
    """Random values; doubles and documents only when ``any_type`` (Deterministic and Indexed
    refuse them)."""
    while True:
        kinds: list[Callable[[], Any]] = [
            lambda: rng.randrange(-(2**31), 2**31),
            lambda: Int64(rng.randrange(-(2**63), 2**63)),
            lambda: "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 300))),
            lambda: rng.randbytes(rng.randrange(1, 5000)),
        ]
        if any_type:
            kinds.append(lambda: rng.random() * 10 ** rng.randrange(-5, 10))
            kinds.append(lambda: {"nested": rng.randbytes(rng.randrange(40)).hex(), "n": 1})
        yield rng.choice(kinds)()


@pytest.mark.parametrize(("algorithm", "deterministic"), [(DETERMINISTIC, True), (RANDOM, False)])
def test_differential_csfle(pair: Pair, algorithm: str, deterministic: bool) -> None:
    values = _values(random.Random(16), any_type=not deterministic)
    opts = ExplicitEncryptOptions(algorithm, key_id=pair.key_id)
    for _ in range(2000):
        pair.check(next(values), opts, deterministic)


def test_differential_queryable_encryption(pair: Pair) -> None:
    any_type, indexable = _values(random.Random(1616), True), _values(random.Random(61), False)
    unindexed = ExplicitEncryptOptions("Unindexed", key_id=pair.key_id)
    indexed = ExplicitEncryptOptions("Indexed", key_id=pair.key_id, contention_factor=0)
    find = ExplicitEncryptOptions(
        "Indexed", key_id=pair.key_id, contention_factor=0, query_type="equality"
    )
    for _ in range(1000):
        pair.check(next(any_type), unindexed, deterministic=False)
        value = next(indexable)
        pair.check(value, indexed, deterministic=False)
        assert pair.encrypt(pair.on, value, find) == pair.encrypt(pair.off, value, find)


def test_differential_range(pair: Pair) -> None:
    rng = random.Random(16_000)
    insert = ExplicitEncryptOptions(
        "Range", key_id=pair.key_id, contention_factor=0, range_opts=RANGE_OPTS
    )
    find = ExplicitEncryptOptions(
        "Range",
        key_id=pair.key_id,
        contention_factor=0,
        range_opts=RANGE_OPTS,
        query_type="range",
        is_expression=True,
    )
    for _ in range(1000):
        low = rng.randrange(0, 1_000_000)
        pair.check(low, insert, deterministic=False)
        expression = {"$and": [{"v": {"$gte": low}}, {"v": {"$lt": rng.randrange(low, 10**6)}}]}
        payloads = []
        for crypt in (pair.on, pair.off):
            ctx = crypt.explicit_encryption_context(bson.encode({"v": expression}), find)
            payloads.append(bson.decode(pair.finish(ctx)))
        on, off = (
            [
                _strip(bson.decode(bytes(term["v"][op])[1:]))
                for term, op in zip(p["v"]["$and"], ("$gte", "$lt"))
            ]
            for p in payloads
        )
        assert on == off


@pytest.mark.parametrize(("which", "digest"), [(HMAC_SHA_256, "sha256"), (HMAC_SHA_512, "sha512")])
def test_hmac_matches_the_standard_library_at_every_length(which: int, digest: str) -> None:
    """Every message length across the one-block shortcut's boundary (55 bytes for SHA-256, 111
    for SHA-512) and beyond, under cached keys, one-off keys and keys longer than a block."""
    rng = random.Random(18)
    keys = [rng.randbytes(n) for n in (32, 32, 1, 64, 128, 200)]
    for length in range(0, 300):
        key = keys[length % len(keys)]
        message = rng.randbytes(length)
        expected = std_hmac.new(key, message, digest).digest()
        assert hook(which, message, key) == expected, length
