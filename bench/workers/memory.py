"""Memory: RSS after N explicit operations (encrypt and decrypt of a 20-byte string, Deterministic,
alternating; each call is one operation) through mongocrypt's own ClientEncryption.

usage: memory.py --checkpoints 100000,1000000
"""

from __future__ import annotations

import argparse
import time

import benchlib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoints", default="100000,1000000")
    args = parser.parse_args()
    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))

    client = benchlib.mongo_client()
    explicit = benchlib.Explicit(client, "own")
    _algorithm, value, _extra = benchlib.CASES["det_short"]
    encrypt = explicit.encrypter("det_short")
    decrypt = explicit.decrypt
    ciphertext = encrypt(value)
    for _ in range(1000):  # warm up
        decrypt(encrypt(value))
    benchlib.settle()
    rss = {"0": benchlib.rss_bytes()}
    done = 0
    start = time.perf_counter()
    for checkpoint in checkpoints:
        while done < checkpoint:
            encrypt(value)
            decrypt(ciphertext)
            done += 2
        benchlib.settle()
        rss[str(checkpoint)] = benchlib.rss_bytes()
    elapsed = time.perf_counter() - start
    explicit.close()
    client.close()
    benchlib.emit(
        {
            "api": "own",
            "versions": benchlib.versions(),
            "results": {"rss": rss, "ops_s": done / elapsed},
        }
    )


if __name__ == "__main__":
    main()
