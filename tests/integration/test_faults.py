"""Faults on the real peers, through mongocrypt's own ClientEncryption: KMS connection drops,
HTTP 429/500/503, slow and truncated replies, TLS failures, on-demand credential endpoints failing
in every way the specification's Azure IMDS cases list, the server going away mid-operation,
and keys missing from the key vault.

Each case checks three things: the retries that should happen do (attempts counted with
mongocrypt.events listeners), then the error is clear (type and message), and nothing is left
half-written in the key vault (documents counted).

Where the cloud KMS mock (tests/helpers/peers/cloud_kms.py) has no such failure (HTTP 500, truncated
or slow replies, a server that is not TLS), :class:`FaultyKms`, a TLS stand-in in this module, plays
the KMS: each connection gets the next scripted fault, and "forward" relays the request to the
cloud mock so a real reply comes back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pymongo
import pytest
from bson import Binary

import mongocrypt
from conftest import present
from helpers.peers.http_fake import FakeServer, Reply
from helpers.peers.process import Peer, free_port, port_open
from mongocrypt import (
    Algorithm,
    ClientEncryption,
    CredentialsError,
    DataKeyOpts,
    EncryptOpts,
    KeyVaultError,
    MongoCryptError,
    MongoCryptKmsError,
    MongoCryptTimeoutError,
    RewrapManyDataKeyOpts,
)
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.credentials import CredentialEndpoints, _azure
from mongocrypt.events import (
    EncryptionEventListener,
    KeyVaultOperationFailed,
    KeyVaultOperationSucceeded,
    KmsRequestFailed,
    KmsRequestStarted,
    KmsRequestSucceeded,
)

AWS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/faults"


class Recorder(EncryptionEventListener):
    """Every event, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._lock = threading.Lock()

    def _add(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)

    kms_request_started = kms_request_succeeded = kms_request_failed = _add
    key_vault_operation_started = key_vault_operation_succeeded = _add
    key_vault_operation_failed = _add

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def kms_attempts(self) -> list[int]:
        return [e.attempt for e in self.of(KmsRequestStarted)]

    def clear(self) -> None:
        self.events.clear()


# -- a scriptable TLS stand-in for a KMS ------------------------------------------------------


