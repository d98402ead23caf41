"""pymongo's asyncio API (AsyncMongoClient, AsyncClientEncryption) running on mongocrypt."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.asynchronous.encryption import AsyncClientEncryption
from pymongo.encryption import Algorithm
from pymongo.encryption_options import AutoEncryptionOpts

from conftest import present

DETERMINISTIC = Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic
RANDOM = Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random


@pytest.mark.parametrize("provider", ["local", "aws", "azure", "kmip"])
def test_async_client_encryption(mongodb_uri: str, kms_setup: Any, provider: str) -> None:
    async def scenario() -> None:
        namespace = f"async_{uuid.uuid4().hex[:8]}.datakeys"
        client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, uuidRepresentation="standard")
        ce = AsyncClientEncryption[Any](
            kms_setup.providers,
            namespace,
            client,
            CodecOptions(uuid_representation=STANDARD),
            kms_tls_options=kms_setup.tls_options,
        )
        key_id = await ce.create_data_key(
            provider, master_key=kms_setup.master_keys[provider], key_alt_names=["async"]
        )
        values = [f"value {i}" for i in range(10)]
        ciphertexts = await asyncio.gather(
            *(ce.encrypt(v, RANDOM, key_alt_name="async") for v in values)
        )
        assert await asyncio.gather(*(ce.decrypt(c) for c in ciphertexts)) == values
        assert present(await ce.get_key_by_alt_name("async"))["_id"] == key_id
        assert [k["_id"] async for k in ce.get_keys()] == [key_id]
        result = await ce.rewrap_many_data_key({}, provider="local:second")
        assert present(result.bulk_write_result).modified_count == 1
        assert await ce.decrypt(ciphertexts[0]) == "value 0"
        assert (await ce.delete_key(key_id)).deleted_count == 1
        await ce.close()
        await client.drop_database(namespace.split(".")[0])
        await client.close()

    asyncio.run(scenario())


def test_async_auto_decryption(mongodb_uri: str, kms_setup: Any) -> None:
    async def scenario() -> None:
        namespace = f"async_{uuid.uuid4().hex[:8]}.datakeys"
        plain: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, uuidRepresentation="standard")
        ce = AsyncClientEncryption[Any](
            kms_setup.providers,
            namespace,
            plain,
            CodecOptions(uuid_representation=STANDARD),
            kms_tls_options=kms_setup.tls_options,
        )
        key_id = await ce.create_data_key("gcp", master_key=kms_setup.master_keys["gcp"])
        coll = plain["async_app"][f"people_{uuid.uuid4().hex[:6]}"]
        secret = await ce.encrypt("secret", DETERMINISTIC, key_id=key_id)
        await coll.insert_one({"_id": 1, "secret": secret})
        options = AutoEncryptionOpts(
            kms_setup.providers,
            namespace,
            bypass_auto_encryption=True,
            kms_tls_options=kms_setup.tls_options,
        )
        encrypted: AsyncMongoClient[Any] = AsyncMongoClient(
            mongodb_uri, auto_encryption_opts=options
        )
        found = await encrypted[coll.database.name][coll.name].find_one({"secret": secret})
        assert found == {"_id": 1, "secret": "secret"}
        await encrypted.close()
        await ce.close()
        await coll.drop()
        await plain.drop_database(namespace.split(".")[0])
        await plain.close()

    asyncio.run(scenario())
