"""Automatic decryption of find results: docs/s of reading whole collections of explicitly
encrypted documents through a MongoClient with auto_encryption_opts (bypass_auto_encryption=True),
or, with --plain, through a plain MongoClient (no decryption: the limit).

usage: autodecrypt.py --collections bench.docs10,bench.docs100 --seconds S [--plain]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import benchlib


def timed_finds(collection: Any, seconds: float) -> tuple[int, int, float, float]:
    """Whole-collection finds for at least ``seconds``: (documents, finds, elapsed seconds, this
    process's CPU seconds: the client's own cost, which the server's share of the 2 cores and
    other load on the machine move far less than the wall time)."""
    finds = docs = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while True:
        docs += len(list(collection.find()))
        finds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return docs, finds, elapsed, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", required=True)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args()

    if args.plain:
        client = benchlib.mongo_client()
    else:
        from pymongo.encryption_options import AutoEncryptionOpts

        opts = AutoEncryptionOpts(
            benchlib.kms_providers(), benchlib.key_vault(), bypass_auto_encryption=True
        )
        client = benchlib.mongo_client(auto_encryption_opts=opts)
    results = {}
    for namespace in args.collections.split(","):
        database, name = namespace.split(".", 1)
        collection = client[database][name]
        sample = collection.find_one()  # warm up: connection, key cache
        list(collection.find().limit(50))
        if not args.plain and not isinstance(sample["f000"], str):
            raise SystemExit(f"{namespace}: f000 was not decrypted: {sample['f000']!r}")
        docs, finds, elapsed, cpu = timed_finds(collection, args.seconds)
        results[namespace] = {
            "docs_s": docs / elapsed,
            "docs_cpu_s": docs / cpu,
            "finds": finds,
            "docs": docs // finds,
        }
    client.close()
    benchlib.emit(
        {
            "api": "plain" if args.plain else "auto",
            "versions": benchlib.versions(),
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
