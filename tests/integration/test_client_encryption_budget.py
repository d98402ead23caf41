"""``timeout_ms`` bounds every ClientEncryption operation: get_keys too, and one budget for the
whole of create_encrypted_collection (all its data keys and the create), on real peers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from mongocrypt import (
    ClientEncryption,
    DataKeyOpts,
    EncryptedCollectionError,
    MongoCryptTimeoutError,
)


class _Finds(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.finds: list[Any] = []

    def started(self, event: Any) -> None:
        if event.command_name == "find":
            self.finds.append(event.command)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


@pytest.fixture
def finds() -> _Finds:
    return _Finds()


@pytest.fixture
def client(mongodb_uri: str, finds: _Finds) -> Iterator[pymongo.MongoClient[Any]]:
    with pymongo.MongoClient[Any](mongodb_uri, event_listeners=[finds]) as c:
        yield c


@pytest.fixture
def namespace(client: pymongo.MongoClient[Any]) -> Iterator[str]:
    name = f"budget_{uuid.uuid4().hex[:8]}"
    yield f"{name}.keys"
    client.drop_database(name)


@pytest.mark.requirement("CSE-CE-16", "CSE-CSOT-04")
def test_get_keys_is_bounded_by_timeout_ms(
    client: Any, namespace: str, kms_setup: Any, finds: _Finds
) -> None:
    """CSE-CE-16 / CSE-CSOT-04: get_keys runs within timeout_ms like every other operation."""
    with ClientEncryption(
        kms_setup.providers,
        namespace,
        client,
        kms_tls_options=kms_setup.tls_options,
        timeout_ms=4000,
    ) as ce:
        ce.create_data_key("local")
        finds.finds.clear()
        assert len(list(ce.get_keys())) == 1
    [find] = finds.finds
    assert 0 < find.get("maxTimeMS", 0) <= 4000, find


@pytest.mark.requirement("CSE-CE-16")
def test_create_encrypted_collection_has_one_budget(
    client: Any, namespace: str, kms_setup: Any, cloud_kms: Any
) -> None:
    """CSE-CE-16: two data keys whose KMS requests take 0.45 s each do not fit in one 0.7 s
    budget (with a budget per key, both were created)."""
    fields = {
        "fields": [
            {"path": "ssn", "bsonType": "string", "keyId": None},
            {"path": "dob", "bsonType": "date", "keyId": None},
        ]
    }
    database = client[namespace.split(".")[0]]
    with ClientEncryption(
        kms_setup.providers,
        namespace,
        client,
        kms_tls_options=kms_setup.tls_options,
        timeout_ms=700,
    ) as ce:
        cloud_kms.delay = 0.45
        try:
            with pytest.raises(EncryptedCollectionError) as info:
                ce.create_encrypted_collection(
                    database, "people", fields, "aws:mock", kms_setup.master_keys["aws:mock"]
                )
        finally:
            cloud_kms.delay = 0.0
    assert isinstance(info.value.__cause__, MongoCryptTimeoutError), repr(info.value.__cause__)
    ids = [f["keyId"] for f in info.value.encrypted_fields["fields"]]
    assert ids[0] is not None and ids[1] is None


def test_each_data_key_alone_fits_the_budget(
    client: Any, namespace: str, kms_setup: Any, cloud_kms: Any
) -> None:
    """The control: one such key takes less than the budget."""
    with ClientEncryption(
        kms_setup.providers,
        namespace,
        client,
        kms_tls_options=kms_setup.tls_options,
        timeout_ms=700,
    ) as ce:
        cloud_kms.delay = 0.45
        try:
            ce.create_data_key("aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
        finally:
            cloud_kms.delay = 0.0


def test_async_get_keys_under_timeout_ms_iterates_and_lists(
    mongodb_uri: str, namespace: str, kms_setup: Any
) -> None:
    """The asyncio cursor (the generated sync one's source) reads within the budget both ways."""
    import asyncio

    from mongocrypt import AsyncClientEncryption

    async def run() -> tuple[int, int]:
        async with (
            pymongo.AsyncMongoClient[Any](mongodb_uri) as client,
            AsyncClientEncryption(
                {"local": kms_setup.providers["local"]}, namespace, client, timeout_ms=4000
            ) as ace,
        ):
            await ace.create_data_key("local")
            await ace.create_data_key("local")
            iterated = len([key async for key in ace.get_keys()])
            listed = len(await ace.get_keys().to_list())
        return iterated, listed

    assert asyncio.run(run()) == (2, 2)
