"""Explicit operations end to end through the engine, with local keys and an in-memory key vault:
every algorithm round-trips, options really reach libmongocrypt, data keys and rewrap work."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import bson
import pytest

from conftest import DETERMINISTIC, RANDOM, unv, v
from mongocrypt import MongoCryptError, has_string_algorithm
from mongocrypt.dropin.asynchronous import AsyncExplicitEncrypter
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import AsyncMongoCryptCallback, KmsContext, MongoCryptOptions
from mongocrypt.errors import MongoCryptClosedError
from mongocrypt.io.memory import InMemoryIO

RANGE_INT = bson.encode({"min": 0, "max": 200, "sparsity": bson.Int64(1), "trimFactor": 1})
RANGE_DOUBLE = bson.encode({"min": 0.0, "max": 200.0, "precision": 2, "sparsity": bson.Int64(1)})
STRING_OPTS = bson.encode(
    {
        "caseSensitive": True,
        "diacriticSensitive": True,
        "prefix": {"strMinQueryLength": 2, "strMaxQueryLength": 10},
        "suffix": {"strMinQueryLength": 2, "strMaxQueryLength": 10},
    }
)

ROUND_TRIPS = [
    (DETERMINISTIC, "457-55-5462", {}),
    (DETERMINISTIC, bson.Int64(2**40), {}),
    (RANDOM, {"nested": ["document", 1]}, {}),
    (RANDOM, 3.25, {}),
    ("Indexed", "457-55-5462", {"contention_factor": 0}),
    ("Indexed", 7, {"contention_factor": 4}),
    ("Unindexed", "457-55-5462", {}),
    ("Range", 42, {"contention_factor": 0, "range_opts": RANGE_INT}),
    ("Range", 12.5, {"contention_factor": 0, "range_opts": RANGE_DOUBLE}),
]


def payload(ciphertext: bytes) -> dict[str, Any]:
    """The BSON document inside a Queryable Encryption insert or find payload."""
    return bson.decode(ciphertext[1:])


@pytest.mark.requirement("CSE-LMC-01", "CSE-LMC-07")
@pytest.mark.parametrize(
    ("algorithm", "value", "extra"),
    ROUND_TRIPS,
    ids=[f"{a.split('-')[-1]}-{type(val).__name__}" for a, val, _ in ROUND_TRIPS],
)
def test_round_trip(
    encrypter: ExplicitEncrypter,
    key_id: bson.Binary,
    algorithm: str,
    value: Any,
    extra: dict[str, Any],
) -> None:
    ciphertext = unv(encrypter.encrypt(v(value), algorithm, key_id=key_id, **extra))
    assert isinstance(ciphertext, bson.Binary) and ciphertext.subtype == 6
    assert bson.encode({"v": value}) != bson.encode({"v": ciphertext})
    assert unv(encrypter.decrypt(v(ciphertext))) == value


@pytest.mark.skipif(
    not has_string_algorithm, reason="the linked libmongocrypt lacks the String algorithm"
)
def test_string_algorithm_round_trip(encrypter: ExplicitEncrypter, key_id: bson.Binary) -> None:
    ciphertext = unv(
        encrypter.encrypt(
            v("hello world"), "String", key_id=key_id, contention_factor=0, string_opts=STRING_OPTS
        )
    )
    assert ciphertext[0] == 11  # an insert payload
    assert unv(encrypter.decrypt(v(ciphertext))) == "hello world"
    find = unv(
        encrypter.encrypt(
            v("hel"),
            "String",
            key_id=key_id,
            contention_factor=0,
            query_type="prefix",
            string_opts=STRING_OPTS,
        )
    )
    assert find[0] == 18  # a text-search find payload


@pytest.mark.skipif(
    has_string_algorithm, reason="checks the error of builds without the String algorithm"
)
def test_string_options_without_library_support_are_a_clear_error(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    with pytest.raises(MongoCryptError, match=r"String \(text\) algorithms"):
        encrypter.encrypt(
            v("hello"), "String", key_id=key_id, contention_factor=0, string_opts=STRING_OPTS
        )


def test_key_alt_name_selects_the_key(encrypter: ExplicitEncrypter, key_id: bson.Binary) -> None:
    by_name = unv(encrypter.encrypt(v("x"), DETERMINISTIC, key_alt_name="default"))
    by_id = unv(encrypter.encrypt(v("x"), DETERMINISTIC, key_id=key_id))
    assert by_name == by_id
    assert by_name[1:17] == bytes(
        key_id
    )  # FLE1 ciphertexts carry the key id after the subtype byte


def test_unknown_key_alt_name_is_an_error(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    with pytest.raises(MongoCryptError, match="not all keys requested were satisfied"):
        encrypter.encrypt(v("x"), DETERMINISTIC, key_alt_name="missing")


@pytest.mark.requirement("CSE-ENC-05")
def test_contention_factor_zero_reaches_libmongocrypt(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    """0 is a value, not "unset": without it Indexed is refused; with 0 the insert payload's
    contention counter is 0 and a find payload's maximum contention is 0."""
    with pytest.raises(MongoCryptError, match="contention"):
        encrypter.encrypt(v("x"), "Indexed", key_id=key_id)
    inserts = {
        payload(unv(encrypter.encrypt(v("x"), "Indexed", key_id=key_id, contention_factor=0)))["k"]
        for _ in range(8)
    }
    assert inserts == {0}
    find_zero = payload(
        unv(
            encrypter.encrypt(
                v("x"), "Indexed", key_id=key_id, contention_factor=0, query_type="equality"
            )
        )
    )
    find_eight = payload(
        unv(
            encrypter.encrypt(
                v("x"), "Indexed", key_id=key_id, contention_factor=8, query_type="equality"
            )
        )
    )
    assert (find_zero["cm"], find_eight["cm"]) == (0, 8)


