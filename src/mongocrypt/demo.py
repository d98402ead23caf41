"""A short tour of the engine with a local master key and an in-memory key vault.

Run it with ``python -m mongocrypt.demo`` (``make demo`` builds everything first). Nothing here
needs a server or a KMS: the master key is random for each run and never printed.
"""

from __future__ import annotations

import os
from typing import Any

import bson

from mongocrypt import libmongocrypt_version
from mongocrypt.engine import ExplicitEncrypter, MongoCryptOptions, has_string_algorithm
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


def main() -> None:
    print(f"libmongocrypt {libmongocrypt_version()}, native crypto, in-memory key vault\n")
    io = InMemoryIO()
    options = MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    encrypter = ExplicitEncrypter(io, options)
    key_id = encrypter.create_data_key("local", key_alt_names=["demo-key"])
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
        encrypted = encrypter.encrypt(bson.encode({"v": value}), algorithm, key_id=key_id, **extra)
        ciphertext = bson.decode(encrypted)["v"]
        decrypted = bson.decode(encrypter.decrypt(encrypted))["v"]
        assert decrypted == value, (algorithm, decrypted)
        print(f"{algorithm:>44}  {value!r:>14} -> {describe(ciphertext)}")
        print(f"{'':>44}  decrypts back to {decrypted!r}")

    same = [
        bson.decode(encrypter.encrypt(bson.encode({"v": "x"}), algorithm, key_alt_name="demo-key"))[
            "v"
        ]
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
