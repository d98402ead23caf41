"""What every benchmark worker shares. Runs under both interpreters (the dev venv with mongocrypt,
and bench/.venv-incumbent with the real pymongocrypt), so it imports only the standard library,
pymongo and bson at module level.

The runner (bench/run.py) passes the set-up through the environment:
- ``BENCH_URI``: the SecantusDB server;
- ``BENCH_MASTER_KEY``: the local KMS provider's 96-byte master key, hex;
- ``BENCH_KEY_VAULT``: the key vault namespace;
- ``BENCH_KEY_ID``: the data key every explicit benchmark uses (UUID, hex);
- ``BENCH_API``: ``pymongo`` (pymongo's ClientEncryption, the drop-in path) or ``own``
  (``mongocrypt.ClientEncryption``, only in the dev venv).

Each worker prints one JSON object on stdout and nothing else.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import uuid
from typing import Any, Callable

from bson import Binary
from bson.binary import STANDARD
from bson.codec_options import CodecOptions

CODEC_OPTIONS = CodecOptions(uuid_representation=STANDARD)
SHORT = "457-55-5462-abcdefgh"  # 20 bytes, as the C loop
LONG = ("0123456789abcdef" * 256)[:4096]  # 4 KiB

DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"

# name -> (algorithm, value, extra options). Range options must match between both APIs.
CASES: dict[str, tuple[str, Any, dict[str, Any]]] = {
    "det_short": (DETERMINISTIC, SHORT, {}),
    "det_4k": (DETERMINISTIC, LONG, {}),
    "rnd_short": (RANDOM, SHORT, {}),
    "rnd_4k": (RANDOM, LONG, {}),
    "indexed": ("Indexed", SHORT, {"contention_factor": 0}),
    "range_int": (
        "Range",
        123456,
        {"contention_factor": 0, "range": {"min": 0, "max": 1_000_000, "sparsity": 1}},
    ),
    "range_double": (
        "Range",
        3.25,
        {
            "contention_factor": 0,
            "range": {"min": 0.0, "max": 1000.0, "precision": 2, "sparsity": 1},
        },
    ),
}


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run the workers through bench/run.py")
    return value


def kms_providers() -> dict[str, Any]:
    return {"local": {"key": bytes.fromhex(env("BENCH_MASTER_KEY"))}}


def key_vault() -> str:
    return env("BENCH_KEY_VAULT")


def key_id() -> Binary:
    return Binary.from_uuid(uuid.UUID(hex=env("BENCH_KEY_ID")))


def api() -> str:
    return os.environ.get("BENCH_API", "pymongo")


def mongo_client(**kwargs: Any) -> Any:
    from pymongo import MongoClient

    return MongoClient(env("BENCH_URI"), **kwargs)


def measure(op: Callable[[], Any], seconds: float, warmup: float) -> float:
    """Operations per second of ``op`` over ``seconds`` of wall time, after ``warmup`` seconds."""
    perf = time.perf_counter
    end = perf() + warmup
    calls = 0
    while perf() < end or calls == 0:
        op()
        calls += 1
    # Check the clock every ~1/50 of the measured time, estimated from the warm-up.
    batch = max(1, int(calls / max(warmup, 1e-3) * seconds / 50))
    ops = 0
    start = perf()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            op()
        ops += batch
        now = perf()
        if now >= deadline:
            return ops / (now - start)


def rss_bytes() -> int:
    """The process's resident set size now (not its peak)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle() -> None:
    gc.collect()


def versions() -> dict[str, Any]:
    """What this interpreter runs: the pymongocrypt it imports and the libmongocrypt under it."""
    import cffi
    import pymongo
    import pymongocrypt

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "pymongo": pymongo.version,
        "pymongocrypt": pymongocrypt.__version__,
        "libmongocrypt": pymongocrypt.libmongocrypt_version(),
        "cffi": cffi.__version__,
        "pymongocrypt_lib_env": os.environ.get("PYMONGOCRYPT_LIB"),
    }
    try:
        import mongocrypt

        info["mongocrypt"] = mongocrypt.__version__
        info["native_crypto"] = bool(mongocrypt.is_crypto_available())
    except ImportError:
        from pymongocrypt.binding import lib

        info["native_crypto"] = bool(lib.mongocrypt_is_crypto_available())
    return info


class Explicit:
    """Explicit encryption through pymongo's ClientEncryption or mongocrypt's own."""

    def __init__(self, client: Any, which: str = "") -> None:
        self.api = which or api()
        self.key_id = key_id()
        if self.api == "own":
            import mongocrypt

            self.mc = mongocrypt
            self.ce = mongocrypt.ClientEncryption(
                kms_providers(), key_vault(), client, CODEC_OPTIONS
            )
        else:
            from pymongo.encryption import ClientEncryption

            self.ce = ClientEncryption(kms_providers(), key_vault(), client, CODEC_OPTIONS)

    def encrypter(self, case: str) -> Callable[[Any], Any]:
        """A one-argument function encrypting a value as ``case`` says."""
        algorithm, _value, extra = CASES[case]
        ce = self.ce
        range_doc = extra.get("range")
        contention = extra.get("contention_factor")
        if self.api == "own":
            mc = self.mc
            opts = mc.EncryptOpts(
                algorithm,
                key_id=self.key_id,
                contention_factor=contention,
                range_opts=None if range_doc is None else mc.RangeOpts(**range_doc),
            )
            return lambda value: ce.encrypt(value, opts)
        from pymongo.encryption_options import RangeOpts

        kwargs: dict[str, Any] = {"key_id": self.key_id}
        if contention is not None:
            kwargs["contention_factor"] = contention
        if range_doc is not None:
            kwargs["range_opts"] = RangeOpts(**range_doc)
        return lambda value: ce.encrypt(value, algorithm, **kwargs)

    def decrypt(self, ciphertext: Binary) -> Any:
        return self.ce.decrypt(ciphertext)

    def close(self) -> None:
        self.ce.close()


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
