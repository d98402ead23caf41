"""Engine-level figures without a server: the explicit fast path against the general context
path, libmongocrypt's crypto against our crypto hooks, and 1 against 2 threads on one handle.

usage: .venv/bin/python bench/engine.py [--seconds S] [--reps N] [--what fastpath,hooks,threads]

Everything runs in this one process, on handles over an in-memory key vault (the key is cached
before measuring, as in steady use), alternating the variants so drift spreads over all of them.
One-thread figures are operations per CPU-second of the measuring thread, so other load on the
machine barely moves them; the thread table is wall-clock ops/s (what scaling means). Prints
Markdown tables; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import bson
from bson.int64 import Int64
from mongocrypt.engine import (
    DataKeyOptions,
    ExplicitEncrypter,
    ExplicitEncryptOptions,
    MongoCrypt,
    MongoCryptOptions,
)
from mongocrypt.io.memory import InMemoryIO

DET = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
LOCAL_KEY = bytes(range(96))
#: case -> (algorithm, value, range options or None)
CASES: dict[str, tuple[str, Any, Any]] = {
    "Deterministic, 20 B string": (DET, "x" * 20, None),
    "Deterministic, 4 KiB string": (DET, "x" * 4096, None),
    "Range, int (0..1e6, sparsity 1)": (
        "Range",
        123_456,
        {"min": 0, "max": 1_000_000, "sparsity": Int64(1)},
    ),
}


class Engine:
    """One handle with a cached data key; ``encrypt``/``decrypt`` do one operation each."""

    def __init__(self, hooks: bool, key_doc: bytes, key_id: bytes) -> None:
        os.environ["MONGOCRYPT_CRYPTO_HOOKS"] = "1" if hooks else "0"  # read at handle creation
        self.crypt = MongoCrypt(
            MongoCryptOptions({"local": {"key": LOCAL_KEY}}, bypass_encryption=True)
        )
        os.environ.pop("MONGOCRYPT_CRYPTO_HOOKS")
        self.key_id = key_id
        with self.crypt.explicit_encryption_context(
            bson.encode({"v": 1}), ExplicitEncryptOptions(DET, key_id=key_id)
        ) as ctx:  # puts the key in the handle's cache
            ctx.add_mongo_operation_result(key_doc)
            ctx.complete_mongo_operation()
            ctx.finish()

    def general(self, value: bytes, opts: ExplicitEncryptOptions) -> bytes:
        with self.crypt.explicit_encryption_context(value, opts) as ctx:
            return ctx.finish()

    def general_decrypt(self, ciphertext: bytes) -> bytes:
        with self.crypt.explicit_decryption_context(ciphertext) as ctx:
            return ctx.finish()

    def ops(self, case: str, fast: bool) -> tuple[Callable[[], Any], Callable[[], Any]]:
        algorithm, value, range_opts = CASES[case]
        doc = bson.encode({"v": value})
        opts = ExplicitEncryptOptions(
            algorithm,
            key_id=self.key_id,
            contention_factor=0 if range_opts else None,
            range_opts=bson.encode(range_opts) if range_opts else None,
        )
        ciphertext = self.general(doc, opts)
        if fast:
            return (
                lambda: self.crypt.explicit_fast(doc, opts),
                lambda: self.crypt.explicit_fast(ciphertext),
            )
        return (lambda: self.general(doc, opts), lambda: self.general_decrypt(ciphertext))


def cpu_rate(op: Callable[[], Any], seconds: float) -> float:
    """Calls of ``op`` per CPU-second of this thread, over ``seconds`` of its CPU time."""
    start, ops = time.thread_time(), 0
    while time.thread_time() - start < seconds:
        for _ in range(8):
            op()
        ops += 8
    return ops / (time.thread_time() - start)


def rate(op: Callable[[], Any], threads: int, seconds: float) -> float:
    """Total wall-clock ops/s of ``threads`` threads each calling ``op`` for ``seconds``."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    stop = [0.0]

    def worker(index: int) -> None:
        barrier.wait()
        ops = 0
        while time.perf_counter() < stop[0]:
            for _ in range(16):
                op()
            ops += 16
        counts[index] = ops

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    start = time.perf_counter()
    stop[0] = start + seconds
    barrier.wait()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def median_rates(
    variants: dict[str, Callable[[], Any]], threads: int, seconds: float, reps: int
) -> dict[str, float]:
    """Median rate per variant (per CPU-second for 1 thread, else wall-clock), the variants
    alternated ``reps`` times."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(reps):
        names = list(variants)
        names = names[rep % len(names) :] + names[: rep % len(names)]  # rotate the order
        for name in names:
            op = variants[name]
            samples[name].append(
                cpu_rate(op, seconds) if threads == 1 else rate(op, threads, seconds)
            )
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--what", default="fastpath,hooks,threads")
    args = parser.parse_args()
    io = InMemoryIO()
    maker = ExplicitEncrypter(
        io, MongoCryptOptions({"local": {"key": LOCAL_KEY}}, bypass_encryption=True)
    )
    key_id = bytes(maker.create_data_key(DataKeyOptions("local")))
    key_doc = io.keys[0]
    what = args.what.split(",")
    if "fastpath" in what:
        engine = Engine(True, key_doc, key_id)
        print("| case | op | fast path (ops/CPU-s) | general path | fast ÷ general |")
        print("|---|---|---:|---:|---:|")
        for case in list(CASES)[:2]:
            fast, general = engine.ops(case, True), engine.ops(case, False)
            for index, op in enumerate(("encrypt", "decrypt")):
                got = median_rates(
                    {"fast": fast[index], "general": general[index]}, 1, args.seconds, args.reps
                )
                print(
                    f"| {case} | {op} | {got['fast']:,.0f} | {got['general']:,.0f} | "
                    f"{got['fast'] / got['general']:.2f}× |"
                )
        print()
    if "hooks" in what or "threads" in what:
        on, off = Engine(True, key_doc, key_id), Engine(False, key_doc, key_id)
    if "hooks" in what:
        print("| case | op | hooks (ops/CPU-s) | no hooks (ops/CPU-s) | hooks ÷ no hooks |")
        print("|---|---|---:|---:|---:|")
        for case in CASES:
            ops_on, ops_off = on.ops(case, True), off.ops(case, True)
            for index, op in enumerate(("encrypt", "decrypt")):
                got = median_rates(
                    {"on": ops_on[index], "off": ops_off[index]}, 1, args.seconds, args.reps
                )
                print(
                    f"| {case} | {op} | {got['on']:,.0f} | {got['off']:,.0f} | "
                    f"{got['on'] / got['off']:.2f}× |"
                )
        print()
    if "threads" in what:
        print("| case | op | crypto | 1 thread | 2 threads | 2 ÷ 1 |")
        print("|---|---|---|---:|---:|---:|")
        for case in CASES:
            for label, engine in (("hooks", on), ("no hooks", off)):
                ops = engine.ops(case, True)
                for index, op in enumerate(("encrypt", "decrypt")):
                    one = rate(ops[index], 1, args.seconds)  # wall-clock, like the 2-thread run
                    two = rate(ops[index], 2, args.seconds)
                    print(
                        f"| {case} | {op} | {label} | {one:,.0f} | {two:,.0f} | {two / one:.2f}× |"
                    )


if __name__ == "__main__":
    main()
