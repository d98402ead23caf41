"""Data key creation and rewrap (local KMS provider): keys/s of creating --count keys one by one
into a fresh key vault collection, then of rewrapping all of them in one rewrap_many_data_key.

usage: datakeys.py --count N --namespace db.coll
"""

from __future__ import annotations

import argparse
import os
import time

import benchlib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()

    client = benchlib.mongo_client()
    database, name = args.namespace.split(".", 1)
    client[database].drop_collection(name)
    # A second local master key to rewrap to: the rewrap really re-encrypts every key.
    providers = {**benchlib.kms_providers(), "local:new": {"key": os.urandom(96)}}
    own = benchlib.api() == "own"
    if own:
        import mongocrypt

        ce = mongocrypt.ClientEncryption(providers, args.namespace, client, benchlib.CODEC_OPTIONS)
        ce.create_data_key("local")  # warm up
        client[database][name].delete_many({})
        rewrap = lambda: ce.rewrap_many_data_key(  # noqa: E731
            {}, mongocrypt.RewrapManyDataKeyOpts("local:new")
        )
    else:
        from pymongo.encryption import ClientEncryption

        ce = ClientEncryption(providers, args.namespace, client, benchlib.CODEC_OPTIONS)
        ce.create_data_key("local")  # warm up
        client[database][name].delete_many({})
        rewrap = lambda: ce.rewrap_many_data_key({}, provider="local:new")  # noqa: E731

    start = time.perf_counter()
    for _ in range(args.count):
        ce.create_data_key("local")
    created = time.perf_counter() - start

    start = time.perf_counter()
    result = rewrap()
    rewrapped = time.perf_counter() - start
    modified = result.bulk_write_result.modified_count
    if modified != args.count:
        raise SystemExit(f"rewrap modified {modified} keys, not {args.count}")

    ce.close()
    client[database].drop_collection(name)
    client.close()
    benchlib.emit(
        {
            "api": benchlib.api(),
            "versions": benchlib.versions(),
            "results": {
                "create": args.count / created,
                "rewrap": args.count / rewrapped,
                "count": args.count,
            },
        }
    )


if __name__ == "__main__":
    main()
