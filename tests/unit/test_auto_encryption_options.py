"""The checks AutoEncryptionOpts (ours, and pymongo's own on the drop-in path) make before any
command runs: namespaces of the schema maps, the documents they map to, the key vault client."""

from __future__ import annotations

from typing import Any

import pymongo
import pytest
from pymongo.encryption_options import AutoEncryptionOpts as PymongoAutoEncryptionOpts

from mongocrypt.auto_encryption import AutoEncryptionOpts

PROVIDERS = {"local": {"key": b"k" * 96}}
SCHEMA = {"bsonType": "object", "properties": {}}

BAD_KEYS = ["people", ".people", "db.", "", "d b.people", "db$.people"]


def _map_option(option: str, key: Any, value: Any) -> dict[str, Any]:
    return {option: {key: value}}


@pytest.mark.requirement("CSE-AEO-04", "CSE-AEO-06")
@pytest.mark.parametrize("option", ["schema_map", "encrypted_fields_map"])
@pytest.mark.parametrize("key", BAD_KEYS)
def test_map_keys_must_be_namespaces(option: str, key: Any) -> None:
    """CSE-AEO-04 / CSE-AEO-06: a key that is not ``database.collection`` would never match a
    command, so the collection's fields would be written in clear: refused, naming the key."""
    with pytest.raises(ValueError) as info:
        AutoEncryptionOpts(PROVIDERS, "kv.keys", **_map_option(option, key, {"fields": []}))
    assert option in str(info.value)
    assert repr(key) in str(info.value)
    assert "database.collection" in str(info.value)


@pytest.mark.parametrize("option", ["schema_map", "encrypted_fields_map"])
def test_map_keys_must_be_strings(option: str) -> None:
    with pytest.raises(TypeError, match=f"{option} key must be str, not int"):
        AutoEncryptionOpts(PROVIDERS, "kv.keys", **_map_option(option, 3, {"fields": []}))


@pytest.mark.requirement("CSE-AEO-04", "CSE-AEO-06")
@pytest.mark.parametrize("option", ["schema_map", "encrypted_fields_map"])
@pytest.mark.parametrize("value", ["{}", [SCHEMA], None, 1])
def test_map_values_must_be_documents(option: str, value: Any) -> None:
    """CSE-AEO-04 / CSE-AEO-06: each namespace maps to a document."""
    with pytest.raises(TypeError) as info:
        AutoEncryptionOpts(PROVIDERS, "kv.keys", **_map_option(option, "db.people", value))
    assert f"{option}['db.people'] must be a document" in str(info.value)


@pytest.mark.parametrize("option", ["schema_map", "encrypted_fields_map"])
def test_map_must_be_a_mapping(option: str) -> None:
    with pytest.raises(TypeError, match=f"{option} must be a mapping"):
        wrong: dict[str, Any] = {option: [("db.people", SCHEMA)]}
        AutoEncryptionOpts(PROVIDERS, "kv.keys", **wrong)


def test_valid_maps_are_accepted() -> None:
    """Collection names may hold dots; only the database part may not."""
    opts = AutoEncryptionOpts(
        PROVIDERS,
        "kv.keys",
        schema_map={"db.people": SCHEMA, "db.a.b": SCHEMA},
        encrypted_fields_map={"db.qe": {"fields": []}},
    )
    assert set(opts._schema_map or {}) == {"db.people", "db.a.b"}


@pytest.mark.requirement("CSE-AEO-04")
@pytest.mark.parametrize("option", ["schema_map", "encrypted_fields_map"])
def test_pymongos_own_options_are_checked_on_the_drop_in_path(option: str) -> None:
    """CSE-AEO-04: unchanged pymongo code gets the same check when the client is built (the
    engine's options are built there), before anything is written."""
    typo: dict[str, Any] = {option: {"people": SCHEMA}}
    opts = PymongoAutoEncryptionOpts(PROVIDERS, "kv.keys", **typo)
    with pytest.raises(ValueError) as info:
        pymongo.MongoClient[Any]("mongodb://127.0.0.1:1", auto_encryption_opts=opts, connect=False)
    assert f"{option} key must be 'database.collection', not 'people'" in str(info.value)


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(lambda: pymongo.MongoClient[Any](connect=False).kv, id="Database"),
        pytest.param(lambda: pymongo.MongoClient[Any](connect=False).kv.keys, id="Collection"),
        pytest.param(lambda: "mongodb://localhost", id="str"),
    ],
)
def test_key_vault_client_must_be_a_client(client: Any) -> None:
    """A Database given as key_vault_client would put the keys in ``db.db.coll``: refused."""
    wrong = client()
    with pytest.raises(TypeError) as info:
        AutoEncryptionOpts(PROVIDERS, "kv.keys", key_vault_client=wrong)
    message = str(info.value)
    assert "key_vault_client must be a pymongo MongoClient or AsyncMongoClient" in message
    assert type(wrong).__name__ in message


def test_key_vault_client_may_be_omitted_or_a_client() -> None:
    with pymongo.MongoClient[Any](connect=False) as client:
        assert AutoEncryptionOpts(PROVIDERS, "kv.keys", key_vault_client=client)
    assert AutoEncryptionOpts(PROVIDERS, "kv.keys")._key_vault_client is None


@pytest.mark.parametrize("mode", ["embedded", "mongocryptd", "none"])
@pytest.mark.parametrize(
    "option",
    [
        {"crypt_shared_lib_path": "/opt/mongo_crypt_v1.so"},
        {"crypt_shared_lib_required": True},
    ],
    ids=["path", "required"],
)
def test_crypt_shared_options_contradict_modes_that_never_load_it(
    mode: str, option: dict[str, Any]
) -> None:
    with pytest.raises(ValueError) as info:
        AutoEncryptionOpts(PROVIDERS, "kv.keys", query_analysis=mode, **option)
    assert f"{next(iter(option))} contradicts query_analysis={mode!r}" in str(info.value)


def test_required_crypt_shared_contradicts_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pymongo's own options, the mode from the environment: refused when the client is built."""
    monkeypatch.setenv("MONGOCRYPT_QUERY_ANALYSIS", "embedded")
    opts = PymongoAutoEncryptionOpts(PROVIDERS, "kv.keys", crypt_shared_lib_required=True)
    with pytest.raises(ValueError, match="contradicts MONGOCRYPT_QUERY_ANALYSIS=embedded"):
        pymongo.MongoClient[Any]("mongodb://127.0.0.1:1", auto_encryption_opts=opts, connect=False)
