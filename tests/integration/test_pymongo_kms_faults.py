"""KMS faults through pymongo's ClientEncryption: libmongocrypt's retries ride out one HTTP 429 or
one dropped connection for every cloud provider, and give up with a clear error after three."""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import Algorithm, ClientEncryption
from pymongo.errors import EncryptionError

CLOUD = ["aws:mock", "azure", "gcp"]


@pytest.fixture
def client_encryption(
    mongodb_uri: str, kms_setup: Any, cloud_kms: Any
) -> Iterator[ClientEncryption[Any]]:
    cloud_kms.reset()
    namespace = f"faults_{uuid.uuid4().hex[:8]}.datakeys"
    with (
        MongoClient[Any](mongodb_uri) as client,
        ClientEncryption[Any](
            kms_setup.providers,
            namespace,
            client,
            CodecOptions(uuid_representation=STANDARD),
            kms_tls_options=kms_setup.tls_options,
        ) as ce,
    ):
        yield ce
        client.drop_database(namespace.split(".")[0])
    cloud_kms.reset()


def set_failpoint(cloud_kms: Any, tls: Any, kind: str, count: int) -> None:
    """Arm a failpoint the way the drivers' tooling does: an HTTPS POST to the mock."""
    request = urllib.request.Request(
        f"https://{cloud_kms.endpoint}/set_failpoint/{kind}",
        data=json.dumps({"count": count}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(tls.ca))
    with urllib.request.urlopen(request, context=context) as reply:
        assert reply.status == 200
    cloud_kms.requests.clear()


@pytest.mark.parametrize("provider", CLOUD)
@pytest.mark.parametrize("kind", ["http", "network"])
def test_one_failure_is_retried(
    client_encryption: ClientEncryption[Any],
    kms_setup: Any,
    cloud_kms: Any,
    tls: Any,
    provider: str,
    kind: str,
) -> None:
    set_failpoint(cloud_kms, tls, kind, 1)
    key_id = client_encryption.create_data_key(provider, master_key=kms_setup.master_keys[provider])
    attempts = len(cloud_kms.requests)
    expected = 2 if provider == "aws:mock" else 3  # azure and gcp fetch a token first
    assert attempts == expected, cloud_kms.requests
    ciphertext = client_encryption.encrypt(
        "x", Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id=key_id
    )
    assert client_encryption.decrypt(ciphertext) == "x"


@pytest.mark.parametrize("provider", CLOUD)
def test_four_dropped_connections_fail(
    client_encryption: ClientEncryption[Any],
    kms_setup: Any,
    cloud_kms: Any,
    tls: Any,
    provider: str,
) -> None:
    set_failpoint(cloud_kms, tls, "network", 4)
    with pytest.raises(
        EncryptionError, match="KMS request failed after 3 retries due to a network error"
    ):
        client_encryption.create_data_key(provider, master_key=kms_setup.master_keys[provider])