@pytest.mark.requirement("CSE-LMC-07")
def test_range_expression(encrypter: ExplicitEncrypter, key_id: bson.Binary) -> None:
    expression = {"$and": [{"age": {"$gte": 5}}, {"age": {"$lte": 20}}]}
    encrypted = unv(
        encrypter.encrypt(
            v(expression),
            "Range",
            key_id=key_id,
            contention_factor=0,
            query_type="range",
            range_opts=RANGE_INT,
            is_expression=True,
        )
    )
    lower, upper = encrypted["$and"]
    assert lower["age"]["$gte"].subtype == 6 and lower["age"]["$gte"][0] == 13  # range find payload
    assert upper["age"]["$lte"].subtype == 6


def test_deterministic_is_deterministic_and_random_is_not(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    det = {bytes(unv(encrypter.encrypt(v("same"), DETERMINISTIC, key_id=key_id))) for _ in range(3)}
    rand = {bytes(unv(encrypter.encrypt(v("same"), RANDOM, key_id=key_id))) for _ in range(3)}
    assert (len(det), len(rand)) == (1, 3)


@pytest.mark.requirement("CSE-KV-07", "CSE-LMC-07")
def test_data_key_document(encrypter: ExplicitEncrypter, memory_io: InMemoryIO) -> None:
    key_id = encrypter.create_data_key("local", key_alt_names=["a", "b"])
    (document,) = [bson.decode(k) for k in memory_io.keys]
    assert document["_id"] == key_id and key_id.subtype == 4
    assert sorted(document["keyAltNames"]) == ["a", "b"]
    assert document["masterKey"] == {"provider": "local"}
    assert len(document["keyMaterial"]) > 96  # wrapped, never the raw key


def _vault_with(local_key: bytes, *documents: dict[str, Any]) -> ExplicitEncrypter:
    io = InMemoryIO()
    io.keys.extend(bson.encode(d) for d in documents)
    return ExplicitEncrypter(
        io, MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
    )


def test_key_material_is_the_key(local_key: bytes) -> None:
    """Two keys made from the same material decrypt each other's ciphertexts (once given the same
    id); a key made from other material does not."""
    material = os.urandom(96)
    maker = _vault_with(local_key)
    first = maker.create_data_key("local", key_material=material)
    twin = maker.create_data_key("local", key_material=material)
    other = maker.create_data_key("local", key_material=os.urandom(96))
    ciphertext = unv(maker.encrypt(v("secret"), DETERMINISTIC, key_id=first))
    documents = {bson.decode(k)["_id"]: bson.decode(k) for k in maker.callback.keys}
    for source, should_work in ((twin, True), (other, False)):
        document = {**documents[source], "_id": first}
        reader = _vault_with(local_key, document)
        if should_work:
            assert unv(reader.decrypt(v(ciphertext))) == "secret"
        else:
            with pytest.raises(MongoCryptError, match="HMAC validation failure"):
                reader.decrypt(v(ciphertext))


def test_key_material_must_be_96_bytes(encrypter: ExplicitEncrypter) -> None:
    with pytest.raises(ValueError, match="key_material must be 96 bytes, not 5"):
        encrypter.create_data_key("local", key_material=b"short")


@pytest.mark.requirement("CSE-LMC-07")
def test_rewrap_many_data_key_moves_keys_to_another_master_key(local_key: bytes) -> None:
    new_key = os.urandom(96)
    io = InMemoryIO()
    options = MongoCryptOptions(
        {"local": {"key": local_key}, "local:new": {"key": new_key}}, bypass_encryption=True
    )
    encrypter = ExplicitEncrypter(io, options)
    ids = [encrypter.create_data_key("local") for _ in range(3)]
    ciphertext = unv(encrypter.encrypt(v("kept"), RANDOM, key_id=ids[0]))
    result = encrypter.rewrap_many_data_key({}, provider="local:new")
    assert result is not None
    rewrapped = {k["_id"]: k for k in bson.decode(result)["v"]}
    assert sorted(rewrapped) == sorted(ids)
    assert {k["masterKey"]["provider"] for k in rewrapped.values()} == {"local:new"}
    # Apply the update as a key vault would ($set keyMaterial and masterKey), then read the
    # data back through a handle that knows only the new master key.
    updated = []
    for raw in io.keys:
        document = bson.decode(raw)
        change = rewrapped[document["_id"]]
        updated.append(
            {**document, "keyMaterial": change["keyMaterial"], "masterKey": change["masterKey"]}
        )
    reader = ExplicitEncrypter(
        InMemoryIO(), MongoCryptOptions({"local:new": {"key": new_key}}, bypass_encryption=True)
    )
    reader.callback.keys.extend(bson.encode(d) for d in updated)
    assert unv(reader.decrypt(v(ciphertext))) == "kept"


def test_rewrap_with_no_matching_keys_returns_none(encrypter: ExplicitEncrypter) -> None:
    assert encrypter.rewrap_many_data_key({"_id": "nothing"}) is None


def test_rewrap_master_key_needs_a_provider(encrypter: ExplicitEncrypter) -> None:
    with pytest.raises(ValueError, match="provider must be given"):
        encrypter.rewrap_many_data_key({}, master_key={"key": "x"})


def test_close_releases_the_handle_and_leaves_the_callback(
    encrypter: ExplicitEncrypter, memory_io: InMemoryIO
) -> None:
    """As pymongocrypt's explicit encrypter, sync and async alike: pymongo closes its I/O itself."""
    closed = []
    memory_io.close = lambda: closed.append(True)  # type: ignore[method-assign]  # to observe the call
    encrypter.close()
    assert closed == []
    with pytest.raises(MongoCryptClosedError):
        encrypter.decrypt(bson.encode({"v": bson.Binary(b"\x01" * 40, 6)}))


class AsyncMemoryIO(AsyncMongoCryptCallback):
    """The in-memory I/O behind coroutines, for the async encrypter."""

    def __init__(self, inner: InMemoryIO) -> None:
        self.inner = inner

    async def kms_request(self, kms_context: KmsContext) -> None:
        await asyncio.sleep(0)
        self.inner.kms_request(kms_context)

    async def collection_info(self, database: str, filter: bytes) -> Any:
        return self.inner.collection_info(database, filter)

    async def mark_command(self, database: str, cmd: bytes) -> bytes:
        return self.inner.mark_command(database, cmd)

    async def fetch_keys(self, filter: bytes) -> AsyncIterator[bytes]:
        for key in self.inner.fetch_keys(filter):
            await asyncio.sleep(0)
            yield key

    async def insert_data_key(self, data_key: bytes) -> Any:
        return self.inner.insert_data_key(data_key)

    def bson_encode(self, doc: Any) -> bytes:
        return bson.encode(doc)

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Any:
        return self.inner.fetch_kms_credentials(providers)

    async def close(self) -> None:
        self.inner.close()


def test_async_explicit_encrypter_round_trips(local_key: bytes) -> None:
    async def scenario() -> None:
        encrypter = AsyncExplicitEncrypter(
            AsyncMemoryIO(InMemoryIO()),
            MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True),
        )
        key_id = await encrypter.create_data_key("local", key_alt_names=["async"])
        results = await asyncio.gather(
            *(encrypter.encrypt(v(f"value {i}"), RANDOM, key_alt_name="async") for i in range(20))
        )
        plain = await asyncio.gather(*(encrypter.decrypt(r) for r in results))
        assert [unv(p) for p in plain] == [f"value {i}" for i in range(20)]
        rewrapped = await encrypter.rewrap_many_data_key({})
        assert rewrapped is not None and bson.decode(rewrapped)["v"][0]["_id"] == key_id
        encrypter.close()  # not a coroutine: pymongo calls it unawaited

    asyncio.run(scenario())


