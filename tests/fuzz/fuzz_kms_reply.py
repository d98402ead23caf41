"""Fuzz KMS reply parsing: drive real KMS requests (data key creation and data key decryption for
AWS, Azure, GCP and KMIP) and feed the fuzzer's bytes back as the KMS replies.

Input: byte 0 picks the scenario (provider x operation), byte 1 the chunking (0: as much as
libmongocrypt asks for, else chunks of 1..32 bytes), byte 2 whether to feed with
``feed_with_retry`` (where the library has it) or ``feed``; then one segment per KMS attempt, in
order (Azure and GCP need a token reply, then the key reply): a 2-byte little-endian length and
that many bytes, what the KMS sends on that connection. When a segment ends mid-reply the attempt
reports a network failure (``fail()``), as the transport does when a KMS closes the connection, so
libmongocrypt's retry budget is exercised too; bytes after a complete reply are never read.

Every input uses a fresh handle, so no key or token cache hides the KMS exchange. Known bugs
(reported, xfail-tested in tests/fuzz/test_fuzz.py): libmongocrypt 1.13 (the fallback pin) aborts
on a KMIP reply whose length field is 2**31 or more, or (SIGSEGV) whose nested item lengths
overrun their structure. Such inputs are counted and skipped unless
``FUZZ_STRICT_KNOWN_BUGS=1``. Run:
``python tests/fuzz/fuzz_kms_reply.py -runs=N [corpus dirs]``.
"""

from __future__ import annotations

import base64
import contextlib
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    AWS_CREDENTIALS,
    AWS_MASTER_KEY,
    RANDOM,
    KnownBugs,
    Reader,
    check_live_contexts,
    instrumented,
    json_data,
    run,
    typed_errors,
)

with instrumented():
    import bson

    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.engine import KmsContext, MongoCryptOptions, libmongocrypt_version
    from mongocrypt.engine.native import has_kms_in_place_retry, live_objects
    from mongocrypt.io.memory import InMemoryIO


def _gcp_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


AZURE = {"tenantId": "tenant", "clientId": "client", "clientSecret": "fuzz-azure-secret"}
GCP = {"email": "svc@project.iam.gserviceaccount.com", "privateKey": _gcp_private_key()}
KMIP = {"endpoint": "localhost:5696"}
AZURE_MASTER_KEY = {"keyVaultEndpoint": "test.vault.azure.net", "keyName": "test"}
GCP_MASTER_KEY = {"projectId": "test", "location": "global", "keyRing": "test", "keyName": "test"}

AWS_KEY = json_data("libmongocrypt/keys/12345678123498761234123456789012-aws-document.json")
AZURE_KEY = json_data("libmongocrypt/key-document-azure.json")
GCP_KEY = json_data("libmongocrypt/key-document-gcp.json")
KMIP_KEY = {
    **{k: v for k, v in AWS_KEY.items() if k != "masterKey"},
    "masterKey": {"provider": "kmip", "keyId": "uid-1"},
}

#: (provider settings, operation, master key or key document), indexed by the input's first byte.
SCENARIOS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("aws", AWS_CREDENTIALS, "create", AWS_MASTER_KEY),
    ("aws", AWS_CREDENTIALS, "decrypt", AWS_KEY),
    ("azure", AZURE, "create", AZURE_MASTER_KEY),
    ("azure", AZURE, "decrypt", AZURE_KEY),
    ("gcp", GCP, "create", GCP_MASTER_KEY),
    ("gcp", GCP, "decrypt", GCP_KEY),
    ("kmip", KMIP, "create", {}),
    ("kmip", KMIP, "decrypt", KMIP_KEY),
]
TYPED = typed_errors()
BASELINE = live_objects()["contexts"]
KNOWN = KnownBugs("kmip_length_abort_1_13", "kmip_nested_length_crash_1_13")
#: libmongocrypt 1.13 (the fallback pin) aborts on a KMIP reply whose length field is 2**31 or more
#: (``want_bytes_pending <= (uint32_t) INT32_MAX failed``, or near 2**32
#: ``parser->first_len <= UINT32_MAX - KMS_KMIP_RESPONSE_PARSER_FIRST_LENGTH failed``).
OLD_KMIP_PARSER = libmongocrypt_version().startswith("1.13.")


def ttlv_lengths_fit(data: bytes) -> bool:
    """Whether every KMIP TTLV item in ``data`` (the response after its 8-byte header) fits in
    its enclosing structure: libmongocrypt 1.13 reads out of bounds (SIGSEGV) on a Get response
    whose nested lengths do not."""

    def fits(start: int, end: int) -> bool:
        position = start
        while position + 8 <= end:
            kind = data[position + 3]
            length = int.from_bytes(data[position + 4 : position + 8], "big")
            body = position + 8
            if body + length > end:
                return False
            if kind == 0x01 and not fits(body, body + length):
                return False
            position = body + length + (-length % 8 if kind != 0x01 else 0)
        return True

    return len(data) < 8 or fits(0, len(data))


class SkipInput(Exception):
    """Raised to abandon an input that would hit a known (reported) bug."""


class ReplayIO(InMemoryIO):
    """Answers each KMS attempt with the next segment of the input, as the fuzzer wrote it."""

    def __init__(self, stream: Reader, chunk: int, with_retry: bool) -> None:
        super().__init__()
        self.stream, self.chunk, self.with_retry = stream, chunk, with_retry

    def kms_request(self, kms_context: KmsContext) -> None:
        # What a transport reads before sending: all must work on any request.
        _ = (kms_context.endpoint, kms_context.message, kms_context.kms_provider)
        _ = (kms_context.usleep, repr(kms_context))
        segment = Reader(self.stream.take(self.stream.int(2, signed=False)))
        provider = kms_context.kms_provider
        if OLD_KMIP_PARSER and provider.startswith("kmip"):
            length = int.from_bytes(segment.data[4:8], "big") if len(segment.data) >= 8 else 0
            if length >= 0x80000000 and KNOWN.hit("kmip_length_abort_1_13"):
                raise SkipInput
            if not ttlv_lengths_fit(segment.data) and KNOWN.hit("kmip_nested_length_crash_1_13"):
                raise SkipInput
        while (needed := kms_context.bytes_needed) > 0:
            data = segment.take(min(needed, self.chunk or needed))
            if not data:
                kms_context.fail()  # the KMS closed the connection: a retryable network error
                return
            if self.with_retry:
                if kms_context.feed_with_retry(data):
                    return
            else:
                kms_context.feed(data)


def operation(scenario: int, io: ReplayIO) -> Callable[[], Any]:
    provider, settings, op, document = SCENARIOS[scenario]
    encrypter = ExplicitEncrypter(
        io, MongoCryptOptions({provider: settings}, bypass_encryption=True)
    )
    if op == "create":
        return lambda: encrypter.create_data_key(provider, master_key=document)
    io.keys.append(bson.encode(document))
    value = bson.encode({"v": "fuzz"})
    return lambda: encrypter.encrypt(value, RANDOM, key_id=bytes(document["_id"]))


def TestOneInput(data: bytes) -> None:
    reader = Reader(data)
    scenario = reader.byte() % len(SCENARIOS)
    chunk = reader.byte() % 33
    with_retry = bool(reader.byte() & 1) and has_kms_in_place_retry
    with contextlib.suppress(SkipInput, *TYPED):
        operation(scenario, ReplayIO(reader, chunk, with_retry))()
    check_live_contexts(BASELINE)


if __name__ == "__main__":
    run(TestOneInput)
