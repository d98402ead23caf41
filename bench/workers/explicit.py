"""Explicit encryption and decryption, one case after the other: ops/s of each.

usage: explicit.py --cases det_short,det_4k,... --seconds S --warmup W
(run by bench/run.py with the environment benchlib describes)
"""

from __future__ import annotations

import argparse
from functools import partial

import benchlib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default=",".join(benchlib.CASES))
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.2)
    args = parser.parse_args()

    client = benchlib.mongo_client()
    explicit = benchlib.Explicit(client)
    results = {}
    for case in args.cases.split(","):
        _algorithm, value, _extra = benchlib.CASES[case]
        encrypt = explicit.encrypter(case)
        ciphertext = encrypt(value)  # the first call also fetches the key from the key vault
        if explicit.decrypt(ciphertext) != value:
            raise SystemExit(f"{case}: decrypt(encrypt(x)) != x")
        results[case] = {
            "encrypt": benchlib.measure(partial(encrypt, value), args.seconds, args.warmup),
            "decrypt": benchlib.measure(
                partial(explicit.decrypt, ciphertext), args.seconds, args.warmup
            ),
            "ciphertext_bytes": len(ciphertext),
        }
    explicit.close()
    client.close()
    benchlib.emit({"api": explicit.api, "versions": benchlib.versions(), "results": results})


if __name__ == "__main__":
    main()
