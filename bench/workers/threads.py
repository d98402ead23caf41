"""Thread scaling: explicit encryption of each case by 1 thread, then by 2 threads sharing one
ClientEncryption; total ops/s of each.

usage: threads.py --cases det_short,det_4k,range_int --seconds S --warmup W
"""

from __future__ import annotations

import argparse
import threading
import time
from functools import partial

import benchlib


def run_threads(encrypt, value, threads: int, seconds: float) -> float:
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    ends = [0.0] * threads
    deadline = [0.0]

    def worker(index: int) -> None:
        perf = time.perf_counter
        barrier.wait()
        stop = deadline[0]
        ops = 0
        while True:
            for _ in range(32):
                encrypt(value)
            ops += 32
            now = perf()
            if now >= stop:
                break
        counts[index] = ops
        ends[index] = now

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for thread in pool:
        thread.join()
    return sum(counts) / (max(ends) - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="det_short")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.2)
    args = parser.parse_args()

    client = benchlib.mongo_client()
    explicit = benchlib.Explicit(client)
    results = {}
    for case in args.cases.split(","):
        _algorithm, value, _extra = benchlib.CASES[case]
        encrypt = explicit.encrypter(case)
        benchlib.measure(partial(encrypt, value), args.warmup, 0.05)  # warm up the key cache
        results[case] = {str(n): run_threads(encrypt, value, n, args.seconds) for n in (1, 2)}
    explicit.close()
    client.close()
    benchlib.emit({"api": explicit.api, "versions": benchlib.versions(), "results": results})


if __name__ == "__main__":
    main()
