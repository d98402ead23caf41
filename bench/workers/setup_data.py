"""Set-up shared by every variant (run once, in the dev venv, through pymongo's ClientEncryption):
the data key the explicit benchmarks use, and the collections the auto-decrypt benchmark reads:
--docs documents with N explicitly encrypted fields (Random, 20-byte strings) for each N in
--fields, in database --database as collections docs<N>.

usage: setup_data.py --docs 1000 --fields 10,100 --database bench
prints: {"key_id": "<uuid hex>", "collections": ["bench.docs10", ...]}
"""

from __future__ import annotations

import argparse

import benchlib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--fields", default="10,100")
    parser.add_argument("--database", default="bench")
    args = parser.parse_args()

    from pymongo.encryption import ClientEncryption

    client = benchlib.mongo_client()
    ce = ClientEncryption(
        benchlib.kms_providers(), benchlib.key_vault(), client, benchlib.CODEC_OPTIONS
    )
    key_id = ce.create_data_key("local")
    collections = []
    for fields in (int(f) for f in args.fields.split(",")):
        collection = client[args.database][f"docs{fields}"]
        collection.drop()
        batch = []
        for i in range(args.docs):
            doc = {"_id": i}
            for f in range(fields):
                doc[f"f{f:03d}"] = ce.encrypt(
                    f"value-{i:06d}-{f:03d}-abc", benchlib.RANDOM, key_id=key_id
                )
            batch.append(doc)
            if len(batch) == 100:
                collection.insert_many(batch)
                batch = []
        if batch:
            collection.insert_many(batch)
        collections.append(f"{args.database}.docs{fields}")
    ce.close()
    client.close()
    benchlib.emit({"key_id": key_id.as_uuid().hex, "collections": collections})


if __name__ == "__main__":
    main()
