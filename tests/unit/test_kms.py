"""KMS requests for every provider, answered with recorded KMS replies (no network): what
libmongocrypt asks for, that the replies are consumed, retries, and KMS errors."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, Callable

import bson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import (
    DETERMINISTIC,
    RANDOM,
    RecordingIO,
    http_reply,
    load_http_reply,
    load_json,
    unv,
    v,
)
from helpers.kmip_ttlv import FakeKmipServer
from mongocrypt import MongoCryptKmsError, has_kms_in_place_retry
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import KmsContext, MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO

AWS_KEY = "libmongocrypt/keys/12345678123498761234123456789012-aws-document.json"
AWS_REPLY = "libmongocrypt/keys/12345678123498761234123456789012-aws-decrypt-reply.txt"
AWS_CREDENTIALS = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "aws-secret-example"}


def encrypter_for(
    providers: dict[str, Any], io: InMemoryIO, *keys: dict[str, Any]
) -> ExplicitEncrypter:
    io.keys.extend(bson.encode(k) for k in keys)
    return ExplicitEncrypter(io, MongoCryptOptions(providers, bypass_encryption=True))


def replay(*replies: bytes) -> Callable[[KmsContext], bytes]:
    """A responder that answers successive requests with ``replies`` in order."""
    queue = list(replies)
    return lambda _request: queue.pop(0)


def by_endpoint(
    replies: dict[str, bytes], seen: list[tuple[str, bytes]]
) -> Callable[[KmsContext], bytes]:
    def respond(request: KmsContext) -> bytes:
        seen.append((request.endpoint, request.message))
        host = request.endpoint.split(":")[0]
        return next(reply for suffix, reply in replies.items() if host.endswith(suffix))

    return respond


@pytest.mark.requirement("CSE-CACHE-05", "CSE-LMC-01", "CSE-LMC-12")
def test_aws_request_and_recorded_reply() -> None:
    seen: list[tuple[str, bytes]] = []
    io = RecordingIO(kms={"aws": by_endpoint({"amazonaws.com": load_http_reply(AWS_REPLY)}, seen)})
    encrypter = encrypter_for({"aws": AWS_CREDENTIALS}, io, load_json(AWS_KEY))
    key_id = load_json(AWS_KEY)["_id"]
    ciphertext = unv(encrypter.encrypt(v("457-55-5462"), DETERMINISTIC, key_id=key_id))
    assert unv(encrypter.decrypt(v(ciphertext))) == "457-55-5462"
    ((endpoint, message),) = seen  # one KMS call: the decrypted key is cached afterwards
    assert endpoint == "kms.us-east-1.amazonaws.com:443"
    assert (
        message.startswith(b"POST / HTTP/1.1") and b"X-Amz-Target:TrentService.Decrypt" in message
    )
    assert b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" in message
    assert b"aws-secret-example" not in message


@pytest.mark.requirement("CSE-LMC-12")
def test_named_provider_keys_the_request() -> None:
    key = copy.deepcopy(load_json(AWS_KEY))
    key["masterKey"]["provider"] = "aws:eu"
    providers: list[str] = []

    def respond(request: KmsContext) -> bytes:
        providers.append(request.kms_provider)
        return load_http_reply(AWS_REPLY)

    encrypter = encrypter_for({"aws:eu": AWS_CREDENTIALS}, InMemoryIO(kms={"aws": respond}), key)
    encrypter.encrypt(v(1), RANDOM, key_id=key["_id"])
    assert providers == ["aws:eu"]


@pytest.mark.requirement("CSE-KMS-03")
def test_azure_token_then_unwrap() -> None:
    seen: list[tuple[str, bytes]] = []
    replies = {
        "login.microsoftonline.com": load_http_reply("libmongocrypt/kms-azure/oauth-response.txt"),
        "vault.azure.net": load_http_reply("libmongocrypt/kms-azure/decrypt-response.txt"),
    }
    io = InMemoryIO(kms={"azure": by_endpoint(replies, seen)})
    providers = {
        "azure": {"tenantId": "tenant-1", "clientId": "client-1", "clientSecret": "azure-secret"}
    }
    encrypter = encrypter_for(providers, io, load_json("libmongocrypt/key-document-azure.json"))
    ciphertext = unv(encrypter.encrypt(v({"a": 1}), RANDOM, key_alt_name="keyDocumentName"))
    assert unv(encrypter.decrypt(v(ciphertext))) == {"a": 1}
    (token_endpoint, token_request), (vault_endpoint, unwrap_request) = seen
    assert token_endpoint == "login.microsoftonline.com:443"
    assert token_request.startswith(b"POST /tenant-1/oauth2/v2.0/token")
    assert b"client_id=client-1" in token_request
    assert vault_endpoint == "test.vault.azure.net:443"
    assert b"/keys/test/" in unwrap_request and b"unwrapkey" in unwrap_request
    assert b"Authorization:Bearer test-access-token" in unwrap_request


@pytest.mark.requirement("CSE-KMS-04")
def test_gcp_signed_token_then_decrypt() -> None:
    """libmongocrypt signs the OAuth assertion natively (RS256); the signature must verify with the
    service account's public key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    seen: list[tuple[str, bytes]] = []
    replies = {
        "oauth2.googleapis.com": load_http_reply("libmongocrypt/kms-gcp/oauth-response.txt"),
        "cloudkms.googleapis.com": load_http_reply("libmongocrypt/kms-gcp/decrypt-response.txt"),
    }
    providers = {
        "gcp": {
            "email": "svc@project.iam.gserviceaccount.com",
            "privateKey": base64.b64encode(der).decode(),
        }
    }
    encrypter = encrypter_for(
        providers,
        InMemoryIO(kms={"gcp": by_endpoint(replies, seen)}),
        load_json("libmongocrypt/key-document-gcp.json"),
    )
    key_id = load_json("libmongocrypt/key-document-gcp.json")["_id"]
    ciphertext = unv(encrypter.encrypt(v("gcp"), RANDOM, key_id=key_id))
    assert unv(encrypter.decrypt(v(ciphertext))) == "gcp"
    (token_endpoint, token_request), (kms_endpoint, decrypt_request) = seen
    assert (token_endpoint, kms_endpoint) == (
        "oauth2.googleapis.com:443",
        "cloudkms.googleapis.com:443",
    )
    assertion = token_request.split(b"assertion=")[1].split(b"&")[0].decode()
    header, claims, signature = assertion.split(".")

    def b64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(b64(header))["alg"] == "RS256"
    assert json.loads(b64(claims))["iss"] == "svc@project.iam.gserviceaccount.com"
    private.public_key().verify(
        b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert (
        b":decrypt" in decrypt_request
        and b"Authorization:Bearer test-access-token" in decrypt_request
    )


def test_kmip_register_activate_get() -> None:
    server = FakeKmipServer()
    endpoints: list[str] = []

    def respond(request: KmsContext) -> bytes:
        endpoints.append(request.endpoint)
        return server.respond(request.message)

    providers = {"kmip": {"endpoint": "localhost:5696"}}
    io = InMemoryIO(kms={"kmip": respond})
    encrypter = encrypter_for(providers, io)
    key_id = encrypter.create_data_key("kmip", master_key={})
    assert server.operations[0] == "Register" and "Get" not in server.operations[:1]
    assert bson.decode(io.keys[0])["masterKey"]["keyId"] == "uid-1"
    ciphertext = unv(encrypter.encrypt(v("kmip"), DETERMINISTIC, key_id=key_id))
    # A new handle has an empty key cache: decrypting must Get the secret back.
    reader = encrypter_for(providers, InMemoryIO(kms={"kmip": respond}), *map(bson.decode, io.keys))
    assert unv(reader.decrypt(v(ciphertext))) == "kmip"
    assert server.operations[-1] == "Get"
    assert set(endpoints) == {"localhost:5696"}


@pytest.mark.requirement("CSE-RETRY-01")
def test_retryable_http_error_is_retried() -> None:
    io = RecordingIO(
        kms={
            "aws": replay(
                http_reply(500, b"{}", "Internal Server Error"), load_http_reply(AWS_REPLY)
            )
        }
    )
    encrypter = encrypter_for({"aws": AWS_CREDENTIALS}, io, load_json(AWS_KEY))
    ciphertext = unv(encrypter.encrypt(v(5), RANDOM, key_id=load_json(AWS_KEY)["_id"]))
    assert unv(encrypter.decrypt(v(ciphertext))) == 5
    assert io.kinds().count("kms") == 2


class FlakyNetworkIO(InMemoryIO):
    """Reports a network failure (``fail()``) for the first ``failures`` KMS attempts."""

    def __init__(self, failures: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failures = failures
        self.sleeps: list[int] = []

    def kms_request(self, kms_context: KmsContext) -> None:
        self.sleeps.append(kms_context.usleep)
        if self.failures:
            self.failures -= 1
            kms_context.fail()
            return
        super().kms_request(kms_context)


@pytest.mark.requirement("CSE-LMC-12", "CSE-RETRY-01")
def test_network_failure_is_retried_with_backoff() -> None:
    io = FlakyNetworkIO(1, kms={"aws": replay(load_http_reply(AWS_REPLY))})
    encrypter = encrypter_for({"aws": AWS_CREDENTIALS}, io, load_json(AWS_KEY))
    encrypter.encrypt(v(5), RANDOM, key_id=load_json(AWS_KEY)["_id"])
    assert len(io.sleeps) == 2 and io.sleeps[0] == 0 and io.sleeps[1] > 0


def test_too_many_network_failures_give_a_kms_error() -> None:
    io = FlakyNetworkIO(4, kms={"aws": replay(load_http_reply(AWS_REPLY))})
    encrypter = encrypter_for({"aws": AWS_CREDENTIALS}, io, load_json(AWS_KEY))
    with pytest.raises(MongoCryptKmsError) as info:
        encrypter.encrypt(v(5), RANDOM, key_id=load_json(AWS_KEY)["_id"])
    assert "retr" in str(info.value).lower() or "attempt" in str(info.value).lower()


def test_kms_error_reply_is_a_kms_error() -> None:
    body = json.dumps({"__type": "AccessDeniedException", "message": "denied by policy"}).encode()
    io = InMemoryIO(kms={"aws": replay(http_reply(400, body, "Bad Request"))})
    encrypter = encrypter_for({"aws": AWS_CREDENTIALS}, io, load_json(AWS_KEY))
    with pytest.raises(MongoCryptKmsError, match="denied by policy"):
        encrypter.encrypt(v(5), RANDOM, key_id=load_json(AWS_KEY)["_id"])


@pytest.mark.requirement("CSE-LMC-12")
@pytest.mark.skipif(
    not has_kms_in_place_retry, reason="the linked libmongocrypt lacks feed_with_retry"
)
def test_feed_with_retry_ends_the_attempt_and_the_request_comes_back() -> None:
    class RetryAwareIO(InMemoryIO):
        def __init__(self) -> None:
            super().__init__()
            self.replies = [http_reply(503, b"{}", "Unavailable"), load_http_reply(AWS_REPLY)]
            self.outcomes: list[bool] = []

        def kms_request(self, kms_context: KmsContext) -> None:
            assert kms_context.bytes_needed > 0
            reply = self.replies.pop(0)
            offset = 0
            while kms_context.bytes_needed > 0:
                chunk = reply[offset : offset + kms_context.bytes_needed]
                offset += len(chunk)
                if kms_context.feed_with_retry(chunk):
                    self.outcomes.append(True)
                    return  # attempt over; the request comes back, reset, in the next batch
            self.outcomes.append(False)

    io = RetryAwareIO()
    encrypter = encrypter_for({"aws": AWS_CREDENTIALS}, io, load_json(AWS_KEY))
    assert (
        unv(encrypter.decrypt(encrypter.encrypt(v(9), RANDOM, key_id=load_json(AWS_KEY)["_id"])))
        == 9
    )
    assert io.outcomes == [True, False]


@pytest.mark.requirement("CSE-LMC-17")
def test_kms_context_of_a_closed_context_refuses_use() -> None:
    from mongocrypt import MongoCryptClosedError
    from mongocrypt.engine import ExplicitEncryptOptions, MongoCrypt

    crypt = MongoCrypt(MongoCryptOptions({"aws": AWS_CREDENTIALS}, bypass_encryption=True))
    key = load_json(AWS_KEY)
    ctx = crypt.explicit_encryption_context(v(1), ExplicitEncryptOptions(RANDOM, key_id=key["_id"]))
    ctx.add_mongo_operation_result(bson.encode(key))
    ctx.complete_mongo_operation()
    (request,) = ctx.kms_contexts()
    assert request.endpoint == "kms.us-east-1.amazonaws.com:443"
    ctx.close()
    with pytest.raises(MongoCryptClosedError):
        request.endpoint  # noqa: B018
    assert "closed" in repr(request)