def test_one_call_fast_path_matches_the_general_path(
    encrypter: ExplicitEncrypter, key_id: bson.Binary
) -> None:
    """bytes inputs with a key id take the single native call; other buffers take the general
    state machine: both give the same deterministic ciphertext and the same plaintext, and an
    error on the fast path releases its context."""
    import gc

    from mongocrypt.engine.native import live_objects

    value = v("fast or not")
    fast = encrypter.encrypt(value, DETERMINISTIC, key_id=key_id)
    general = encrypter.encrypt(bytearray(value), DETERMINISTIC, key_id=key_id)
    assert fast == general
    assert encrypter.decrypt(fast) == encrypter.decrypt(bytearray(fast)) == value
    gc.collect()
    before = live_objects()
    tampered = bytearray(unv(fast))
    tampered[-1] ^= 1
    with pytest.raises(MongoCryptError, match="HMAC validation failure"):
        encrypter.decrypt(v(bson.Binary(bytes(tampered), 6)))
    with pytest.raises(MongoCryptError):
        encrypter.encrypt(v("x"), "no such algorithm", key_id=key_id)
    gc.collect()
    assert live_objects() == before


def test_cached_options_keep_refusing_what_they_refuse(
    encrypter: ExplicitEncrypter, key_id: bytes
) -> None:
    """The drop-in keeps the options of recent calls; a value equal to a cached one but of a type
    the options refuse (True for 1) is still refused, and an unhashable key id still works."""
    value = bson.encode({"v": "x"})
    encrypter.encrypt(value, "Indexed", key_id=key_id, contention_factor=1)
    with pytest.raises(TypeError, match="contention_factor"):
        encrypter.encrypt(value, "Indexed", key_id=key_id, contention_factor=True)
    first = encrypter.encrypt(value, DETERMINISTIC, key_id=key_id)
    unhashable: Any = bytearray(key_id)  # pymongo may pass one
    assert encrypter.encrypt(value, DETERMINISTIC, key_id=unhashable) == first


def test_the_same_argument_objects_reuse_the_last_options(key_id: bytes) -> None:
    """The last call is remembered by identity: the same objects give the same options object;
    equal objects go through the value-keyed cache, and a mutable key id is never remembered."""
    from mongocrypt.dropin._shapes import encrypt_options

    def options(key: Any, contention: Any = None) -> Any:
        return encrypt_options("Indexed", key, None, None, contention, None, False, None, None)

    first = options(key_id, 1)
    assert options(key_id, 1) is first
    equal = bytes(bytearray(key_id))  # equal, not the same object
    assert options(equal, 1) == first
    with pytest.raises(TypeError, match="contention_factor"):
        options(key_id, True)
    mutable: Any = bytearray(key_id)
    before = options(mutable, 1)
    mutable[0] ^= 1
    after = options(mutable, 1)
    assert after.key_id == bytes(mutable) != before.key_id
