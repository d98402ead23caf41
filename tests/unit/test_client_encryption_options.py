"""ClientEncryption / AsyncClientEncryption refuse a key vault client of the wrong kind."""

from __future__ import annotations

from typing import Any

import pymongo
import pytest

from mongocrypt import AsyncClientEncryption, ClientEncryption

PROVIDERS = {"local": {"key": b"k" * 96}}


def _wrong_clients() -> list[Any]:
    client = pymongo.MongoClient[Any](connect=False)
    return [client.kv, client.kv.keys, None, "mongodb://localhost"]


@pytest.mark.requirement("CSE-API-09")
@pytest.mark.parametrize("wrong", _wrong_clients(), ids=["Database", "Collection", "None", "str"])
def test_key_vault_client_must_be_a_mongo_client(wrong: Any) -> None:
    """CSE-API-09: keyVaultClient is required and is a client (a Database would put the keys in
    ``kv.kv.keys``; None failed with "'NoneType' object is not subscriptable")."""
    with pytest.raises(TypeError) as info:
        ClientEncryption(PROVIDERS, "kv.keys", wrong)
    assert str(info.value) == (
        f"key_vault_client must be a pymongo MongoClient, not {type(wrong).__name__}"
    )


def test_async_needs_an_async_client() -> None:
    with pytest.raises(TypeError) as info:
        AsyncClientEncryption(PROVIDERS, "kv.keys", pymongo.MongoClient[Any](connect=False))
    assert str(info.value) == (
        "key_vault_client must be a pymongo AsyncMongoClient, not MongoClient"
    )
    with pytest.raises(TypeError, match="must be a pymongo MongoClient, not AsyncMongoClient"):
        ClientEncryption(PROVIDERS, "kv.keys", pymongo.AsyncMongoClient[Any](connect=False))
