"""A short tour: automatic encryption on a pymongo MongoClient with the embedded analyzer, then
every algorithm through the engine.

Run it with ``python examples/demo.py`` (``make demo`` builds everything first). It needs no KMS
and no mongocryptd: the master key is local, random for each run and never printed. The automatic
encryption part talks to the server ``MONGODB_URI`` names; without one it starts a throwaway
SecantusDB (a MongoDB-compatible test server, installed with the project's test extras) and stops
it at the end. The engine part needs no server at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import bson

from mongocrypt import libmongocrypt_version
from mongocrypt.engine import (
    DataKeyOptions,
    ExplicitEncrypter,
    ExplicitEncryptOptions,
    MongoCryptOptions,
    has_string_algorithm,
)
from mongocrypt.errors import MongoCryptError
from mongocrypt.io.memory import InMemoryIO

DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"

# The first byte of every ciphertext says what kind of payload it is.
BLOB_KINDS = {
    1: "FLE1 deterministic",
    2: "FLE1 random",
    11: "QE insert/update payload (v2)",
    12: "QE find payload (v2)",
    16: "QE unindexed value (v2)",
}


def describe(ciphertext: bson.Binary) -> str:
    kind = BLOB_KINDS.get(ciphertext[0], f"blob subtype {ciphertext[0]}")
    head = ciphertext[:12].hex()
    return f"Binary subtype {ciphertext.subtype}, {len(ciphertext):4} bytes, {kind}: {head}..."


@contextlib.contextmanager
def demo_server() -> Iterator[Optional[str]]:
    """``MONGODB_URI``, or a throwaway SecantusDB on a free port, or None when neither exists."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    executable = shutil.which(
        "secantusd-py",
        path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    if executable is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as storage:
        config = Path(storage) / "secantusd.toml"
        config.write_text("")
        server = subprocess.Popen(
            [
                executable,
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(Path(storage) / "data"),
                "--standalone",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                time.sleep(0.1)
            yield f"mongodb://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)


def automatic_encryption(uri: str) -> None:
    """Insert and query through a client that encrypts by itself; show what the server holds."""
    from pymongo import MongoClient
    from pymongo.collection import Collection

    from mongocrypt import ClientEncryption, DataKeyOpts
    from mongocrypt.auto_encryption import AutoEncryptionOpts

    kms_providers = {"local": {"key": os.urandom(96)}}
    plain: MongoClient[dict[str, Any]]
    with MongoClient(uri) as plain, ClientEncryption(kms_providers, "demo.keys", plain) as ce:
        plain.drop_database("demo")
        key_id = ce.create_data_key("local", DataKeyOpts(key_alt_names=["patients"]))
        schema = {
            "bsonType": "object",
            "properties": {
                "ssn": {
                    "encrypt": {"keyId": [key_id], "bsonType": "string", "algorithm": DETERMINISTIC}
                },
                "diagnosis": {"encrypt": {"keyId": [key_id], "algorithm": RANDOM}},
            },
        }
        opts = AutoEncryptionOpts(
            kms_providers,
            "demo.keys",
            schema_map={"demo.patients": schema},
            query_analysis="embedded",
        )
        client: MongoClient[dict[str, Any]]
        with MongoClient(uri, auto_encryption_opts=opts) as client:
            patients: Collection[dict[str, Any]] = client.demo.patients
            patients.insert_one(
                {
                    "_id": 1,
                    "name": "Ada",
                    "ssn": "457-55-5462",
                    "diagnosis": {"code": "J45", "note": "asthma"},
                }
            )
            stored: dict[str, Any] = plain.demo.patients.find_one({"_id": 1}) or {}
            found = patients.find_one({"ssn": "457-55-5462"}) or {}  # a query on an encrypted field
            print("Automatic encryption (embedded query analysis, no mongocryptd):")
            print(f"  stored on the server: name={stored['name']!r}, ssn={describe(stored['ssn'])}")
            print(f"  {'':20}  diagnosis={describe(stored['diagnosis'])}")
            print(f"  read back decrypted:  ssn={found['ssn']!r}, diagnosis={found['diagnosis']!r}")
            try:
                patients.find_one({"diagnosis.code": "J45"})
            except Exception as exc:
                print(f"  a query on a randomly encrypted field is refused: {exc}\n")
        plain.drop_database("demo")


def main() -> None:
    with demo_server() as uri:
        if uri is None:
            print("(no MONGODB_URI and no SecantusDB: skipping the automatic-encryption part)\n")
        else:
            automatic_encryption(uri)
    print(f"libmongocrypt {libmongocrypt_version()}, native crypto, in-memory key vault\n")
    io = InMemoryIO()
    options = MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    encrypter = ExplicitEncrypter(io, options)
    key_id = encrypter.create_data_key(DataKeyOptions("local", key_alt_names=["demo-key"]))
    print(f"created data key {bson.Binary(key_id, 4).as_uuid()} (alt name 'demo-key')\n")

    cases: list[tuple[str, Any, dict[str, Any]]] = [
        (DETERMINISTIC, "457-55-5462", {}),
        (RANDOM, "457-55-5462", {}),
        ("Indexed", "457-55-5462", {"contention_factor": 0}),
        ("Unindexed", "457-55-5462", {}),
        (
            "Range",
            42,
            {
                "contention_factor": 0,
                "range_opts": bson.encode(
                    {"min": 0, "max": 200, "sparsity": bson.Int64(1), "trimFactor": 1}
                ),
            },
        ),
    ]
    if has_string_algorithm:
        cases.append(
            (
                "String",
                "hello world",
                {
                    "contention_factor": 0,
                    "string_opts": bson.encode(
                        {
                            "caseSensitive": True,
                            "diacriticSensitive": True,
                            "prefix": {"strMinQueryLength": 2, "strMaxQueryLength": 10},
                        }
                    ),
                },
            )
        )
    for algorithm, value, extra in cases:
        opts = ExplicitEncryptOptions(algorithm, key_id=key_id, **extra)
        encrypted = encrypter.encrypt(bson.encode({"v": value}), opts)
        ciphertext = bson.decode(encrypted)["v"]
        decrypted = bson.decode(encrypter.decrypt(encrypted))["v"]
        assert decrypted == value, (algorithm, decrypted)
        print(f"{algorithm:>44}  {value!r:>14} -> {describe(ciphertext)}")
        print(f"{'':>44}  decrypts back to {decrypted!r}")

    same = [
        bson.decode(
            encrypter.encrypt(
                bson.encode({"v": "x"}), ExplicitEncryptOptions(algorithm, key_alt_name="demo-key")
            )
        )["v"]
        for algorithm in (DETERMINISTIC, DETERMINISTIC, RANDOM, RANDOM)
    ]
    print(f"\nDeterministic: equal inputs give equal ciphertexts: {same[0] == same[1]}")
    print(f"Random:        equal inputs give equal ciphertexts: {same[2] == same[3]}")

    tampered = bytearray(same[0])
    tampered[-1] ^= 1
    try:
        encrypter.decrypt(bson.encode({"v": bson.Binary(bytes(tampered), 6)}))
    except MongoCryptError as exc:
        print(f"a tampered ciphertext is refused: MongoCryptError: {exc}")
    encrypter.close()


if __name__ == "__main__":
    main()