def _read_http(sock: Any) -> bytes:
    """One HTTP request or reply (head and Content-Length body); b"" if the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _http(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} Fault\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


class FaultyKms:
    """A KMS stand-in on 127.0.0.1 over TLS (the test certificate). Each connection takes the
    next entry of ``script`` (then ``"forward"``):

    - ``"forward"``: relay the request to the cloud KMS mock, and its reply back;
    - ``"drop"``: read the request, close without a reply;
    - ``"500"``/``"503"``/``"429"``/``"400"``: that HTTP status with a JSON error body;
    - ``"truncated"``: the head and half the body of the real reply, then close;
    - ``"slow:S"``: wait S seconds, then forward;
    - ``"not-tls"``: answer the TLS hello with plain HTTP bytes;
    - ``"hang-up"``: close before the TLS handshake;
    - ``"call"``: run ``on_call`` (e.g. stop the database), then forward.
    """

    def __init__(self, tls: Any, upstream_port: int) -> None:
        self.script: list[str] = []
        self.served: list[str] = []
        self.on_call: Optional[Callable[[], None]] = None
        self._upstream = ("127.0.0.1", upstream_port)
        self._client = ssl.create_default_context(cafile=str(tls.ca))
        self._server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server.load_cert_chain(tls.server_cert, tls.server_key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._stopping.set()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                action = self.script.pop(0) if self.script else "forward"
                self.served.append(action)
            threading.Thread(target=self._serve, args=(sock, action), daemon=True).start()

    def _forward(self, request: bytes) -> bytes:
        with (
            socket.create_connection(self._upstream, timeout=10) as raw,
            self._client.wrap_socket(raw, server_hostname="127.0.0.1") as upstream,
        ):
            upstream.sendall(request)
            return _read_http(upstream)

    def _serve(self, sock: socket.socket, action: str) -> None:
        try:
            with sock:
                if action == "hang-up":
                    return
                if action == "not-tls":
                    sock.recv(4096)
                    sock.sendall(_http(400, b"this is not TLS"))
                    return
                with self._server.wrap_socket(sock, server_side=True) as tls:
                    request = _read_http(tls)
                    if action == "drop" or not request:
                        return
                    if action.isdigit():
                        body = (
                            b'{"__type": "InternalFailure", "message": "fault %s"}'
                            % action.encode()
                        )
                        tls.sendall(_http(int(action), body))
                        return
                    if action.startswith("slow:") and self._stopping.wait(
                        float(action.split(":")[1])
                    ):
                        return
                    if action == "call" and self.on_call is not None:
                        self.on_call()
                    reply = self._forward(request)
                    if action == "truncated":
                        head, _, body = reply.partition(b"\r\n\r\n")
                        tls.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
                        return
                    tls.sendall(reply)
        except OSError:
            pass  # the client gave up (timeouts) or the test ended


@pytest.fixture
def faulty_kms(tls: Any, cloud_kms: Any) -> Iterator[FaultyKms]:
    kms = FaultyKms(tls, cloud_kms.port)
    yield kms
    kms.close()


# -- ClientEncryption on a fresh key vault ----------------------------------------------------


@pytest.fixture
def client(mongodb_uri: str) -> Iterator[pymongo.MongoClient[Any]]:
    with pymongo.MongoClient[Any](mongodb_uri) as c:
        yield c


@pytest.fixture
def vault(client: pymongo.MongoClient[Any]) -> Iterator[Any]:
    """A fresh key vault collection (dropped afterwards)."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    yield client[name]["keys"]
    client.drop_database(name)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make(client: Any, vault: Any, kms_setup: Any, recorder: Recorder) -> Iterator[Any]:
    made: list[ClientEncryption] = []

    def build(**options: Any) -> ClientEncryption:
        options.setdefault("kms_tls_options", kms_setup.tls_options)
        options.setdefault("event_listeners", [recorder])
        providers = options.pop("kms_providers", kms_setup.providers)
        namespace = f"{vault.database.name}.{vault.name}"
        ce = ClientEncryption(
            providers, namespace, options.pop("key_vault_client", client), **options
        )
        made.append(ce)
        return ce

    yield build
    for ce in made:
        ce.close()


def aws_at(endpoint: str) -> DataKeyOpts:
    return DataKeyOpts(master_key={"region": "us-east-1", "key": AWS_KEY_ARN, "endpoint": endpoint})


