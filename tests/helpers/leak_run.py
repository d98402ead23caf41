"""Memory over many operations: RSS (/proc/self/statm) and tracemalloc before and after N explicit
operations and M automatic decryptions, after a warm-up. Run in a fresh process so nothing else
moves the figures; prints (or writes with ``--json``) one record per phase.

    python tests/helpers/leak_run.py --explicit 20000 --auto 2000      # as test_leaks runs it
    python tests/helpers/leak_run.py --explicit 1000000 --auto 100000  # the long run

Phases:

- ``explicit``: the engine's ExplicitEncrypter over an in-memory key vault, cycling through
  deterministic, random and Indexed encryption and decryption (one call = one operation);
- ``auto``: the pymongocrypt facade's AutoEncrypter (as pymongo drives it) decrypting a server
  reply holding three encrypted values; the key cache expires every millisecond, so key-vault
  fetches happen throughout;
- ``pymongo`` (with ``--uri``): find() through a pymongo MongoClient with automatic decryption
  (mongocrypt's AutoEncryptionOpts), against a real server.

Each phase also checks that the engine's live native objects are back to where they started.
tracemalloc starts before anything is imported, so growth is measured against everything the
process holds in Python, as RSS is.
"""

from __future__ import annotations

import tracemalloc

tracemalloc.start()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import bson  # noqa: E402

from mongocrypt.dropin.synchronous import ExplicitEncrypter  # noqa: E402
from mongocrypt.engine import MongoCryptOptions  # noqa: E402
from mongocrypt.engine.native import live_objects  # noqa: E402
from mongocrypt.io.memory import InMemoryIO  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def traced() -> int:
    return tracemalloc.get_traced_memory()[0]


