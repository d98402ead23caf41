"""Write the seed inputs of every harness into tests/fuzz/corpus/<harness>/.

Seeds are real inputs in each harness' layout: corpus ciphertexts of the specification under its
local key, ciphertexts of every algorithm made here with that key, server replies holding them,
recorded and constructed KMS replies (KMIP replies from tests/helpers/kmip_ttlv.py's server), and
mongocryptd commands. The fuzzers start from them; ``tests/fuzz/run.py --update-corpus`` merges in
what the long runs find. Files are named by the SHA-1 of their content, as libFuzzer names them.

Run: ``python tests/fuzz/seeds.py`` (needs nothing but the package and the tests' data). A harness
whose corpus directory already holds inputs is left alone (some seeds are random ciphertexts, so
writing them again would only grow the corpus); ``--force`` adds seeds to every directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # tests/: helpers.kmip_ttlv

import bson  # noqa: E402
from _common import (  # noqa: E402
    AWS_MASTER_KEY,
    CORPUS,
    DATA,
    SPEC_LOCAL_KEY,
    json_data,
    local_key_document,
)
from bson import Binary  # noqa: E402

#: Harnesses whose corpus already has inputs (filled by :func:`main`): no seeds are added to them.
SEEDED: set[str] = set()


def write(harness: str, data: bytes) -> None:
    if harness in SEEDED:
        return
    directory = CORPUS / harness
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def segment(reply: bytes) -> bytes:
    """One KMS attempt's bytes in the KMS harness' layout: a 2-byte length, then the bytes."""
    return len(reply).to_bytes(2, "little") + reply


def http_reply(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} Status\r\nContent-Length: {len(body)}\r\n\r\n"
    return segment(head.encode() + body)


def recorded(relative: str) -> bytes:
    """A recorded reply under tests/data with CRLF in its head (the files use LF), as a segment."""
    head, _, body = (DATA / relative).read_bytes().partition(b"\n\n")
    return segment(head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body)


def ciphertexts() -> list[Binary]:
    """Corpus ciphertexts (one per BSON type and algorithm) and fresh ones of every algorithm."""
    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.engine import MongoCryptOptions, has_string_algorithm
    from mongocrypt.io.memory import InMemoryIO

    found: dict[tuple[str, str], Binary] = {}
    for entry in json_data("spec-corpus/corpus-encrypted.json").values():
        if isinstance(entry, dict) and entry.get("kms") == "local" and entry.get("allowed"):
            found.setdefault((entry["type"], entry["algo"]), entry["value"])
    io = InMemoryIO()
    io.keys.append(bson.encode(local_key_document()))
    encrypter = ExplicitEncrypter(
        io, MongoCryptOptions({"local": {"key": SPEC_LOCAL_KEY}}, bypass_encryption=True)
    )
    key_id = bytes(local_key_document()["_id"])
    made: list[tuple[str, Any, dict[str, Any]]] = [
        ("Indexed", "seed", {"contention_factor": 0}),
        ("Unindexed", "seed", {}),
        (
            "Range",
            25,
            {
                "contention_factor": 0,
                "range_opts": bson.encode(
                    {"min": 0, "max": 200, "sparsity": bson.Int64(1), "trimFactor": 1}
                ),
            },
        ),
        ("Indexed", "seed", {"contention_factor": 0, "query_type": "equality"}),
    ]
    if has_string_algorithm:
        text: dict[str, Any] = {"caseSensitive": True, "diacriticSensitive": True}
        text["prefix"] = {"strMinQueryLength": 2, "strMaxQueryLength": 8}
        made.append(("String", "hello", {"contention_factor": 0, "string_opts": bson.encode(text)}))
    extra = []
    for algorithm, value, options in made:
        result = encrypter.encrypt(bson.encode({"v": value}), algorithm, key_id=key_id, **options)
        extra.append(bson.decode(result)["v"])
    ordered = [found[key] for key in sorted(found)]
    return ordered[::3] + extra


def explicit_decrypt(blobs: list[Binary]) -> None:
    for blob in blobs:
        data = bytes(blob)
        write("explicit_decrypt", b"\x00" + data)
        write("explicit_decrypt", b"\x03" + data[:1] + data[17:])
    for blob in blobs[:6]:
        write("explicit_decrypt", b"\x01" + bson.encode({"v": blob}))
        write("explicit_decrypt", b"\x02" + bytes(blob))


def reply(*values: Any) -> bytes:
    batch = [{"_id": i, "x": value} for i, value in enumerate(values)]
    return bson.encode({"cursor": {"firstBatch": batch, "id": 0, "ns": "db.coll"}, "ok": 1.0})


def auto_decrypt(blobs: list[Binary]) -> None:
    key = bson.encode(local_key_document())
    write("auto_decrypt", b"\x00" + reply(blobs[0], {"nested": [blobs[1], {"deep": blobs[-1]}]}))
    write("auto_decrypt", b"\x00" + reply(*blobs[-5:]))
    write("auto_decrypt", b"\x00" + reply("plain", 1, None))
    for blob in (blobs[0], blobs[-1]):
        document = reply(blob)
        write("auto_decrypt", b"\x02" + len(document).to_bytes(2, "little") + document + key)
    write("auto_decrypt", b"\x01\x00\x00\x01\x10\x00")


def kms_reply() -> None:
    from helpers.kmip_ttlv import FakeKmipServer
    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.engine import KmsContext, MongoCryptOptions
    from mongocrypt.io.memory import InMemoryIO

    blob = base64.b64encode(bytes(range(256)) * 2).decode()
    aws_encrypt = http_reply(
        200, json.dumps({"CiphertextBlob": blob, "KeyId": AWS_MASTER_KEY["key"]}).encode()
    )
    azure_token = recorded("libmongocrypt/kms-azure/oauth-response.txt")
    gcp_token = recorded("libmongocrypt/kms-gcp/oauth-response.txt")
    streams = {
        0: aws_encrypt,
        1: recorded("libmongocrypt/keys/12345678123498761234123456789012-aws-decrypt-reply.txt"),
        2: azure_token
        + http_reply(200, json.dumps({"kid": "https://x/keys/test/1", "value": blob}).encode()),
        3: azure_token + recorded("libmongocrypt/kms-azure/decrypt-response.txt"),
        4: gcp_token + http_reply(200, json.dumps({"name": "k", "ciphertext": blob}).encode()),
        5: gcp_token + recorded("libmongocrypt/kms-gcp/decrypt-response.txt"),
    }
    # KMIP: what tests/helpers/kmip_ttlv.py's server answers to libmongocrypt's real requests.
    server = FakeKmipServer()
    replies: list[bytes] = []

    def respond(request: KmsContext) -> bytes:
        replies.append(server.respond(request.message))
        return replies[-1]

    io = InMemoryIO(kms={"kmip": respond})
    options = MongoCryptOptions({"kmip": {"endpoint": "localhost:5696"}}, bypass_encryption=True)
    ExplicitEncrypter(io, options).create_data_key("kmip", master_key={})
    streams[6] = b"".join(segment(r) for r in replies)
    streams[7] = segment(server.respond(_kmip_get_request()))
    for scenario, stream in streams.items():
        write("kms_reply", bytes([scenario, 0, 0]) + stream)
        write("kms_reply", bytes([scenario, 7, 1]) + stream)
    throttled = http_reply(429, b'{"__type": "ThrottlingException"}')
    write("kms_reply", bytes([1, 0, 1]) + throttled + streams[1])
    write("kms_reply", bytes([1, 0, 0]) + http_reply(500, b"{}") + streams[1])
    write("kms_reply", bytes([0, 0, 0]) + segment(streams[0][2:40]) + streams[0])  # truncated


def _kmip_get_request() -> bytes:
    from helpers.kmip_ttlv import STRUCTURE, TEXT, encode, t

    return encode(
        t(
            "BatchItem",
            STRUCTURE,
            [t("Operation", 0x05, 0x0A), t("UniqueIdentifier", TEXT, "uid-1")],
        )
    )


def successes(harness: str, call: Callable[[bytes], None], mode: int, count: int) -> None:
    """Random inputs of ``mode`` that the harness completes without any error."""
    generator = random.Random(f"{harness}-{mode}")
    kept = 0
    for _ in range(20000):
        data = bytes([mode]) + generator.randbytes(generator.randint(8, 120))
        try:
            call(data)
        except Exception:
            continue
        write(harness, data)
        kept += 1
        if kept == count:
            return


def encrypt_options_and_facade(blobs: list[Binary]) -> None:
    import fuzz_encrypt_options
    import fuzz_facade
    from _common import Reader

    def engine(data: bytes) -> None:
        fuzz_encrypt_options.engine_encrypt(Reader(data[1:]))

    def public(data: bytes) -> None:
        fuzz_encrypt_options.public_encrypt(Reader(data[1:]))

    successes("encrypt_options", engine, 0, 24)
    successes("encrypt_options", public, 1, 24)
    successes("facade", lambda d: fuzz_facade.pymongo_encrypt(Reader(d[1:])), 1, 16)
    for blob in blobs[:: max(1, len(blobs) // 8)]:
        write("facade", b"\x00" + bytes(blob))
        write("facade", b"\x03" + bytes(blob))
    write("facade", b"\x02" + reply(blobs[0], blobs[-1]))


def analyzer() -> None:
    for relative in ("libmongocrypt/fle1-find/cmd-to-mongocryptd.json",):
        write("analyzer", b"\x00" + bson.encode(json_data(relative)))
    insert = json_data("libmongocrypt/fle2-insert/cmd.json")
    fields = json_data("libmongocrypt/fle2-insert/encrypted-field-map.json")
    insert["encryptionInformation"] = {"type": 1, "schema": fields}
    write("analyzer", b"\x00" + bson.encode(insert))
    generator = random.Random("analyzer")
    for _ in range(24):
        write("analyzer", b"\x01" + generator.randbytes(generator.randint(16, 200)))


def main() -> None:
    if "--force" not in sys.argv[1:] and CORPUS.is_dir():
        SEEDED.update(d.name for d in CORPUS.iterdir() if d.is_dir() and any(d.iterdir()))
    blobs = ciphertexts()
    explicit_decrypt(blobs)
    auto_decrypt(blobs)
    kms_reply()
    encrypt_options_and_facade(blobs)
    analyzer()
    for directory in sorted(CORPUS.iterdir()):
        files = list(directory.iterdir())
        size = sum(f.stat().st_size for f in files)
        print(f"{directory.name}: {len(files)} inputs, {size} bytes")


if __name__ == "__main__":
    main()