def round_trip(ce: ClientEncryption, key_id: Binary) -> None:
    ciphertext = ce.encrypt("fault-tolerant", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
    assert ce.decrypt(ciphertext) == "fault-tolerant"


# -- KMS: dropped connections and HTTP errors from the cloud mock's failpoints ---------------


@pytest.mark.parametrize("provider", ["aws:mock", "azure", "gcp"])
@pytest.mark.parametrize("drops", [1, 3])
def test_dropped_connections_are_retried(
    make: Any,
    kms_setup: Any,
    cloud_kms: Any,
    recorder: Recorder,
    vault: Any,
    provider: str,
    drops: int,
) -> None:
    cloud_kms.reset()
    ce = make()
    cloud_kms.set_failpoint("network", drops)
    key_id = ce.create_data_key(provider, DataKeyOpts(kms_setup.master_keys[provider]))
    kms = [e for e in recorder.events if type(e).__name__.startswith("Kms")]
    # Azure and GCP fetch an OAuth token first: the drops hit that request, then the key request.
    failed = recorder.of(KmsRequestFailed)
    assert len(failed) == drops and all(f.retrying for f in failed), kms
    assert [f.attempt for f in failed] == list(range(1, drops + 1))
    assert recorder.of(KmsRequestStarted)[drops].attempt == drops + 1
    assert all("ConnectionError" in f.failure or "closed" in f.failure for f in failed), failed
    assert vault.count_documents({}) == 1
    round_trip(ce, key_id)


@pytest.mark.parametrize("provider", ["aws:mock", "azure", "gcp"])
def test_four_dropped_connections_fail_and_write_nothing(
    make: Any, kms_setup: Any, cloud_kms: Any, recorder: Recorder, vault: Any, provider: str
) -> None:
    cloud_kms.reset()
    ce = make()
    cloud_kms.set_failpoint("network", 4)
    with pytest.raises(MongoCryptKmsError, match="KMS request failed after 3 retries") as info:
        ce.create_data_key(provider, DataKeyOpts(kms_setup.master_keys[provider]))
    assert cloud_kms.endpoint in str(info.value)  # the error names the KMS it gave up on
    assert recorder.kms_attempts() == [1, 2, 3, 4]
    assert [f.retrying for f in recorder.of(KmsRequestFailed)] == [True, True, True, False]
    assert vault.count_documents({}) == 0
    cloud_kms.reset()


@pytest.mark.parametrize("throttled", [1, 3])
def test_http_429_is_retried(
    make: Any, kms_setup: Any, cloud_kms: Any, recorder: Recorder, vault: Any, throttled: int
) -> None:
    cloud_kms.reset()
    ce = make()
    cloud_kms.set_failpoint("http", throttled)
    key_id = ce.create_data_key("aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
    assert len(cloud_kms.requests) == throttled + 1
    assert recorder.kms_attempts() == list(range(1, throttled + 2))
    assert vault.count_documents({}) == 1
    round_trip(ce, key_id)


def test_four_http_429_fail_and_write_nothing(
    make: Any, kms_setup: Any, cloud_kms: Any, recorder: Recorder, vault: Any
) -> None:
    cloud_kms.reset()
    ce = make()
    cloud_kms.set_failpoint("http", 4)
    with pytest.raises(MongoCryptKmsError, match="429") as info:
        ce.create_data_key("aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
    assert "failpoint" in str(info.value)  # the KMS's own message is kept
    assert recorder.kms_attempts() == [1, 2, 3, 4]
    assert vault.count_documents({}) == 0
    cloud_kms.reset()


@pytest.mark.xfail(
    not mongocrypt.has_kms_in_place_retry,
    strict=True,
    raises=AssertionError,
    reason="libmongocrypt before 1.12 takes a retryable KMS reply through feed() without saying "
    "so; the retry shows as a success followed by another attempt",
)
def test_a_retried_http_error_is_reported_as_a_failed_attempt(
    make: Any, kms_setup: Any, cloud_kms: Any, recorder: Recorder
) -> None:
    cloud_kms.reset()
    ce = make()
    cloud_kms.set_failpoint("http", 1)
    ce.create_data_key("aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
    outcomes = [type(e).__name__ for e in recorder.events if type(e).__name__.startswith("Kms")]
    assert outcomes == [
        "KmsRequestStarted",
        "KmsRequestFailed",
        "KmsRequestStarted",
        "KmsRequestSucceeded",
    ]
    assert recorder.of(KmsRequestFailed)[0].retrying is True


# -- KMS: faults the stand-in plays ------------------------------------------------------------


@pytest.mark.parametrize("status", ["500", "503"])
def test_http_5xx_is_retried(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any, status: str
) -> None:
    ce = make()
    faulty_kms.script = [status, status]
    key_id = ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert faulty_kms.served == [status, status, "forward"]
    assert recorder.kms_attempts() == [1, 2, 3]
    assert vault.count_documents({}) == 1
    round_trip(ce, key_id)


def test_http_500_four_times_fails_with_the_kms_message(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make()
    faulty_kms.script = ["500"] * 4
    with pytest.raises(MongoCryptKmsError, match="500") as info:
        ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert "fault 500" in str(info.value)
    assert faulty_kms.served == ["500"] * 4
    assert recorder.kms_attempts() == [1, 2, 3, 4]
    assert vault.count_documents({}) == 0


def test_http_400_is_final(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make()
    faulty_kms.script = ["400"]
    with pytest.raises(MongoCryptKmsError, match="fault 400"):
        ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert faulty_kms.served == ["400"]
    assert recorder.kms_attempts() == [1]
    assert vault.count_documents({}) == 0


def test_truncated_reply_is_retried(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make()
    faulty_kms.script = ["truncated"]
    key_id = ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    (failed,) = recorder.of(KmsRequestFailed)
    assert failed.retrying and "closed the connection mid-reply" in failed.failure
    assert recorder.kms_attempts() == [1, 2]
    assert vault.count_documents({}) == 1
    round_trip(ce, key_id)


def test_truncated_replies_every_time_fail_clearly(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make()
    faulty_kms.script = ["truncated"] * 4
    with pytest.raises(MongoCryptKmsError, match="closed the connection mid-reply") as info:
        ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert "after 3 retries" in str(info.value) and faulty_kms.endpoint in str(info.value)
    assert recorder.kms_attempts() == [1, 2, 3, 4]
    assert vault.count_documents({}) == 0


def test_slow_reply_within_the_budget_succeeds(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make(timeout_ms=10_000)
    faulty_kms.script = ["slow:1.0"]
    started = time.monotonic()
    ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert 1.0 <= time.monotonic() - started < 5
    assert recorder.kms_attempts() == [1] and recorder.of(KmsRequestSucceeded)
    assert vault.count_documents({}) == 1


def test_slow_reply_past_timeout_ms_fails_in_time(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make(timeout_ms=800)
    faulty_kms.script = ["slow:5", "slow:5", "slow:5", "slow:5"]
    started = time.monotonic()
    with pytest.raises(MongoCryptTimeoutError):
        ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert time.monotonic() - started < 2.5
    assert vault.count_documents({}) == 0
    # The budget is spent by the first attempt: no retry is started after it.
    assert recorder.kms_attempts()[:1] == [1] and len(recorder.kms_attempts()) <= 2


@pytest.mark.parametrize("fault", ["not-tls", "hang-up"])
def test_tls_handshake_failures_are_retried_then_fail(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any, fault: str
) -> None:
    ce = make()
    faulty_kms.script = [fault] * 4
    with pytest.raises(MongoCryptKmsError, match="after 3 retries") as info:
        ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert faulty_kms.endpoint in str(info.value)
    assert recorder.kms_attempts() == [1, 2, 3, 4]
    assert vault.count_documents({}) == 0


def test_tls_handshake_failure_once_is_survived(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    ce = make()
    faulty_kms.script = ["not-tls"]
    ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    assert recorder.kms_attempts() == [1, 2]
    assert vault.count_documents({}) == 1


@pytest.mark.parametrize("peer", ["wrong_ca", "expired_kms", "wrong_host_kms"])
def test_certificate_failures_are_final(
    make: Any,
    tls: Any,
    kms_setup: Any,
    recorder: Recorder,
    vault: Any,
    request: pytest.FixtureRequest,
    peer: str,
) -> None:
    if peer == "wrong_ca":
        ce = make(
            kms_tls_options={**kms_setup.tls_options, "aws:mock": {"tlsCAFile": str(tls.other_ca)}}
        )
        opts = DataKeyOpts(kms_setup.master_keys["aws:mock"])
    else:
        ce = make()
        opts = aws_at(request.getfixturevalue(peer).endpoint)
    with pytest.raises(MongoCryptKmsError, match="TLS certificate verification failed for KMS"):
        ce.create_data_key("aws:mock", opts)
    assert recorder.kms_attempts() == [1]
    assert [f.retrying for f in recorder.of(KmsRequestFailed)] == [False]
    assert vault.count_documents({}) == 0


def test_faults_during_decryption_of_a_key(
    make: Any, faulty_kms: FaultyKms, recorder: Recorder, vault: Any
) -> None:
    """The KMS unwrap on the decrypt side rides out one fault of each kind, in a fresh handle."""
    key_id = make().create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
    ciphertext = make().encrypt("x", EncryptOpts(Algorithm.DETERMINISTIC, key_id=key_id))
    for fault in ("drop", "500", "truncated", "not-tls"):
        recorder.clear()
        faulty_kms.script = [fault]
        assert make().decrypt(ciphertext) == "x", fault
        assert recorder.kms_attempts() == [1, 2], fault
    faulty_kms.script = ["drop"] * 4
    with pytest.raises(MongoCryptKmsError, match="after 3 retries"):
        make().decrypt(ciphertext)
    assert vault.count_documents({}) == 1


# -- on-demand credentials: the specification's Azure IMDS cases, through ClientEncryption ---

AZURE_PATH = "/metadata/identity/oauth2/token"


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """A local IMDS/metadata server every automatic credential source is pointed at."""
    server = FakeServer()
    server.start()
    endpoints = CredentialEndpoints(
        gcp_metadata=server.url,
        azure_imds=server.url,
        aws_ec2_metadata=server.url,
        aws_ecs=server.url,
        aws_sts=server.url,
    )
    monkeypatch.setattr(
        CredentialEndpoints, "from_environment", classmethod(lambda cls, env=None: endpoints)
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    _azure.TOKENS.clear()
    yield server
    _azure.TOKENS.clear()
    server.stop()


def azure_on_demand(make: Any, kms_setup: Any) -> ClientEncryption:
    azure = {
        k: v for k, v in kms_setup.providers["azure"].items() if k == "identityPlatformEndpoint"
    }
    del azure  # on-demand: no settings at all; the token goes straight to Key Vault
    return make(kms_providers={"azure": {}})  # type: ignore[no-any-return]  # make is an untyped fixture factory


def test_azure_imds_success(make: Any, kms_setup: Any, imds: FakeServer, vault: Any) -> None:
    """Case 1: the token from IMDS is used for Key Vault (the mock accepts only its token)."""
    from helpers.peers.cloud_kms import AZURE_TOKEN

    imds.route(
        "GET",
        AZURE_PATH,
        {"access_token": AZURE_TOKEN, "expires_in": "70", "resource": "https://vault.azure.net"},
    )
    ce = azure_on_demand(make, kms_setup)
    key_id = ce.create_data_key("azure", DataKeyOpts(kms_setup.master_keys["azure"]))
    assert len(imds.received) == 1 and imds.received[0].headers["metadata"] == "true"
    assert vault.count_documents({}) == 1
    round_trip(ce, key_id)


@pytest.mark.parametrize(
    ("status", "body", "problem", "quoted"),
    [
        (200, "{}", "without a string access_token", "{}"),
        (200, '{"access_token": "magic-cookie", "expires_in": "7', "not JSON", '"<redacted>"'),
        (404, "Identity not found", "replied with an error", "Identity not found"),
        (500, "IMDS internal failure", "replied with an error", "IMDS internal failure"),
    ],
    ids=["empty-json", "bad-json", "404", "500"],
)
def test_azure_imds_failures_surface_as_credentials_errors(
    make: Any,
    kms_setup: Any,
    imds: FakeServer,
    recorder: Recorder,
    vault: Any,
    status: int,
    body: str,
    problem: str,
    quoted: str,
) -> None:
    """Cases 2-5: a CredentialsError quoting the reply (secrets redacted), no KMS request, no
    retry of the IMDS request, nothing written."""
    imds.route("GET", AZURE_PATH, body, status=status)
    ce = azure_on_demand(make, kms_setup)
    with pytest.raises(CredentialsError) as info:
        ce.create_data_key("azure", DataKeyOpts(kms_setup.master_keys["azure"]))
    message = str(info.value)
    assert message.startswith("could not obtain azure credentials: Azure IMDS at ")
    assert problem in message and f"HTTP {status}" in message and quoted in message
    assert "magic-cookie" not in message
    assert len(imds.received) == 1
    assert recorder.of(KmsRequestStarted) == []
    assert vault.count_documents({}) == 0


def test_azure_imds_failure_is_not_cached(make: Any, kms_setup: Any, imds: FakeServer) -> None:
    from helpers.peers.cloud_kms import AZURE_TOKEN

    imds.route("GET", AZURE_PATH, "busy", status=500)
    ce = azure_on_demand(make, kms_setup)
    with pytest.raises(CredentialsError, match="busy"):
        ce.create_data_key("azure", DataKeyOpts(kms_setup.master_keys["azure"]))
    imds.route("GET", AZURE_PATH, {"access_token": AZURE_TOKEN, "expires_in": "3600"})
    assert ce.create_data_key("azure", DataKeyOpts(kms_setup.master_keys["azure"])).subtype == 4


def test_azure_imds_slow_reply_is_bounded_by_timeout_ms(
    make: Any, kms_setup: Any, imds: FakeServer, vault: Any
) -> None:
    """Case 6 (slow response): the operation must fail within its timeout_ms."""
    imds.routes[("GET", AZURE_PATH)] = Reply(delay=60.0)
    ce = make(kms_providers={"azure": {}}, timeout_ms=1000)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            ce.create_data_key("azure", DataKeyOpts(kms_setup.master_keys["azure"]))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(2.5)  # timeout_ms is 1 s
    elapsed = time.monotonic() - started
    # (Stopping the fake server ends the stalled reply, so the worker finishes promptly.)
    assert not worker.is_alive(), f"still waiting for IMDS after {elapsed:.1f} s"
    assert outcome and isinstance(outcome[0], MongoCryptTimeoutError), outcome
    assert vault.count_documents({}) == 0


@pytest.mark.parametrize("provider", ["gcp", "aws"])
@pytest.mark.parametrize("fault", ["500", "bad-json"])
def test_other_credential_sources_failing(
    make: Any, kms_setup: Any, imds: FakeServer, vault: Any, provider: str, fault: str
) -> None:
    body = "metadata unavailable" if fault == "500" else '{"access_token": '
    status = 500 if fault == "500" else 200
    if provider == "gcp":
        imds.route(
            "GET",
            "/computeMetadata/v1/instance/service-accounts/default/token",
            body,
            status=status,
        )
    else:  # EC2 IMDSv2: the session token and role work, the role's credentials fail
        imds.route("PUT", "/latest/api/token", "session")
        imds.route("GET", "/latest/meta-data/iam/security-credentials/", "role")
        imds.route("GET", "/latest/meta-data/iam/security-credentials/role", body, status=status)
    ce = make(kms_providers={provider: {}})
    master_key = kms_setup.master_keys["gcp" if provider == "gcp" else "aws"]
    with pytest.raises(CredentialsError) as info:
        ce.create_data_key(provider, DataKeyOpts(master_key))
    assert f"could not obtain {provider} credentials" in str(info.value)
    assert f"HTTP {status}" in str(info.value)
    assert ("metadata unavailable" if fault == "500" else "not JSON") in str(info.value)
    assert vault.count_documents({}) == 0


# -- the server going away mid-operation --------------------------------------------------------


class PrivateServer:
    """A SecantusDB of this test's own, stoppable and restartable on the same port and data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.peer: Optional[Peer] = None
        self.start()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=600&connectTimeoutMS=600"

    def start(self) -> None:
        config = self.directory / "secantusd.toml"
        config.write_text("")
        self.peer = Peer(
            "SecantusDB (private)",
            [
                str(Path(sys.executable).parent / "secantusd-py"),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--storage-path",
                str(self.directory / "data"),
                "--standalone",
            ],
            self.directory / f"secantusd-{time.monotonic_ns()}.log",
            ready=lambda: port_open(self.port),
        )

    def stop(self) -> None:
        if self.peer is not None:
            self.peer.stop()
            self.peer = None


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[PrivateServer]:
    if os.environ.get("MONGODB_URI"):
        pytest.skip("stops and restarts a server of its own (SecantusDB); not with MONGODB_URI")
    server = PrivateServer(tmp_path)
    yield server
    server.stop()


def test_server_unavailable_mid_operation(
    private_server: PrivateServer, kms_setup: Any, faulty_kms: FaultyKms, recorder: Recorder
) -> None:
    """The database stops while a data key is being created (during its KMS request), and again
    while a rewrap is between its KMS work and its key-vault update: each operation fails with a
    KeyVaultError, cached keys keep decrypting, and after a restart the key vault holds exactly
    what had been committed, unchanged. Then an auto-decrypting client loses the server mid-use."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(private_server.uri)
    vault = client["faults"]["keys"]
    providers = {"local": kms_setup.providers["local"], "aws:mock": kms_setup.providers["aws:mock"]}
    ce = ClientEncryption(
        providers,
        "faults.keys",
        client,
        kms_tls_options=kms_setup.tls_options,
        event_listeners=[recorder],
    )
    try:
        local_id = ce.create_data_key("local")
        aws_id = ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
        ciphertext = ce.encrypt("kept", EncryptOpts(Algorithm.DETERMINISTIC, key_id=local_id))
        before = {key["_id"]: key for key in vault.find()}
        assert len(before) == 2

        # 1. The server stops during create_data_key's KMS request: the insert fails.
        faulty_kms.on_call = private_server.stop
        faulty_kms.script = ["call"]
        with pytest.raises(KeyVaultError, match=r"key vault insert on faults\.keys failed"):
            ce.create_data_key("aws:mock", aws_at(faulty_kms.endpoint))
        assert recorder.of(KeyVaultOperationFailed)[-1].operation == "insert"
        # Keys already in libmongocrypt's cache keep working without the server.
        assert ce.decrypt(ciphertext) == "kept"
        # Anything needing the key vault fails clearly.
        with pytest.raises(KeyVaultError, match="find"):
            ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=aws_id))
        with pytest.raises(KeyVaultError):
            ce.get_key(local_id)

        # 2. Back up: exactly the two committed keys, untouched.
        private_server.start()
        assert {key["_id"]: key for key in vault.find()} == before

        # 3. The server stops between the rewrap's KMS decryption and its bulk update.
        faulty_kms.script = ["call"]
        with pytest.raises(KeyVaultError, match="update"):
            ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local"))
        private_server.start()
        after = {key["_id"]: key for key in vault.find()}
        assert after == before  # nothing half-rewrapped
        assert after[aws_id]["masterKey"]["provider"] == "aws:mock"

        # 4. Working again.
        written = ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local")).bulk_write_result
        assert written is not None and written.modified_count == 2
        assert ce.decrypt(ciphertext) == "kept"
        assert vault.count_documents({}) == 2

        # 5. Automatic decryption: a read through an auto-decrypting client fails with the
        # server gone (no partial result), and works again once it is back.
        client.app.people.insert_one({"_id": 1, "ssn": ciphertext})
        opts = AutoEncryptionOpts(providers, "faults.keys", bypass_auto_encryption=True)
        with pymongo.MongoClient[Any](private_server.uri, auto_encryption_opts=opts) as reader:
            assert present(reader.app.people.find_one())["ssn"] == "kept"
            private_server.stop()
            with pytest.raises(pymongo.errors.PyMongoError):
                reader.app.people.find_one()
            private_server.start()
            assert present(reader.app.people.find_one())["ssn"] == "kept"
    finally:
        ce.close()
        client.close()


# -- keys missing from the key vault ------------------------------------------------------------


def test_encrypt_with_a_key_not_in_the_vault(make: Any, recorder: Recorder, vault: Any) -> None:
    ce = make()
    with pytest.raises(MongoCryptError, match="not all keys requested were satisfied") as info:
        ce.encrypt("x", EncryptOpts(Algorithm.DETERMINISTIC, key_alt_name="absent"))
    assert not isinstance(info.value, KeyVaultError)  # the read worked: the key is not there
    (found,) = recorder.of(KeyVaultOperationSucceeded)
    assert found.operation == "find" and found.documents == 0
    assert recorder.of(KmsRequestStarted) == []
    # Issue 15 item 4: the error names the missing key and the vault it was sought in.
    where = f"Missing from key vault {vault.full_name}"
    assert f"{where}: alternate name 'absent'." in str(info.value)
    absent = uuid.uuid4()
    with pytest.raises(MongoCryptError, match="not all keys requested were satisfied") as info:
        ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=absent))
    assert f"{where}: id {absent}." in str(info.value)
    assert vault.count_documents({}) == 0


def test_decrypt_after_the_key_was_deleted(
    make: Any, kms_setup: Any, recorder: Recorder, vault: Any
) -> None:
    ce = make()
    key_id = ce.create_data_key("aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"]))
    ciphertext = ce.encrypt("gone", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
    assert ce.delete_key(key_id).deleted_count == 1
    recorder.clear()
    fresh = make()  # an empty key cache: the key must come from the vault
    with pytest.raises(MongoCryptError, match="not all keys requested were satisfied") as info:
        fresh.decrypt(ciphertext)
    assert f"Missing from key vault {vault.full_name}: id {key_id.as_uuid()}." in str(info.value)
    assert recorder.of(KmsRequestStarted) == []
    assert vault.count_documents({}) == 0
    # Automatic decryption of a stored value whose key is gone: pymongo's EncryptionError.
    db = vault.database
    db.people.insert_one({"_id": 1, "v": ciphertext})
    opts = AutoEncryptionOpts(
        kms_setup.providers,
        f"{db.name}.{vault.name}",
        bypass_auto_encryption=True,
        kms_tls_options=kms_setup.tls_options,
    )
    with (
        pymongo.MongoClient[Any](
            db.client.address and _uri(db.client), auto_encryption_opts=opts
        ) as reader,
        pytest.raises(pymongo.errors.EncryptionError, match="not all keys requested") as failed,
    ):
        reader[db.name].people.find_one()
    assert f"Missing from key vault {vault.full_name}: id {key_id.as_uuid()}." in str(failed.value)


def _uri(client: pymongo.MongoClient[Any]) -> str:
    host, port = present(client.address)
    return f"mongodb://{host}:{port}"


def test_rewrap_of_nothing_writes_nothing(make: Any, recorder: Recorder, vault: Any) -> None:
    ce = make()
    result = ce.rewrap_many_data_key({"keyAltNames": "absent"}, RewrapManyDataKeyOpts("local"))
    assert result.bulk_write_result is None
    assert [e.operation for e in recorder.of(KeyVaultOperationSucceeded)] == ["find"]
    assert vault.count_documents({}) == 0


# -- mongocryptd ---------------------------------------------------------------------------------


@pytest.mark.requirement("CSE-CRYPTD-07")
def test_mongocryptd_killed_between_operations_and_respawned(vault: Any, tmp_path: Path) -> None:
    """mongocrypt-cryptd (our mongocryptd) is killed after one insert; pymongo respawns it."""
    cryptd = Path(sys.executable).with_name("mongocrypt-cryptd")
    port, pid_file = free_port(), tmp_path / "cryptd.pid"
    db = vault.database
    local = {"local": {"key": os.urandom(96)}}
    with ClientEncryption(local, f"{db.name}.{vault.name}", db.client) as ce:
        key_id = ce.create_data_key("local")
    schema = {
        "bsonType": "object",
        "properties": {
            "ssn": {
                "encrypt": {
                    "keyId": [key_id],
                    "bsonType": "string",
                    "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic",
                }
            }
        },
    }
    opts = AutoEncryptionOpts(
        local,
        f"{db.name}.{vault.name}",
        schema_map={f"{db.name}.people": schema},
        query_analysis="mongocryptd",
        mongocryptd_uri=f"mongodb://localhost:{port}",
        mongocryptd_spawn_path=str(cryptd),
        mongocryptd_spawn_args=[
            f"--port={port}",
            f"--pidfilepath={pid_file}",
            "--idleShutdownTimeoutSecs=60",
        ],
    )
    with pymongo.MongoClient[Any](_uri(db.client), auto_encryption_opts=opts) as writer:
        try:
            writer[db.name].people.insert_one({"_id": 1, "ssn": "123-45-6789"})
            first = int(pid_file.read_text())
            os.kill(first, signal.SIGKILL)
            # pymongo respawns mongocryptd only on a server selection timeout: the insert that
            # meets the dead pooled connection fails (nothing written), the next one respawns.
            with pytest.raises(pymongo.errors.EncryptionError):
                writer[db.name].people.insert_one({"_id": 2, "ssn": "987-65-4321"})
            assert db.people.count_documents({}) == 1
            writer[db.name].people.insert_one({"_id": 2, "ssn": "987-65-4321"})
            second = int(pid_file.read_text())
            assert second != first
            stored = list(db.people.find({}, {"ssn": 1}).sort("_id", 1))
            assert [type(d["ssn"]) for d in stored] == [Binary, Binary]
            assert [d["ssn"] for d in writer[db.name].people.find().sort("_id", 1)] == [
                "123-45-6789",
                "987-65-4321",
            ]
        finally:
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
