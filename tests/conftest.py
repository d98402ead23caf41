"""Shared fixtures: test data loading, local master keys, handles over an in-memory key vault."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, TypeVar

import bson
import pytest
from bson import json_util

from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO

# The real peers (server, KMS emulators) for the integration suites.
pytest_plugins = ["helpers.peers.fixtures"]

DATA = Path(__file__).parent / "data"
#: The local master key the specification's tests use (corpus keys are wrapped with it).
SPEC_LOCAL_KEY = base64.b64decode(
    "Mng0NCt4ZHVUYUJCa1kxNkVyNUR1QURhZ2h2UzR2d2RrZzh0cFBwM3R6NmdWMDFBMUN3YkQ5aXRRMkhGRGdQV09wOGVN"
    "YUMxT2k3NjZKelhaQmRCZGJkTXVyZG9uSjFk"
)
T = TypeVar("T")
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``requirement`` marker may only name IDs of the checklist (tools/spec_coverage.py reads
    the same markers to generate docs/spec-coverage.md)."""
    checklist = (DATA / "requirements-checklist.md").read_text()
    known = set(re.findall(r"^- (CSE-[A-Z]+-\d+) ", checklist, re.M))
    for item in items:
        for mark in item.iter_markers("requirement"):
            unknown = sorted(set(mark.args) - known)
            if unknown or not mark.args:
                named = unknown or "(none given)"
                raise pytest.UsageError(f"{item.nodeid}: requirement IDs {named} unknown")


def load_json(relative: str) -> Any:
    """A JSON (Extended JSON) file under tests/data/, decoded to Python/BSON types."""
    return json_util.loads((DATA / relative).read_text())


def load_bytes(relative: str) -> bytes:
    return (DATA / relative).read_bytes()


def load_http_reply(relative: str) -> bytes:
    """A recorded KMS HTTP reply. The recordings use LF line ends; HTTP (and libmongocrypt's
    parser) needs CRLF in the status line and headers, so the head is converted, not the body."""
    head, _, body = load_bytes(relative).partition(b"\n\n")
    return head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body


#: libmongocrypt's recorded AWS Decrypt reply of the keyMaterial the spec's AWS data keys share
#: (unified files, corpus-key-aws.json).
AWS_DECRYPT_REPLY = "libmongocrypt/kms-aws/decrypt-response.txt"


def recorded_aws_plaintext() -> bytes:
    """The data key inside the spec's AWS-wrapped keyMaterial, from the recorded reply."""
    body = (DATA / AWS_DECRYPT_REPLY).read_text().split("\n\n", 1)[1]
    return base64.b64decode(json.loads(body)["Plaintext"])


def v(value: Any) -> bytes:
    """``{"v": value}`` as BSON, the shape explicit encryption works on."""
    return bson.encode({"v": value})


def unv(document: bytes) -> Any:
    return bson.decode(document)["v"]


def present(document: Optional[T]) -> T:
    """``document``, a lookup's result the test expects to exist (not ``None``)."""
    assert document is not None, "expected a document, found none"
    return document


@pytest.fixture
def local_key() -> bytes:
    return os.urandom(96)


@pytest.fixture
def memory_io() -> InMemoryIO:
    return InMemoryIO()


@pytest.fixture
def encrypter(memory_io: InMemoryIO, local_key: bytes) -> Iterator[ExplicitEncrypter]:
    """An explicit encrypter with a random local master key and an empty in-memory key vault."""
    enc = ExplicitEncrypter(
        memory_io, MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
    )
    yield enc
    enc.close()


@pytest.fixture
def key_id(encrypter: ExplicitEncrypter) -> bson.Binary:
    """A local data key (alt name ``"default"``) in the encrypter's key vault."""
    return encrypter.create_data_key("local", key_alt_names=["default"])  # type: ignore[no-any-return]  # create_data_key returns Any


class RecordingIO(InMemoryIO):
    """:class:`InMemoryIO` that records every request the state machine makes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[str, Any]] = []

    def kms_request(self, kms_context: Any) -> None:
        self.requests.append(("kms", (kms_context.kms_provider, kms_context.endpoint)))
        super().kms_request(kms_context)

    def collection_info(self, database: str, filter: bytes) -> list[bytes]:
        self.requests.append(("collinfo", (database, bson.decode(filter))))
        return super().collection_info(database, filter)

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        self.requests.append(("markings", (database, bson.decode(cmd))))
        return super().mark_command(database, cmd)

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        self.requests.append(("keys", bson.decode(filter)))
        return super().fetch_keys(filter)

    def fetch_kms_credentials(self, providers: Any) -> Any:
        self.requests.append(("credentials", tuple(providers)))
        return super().fetch_kms_credentials(providers)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.requests]


def http_reply(status: int, body: bytes, reason: str = "") -> bytes:
    """A minimal HTTP/1.1 response as a KMS would send it."""
    head = f"HTTP/1.1 {status} {reason or 'Status'}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