def measure(
    name: str, total: int, operation: Callable[[int], None], warm_up: int = 2000
) -> dict[str, Any]:
    """Run ``operation`` ``total`` times after a warm-up of a tenth (at least ``warm_up``)."""
    warm_up = max(warm_up, total // 10)
    for i in range(warm_up):
        operation(i)
    gc.collect()
    start_rss, start_traced, start_objects = rss(), traced(), live_objects()
    peak_rss = start_rss
    started = time.monotonic()
    checkpoints = max(1, total // 10)
    for i in range(total):
        operation(i)
        if i % checkpoints == 0:
            peak_rss = max(peak_rss, rss())
    elapsed = time.monotonic() - started
    gc.collect()
    end_rss, end_traced = rss(), traced()
    return {
        "phase": name,
        "operations": total,
        "seconds": round(elapsed, 1),
        "rss_start": start_rss,
        "rss_end": end_rss,
        "rss_peak": max(peak_rss, end_rss),
        "rss_growth_pct": round(100 * (end_rss - start_rss) / start_rss, 2),
        "traced_start": start_traced,
        "traced_end": end_traced,
        "traced_growth_pct": round(100 * (end_traced - start_traced) / start_traced, 2),
        "bytes_per_operation": round((end_traced - start_traced) / total, 3),
        "live_objects_start": start_objects,
        "live_objects_end": live_objects(),
    }


def explicit_phase(total: int) -> dict[str, Any]:
    io = InMemoryIO()
    options = MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    encrypter = ExplicitEncrypter(io, options)
    key_id = bytes(encrypter.create_data_key("local", key_alt_names=["leak"]))
    values = [bson.encode({"v": value}) for value in ("457-55-5462", 42, {"nested": [1.5, "x"]})]
    ciphertexts = [encrypter.encrypt(values[0], DETERMINISTIC, key_id=key_id)]

    def operation(i: int) -> None:
        kind = i % 4
        if kind == 0:
            ciphertexts[0] = encrypter.encrypt(values[0], DETERMINISTIC, key_alt_name="leak")
        elif kind == 1:
            ciphertexts[0] = encrypter.encrypt(values[i % 3], RANDOM, key_id=key_id)
        elif kind == 2:
            ciphertexts[0] = encrypter.encrypt(
                values[1], "Indexed", key_id=key_id, contention_factor=0
            )
        result = encrypter.decrypt(ciphertexts[0])
        assert bson.decode(result)["v"] is not None

    try:
        return measure("explicit", total, operation)
    finally:
        encrypter.close()


def auto_phase(total: int) -> dict[str, Any]:
    from pymongocrypt.mongocrypt import MongoCryptOptions as FacadeOptions
    from pymongocrypt.synchronous.auto_encrypter import AutoEncrypter

    providers = {"local": {"key": os.urandom(96)}}
    io = InMemoryIO()
    explicit = ExplicitEncrypter(io, MongoCryptOptions(providers, bypass_encryption=True))
    key_id = bytes(explicit.create_data_key("local"))
    fields = {
        "ssn": explicit.encrypt(bson.encode({"v": "457-55-5462"}), DETERMINISTIC, key_id=key_id),
        "doc": explicit.encrypt(bson.encode({"v": {"a": [1, 2]}}), RANDOM, key_id=key_id),
        "n": explicit.encrypt(bson.encode({"v": 7}), RANDOM, key_id=key_id),
    }
    document = {name: bson.decode(value)["v"] for name, value in fields.items()}
    reply = bson.encode(
        {"cursor": {"firstBatch": [{"_id": 1, **document}], "id": 0, "ns": "db.c"}, "ok": 1}
    )
    options = FacadeOptions(
        providers, bypass_query_analysis=True, key_expiration_ms=1, crypt_shared_lib_search_paths=[]
    )
    auto = AutoEncrypter(io, options)  # InMemoryIO stands in for pymongo's I/O object

    def operation(_i: int) -> None:
        batch = bson.decode(auto.decrypt(reply))["cursor"]["firstBatch"]
        assert batch[0]["ssn"] == "457-55-5462" and batch[0]["n"] == 7

    try:
        return measure("auto", total, operation)
    finally:
        auto.close()
        explicit.close()


def pymongo_phase(total: int, uri: str) -> dict[str, Any]:
    import pymongo

    from mongocrypt import Algorithm, ClientEncryption, EncryptOpts
    from mongocrypt.auto_encryption import AutoEncryptionOpts

    providers = {"local": {"key": os.urandom(96)}}
    name = f"leak_{os.getpid()}"
    with (
        pymongo.MongoClient[Any](uri) as client,
        ClientEncryption(providers, f"{name}.keys", client) as ce,
    ):
        key_id = ce.create_data_key("local")
        secret = ce.encrypt("457-55-5462", EncryptOpts(Algorithm.DETERMINISTIC, key_id=key_id))
        client[name].people.insert_one({"_id": 1, "ssn": secret})
    opts = AutoEncryptionOpts(providers, f"{name}.keys", bypass_auto_encryption=True)
    reader: Any = pymongo.MongoClient(uri, auto_encryption_opts=opts)
    people = reader[name].people

    def operation(_i: int) -> None:
        assert people.find_one({"_id": 1})["ssn"] == "457-55-5462"

    try:
        return measure("pymongo", total, operation, warm_up=300)
    finally:
        reader.drop_database(name)
        reader.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explicit", type=int, default=20_000)
    parser.add_argument("--auto", type=int, default=2_000)
    parser.add_argument("--pymongo", type=int, default=0, help="operations (needs --uri)")
    parser.add_argument("--uri", help="a MongoDB server for the pymongo phase")
    parser.add_argument("--limit", type=float, default=5.0, help="allowed growth, percent")
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    records = []
    if args.explicit:
        records.append(explicit_phase(args.explicit))
    if args.auto:
        records.append(auto_phase(args.auto))
    if args.pymongo and args.uri:
        records.append(pymongo_phase(args.pymongo, args.uri))
    failed = False
    for r in records:
        ok = (
            r["rss_growth_pct"] < args.limit
            and r["traced_growth_pct"] < args.limit
            and r["live_objects_end"] == r["live_objects_start"]
        )
        failed |= not ok
        print(
            f"{r['phase']:8} {r['operations']:>9} ops {r['seconds']:>7.1f} s  "
            f"RSS {r['rss_start'] / 2**20:6.1f} -> {r['rss_end'] / 2**20:6.1f} MiB "
            f"({r['rss_growth_pct']:+.2f}%)  traced {r['traced_start'] / 2**20:6.1f} -> "
            f"{r['traced_end'] / 2**20:6.1f} MiB ({r['traced_growth_pct']:+.2f}%, "
            f"{r['bytes_per_operation']:+.3f} B/op)  live {r['live_objects_end']}"
            f"  {'ok' if ok else 'GROWTH'}"
        )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(records, file, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
