"""What every fuzz harness shares: the typed-error property, a fixed local key, an in-memory key
vault pymongo's and mongocrypt's ``ClientEncryption`` can use, and the atheris entry point.

The harnesses import mongocrypt inside :func:`instrumented` so atheris instruments mongocrypt's
(and the pymongocrypt facade's) Python modules for coverage; the native libmongocrypt is not
instrumented (it is a prebuilt static archive), so structured inputs (real ciphertexts, real key
ids, real KMS replies in the corpus) are what carry the fuzzer deep into it.

Property checked on every input: the call returns, or raises one of the project's typed errors
(:data:`TYPED_ERRORS`, plus ``bson.errors.InvalidBSON`` where the input is not BSON); anything
else propagates out of ``TestOneInput`` and atheris reports it as a crash. After every input the
native context counter must be back at its baseline (no context leaked on any path).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPUS = Path(__file__).resolve().parent / "corpus"

#: The local master key of the specification's corpus (its key document is wrapped with it).
SPEC_LOCAL_KEY = base64.b64decode(
    "Mng0NCt4ZHVUYUJCa1kxNkVyNUR1QURhZ2h2UzR2d2RrZzh0cFBwM3R6NmdWMDFBMUN3YkQ5aXRRMkhGRGdQV09wOGVN"
    "YUMxT2k3NjZKelhaQmRCZGJkTXVyZG9uSjFk"
)
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
RANDOM = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
AWS_MASTER_KEY = {
    "region": "us-east-1",
    "key": "arn:aws:kms:us-east-1:579766882180:key/89fcc2c4-08b0-4bd9-9f25-e30687b580d0",
}
AWS_CREDENTIALS = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "fuzz-secret-example"}


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """Import mongocrypt under atheris' coverage instrumentation (a no-op without atheris)."""
    try:
        import atheris
    except ImportError:  # replaying inputs without atheris installed
        yield
        return
    with atheris.instrument_imports(include=["mongocrypt", "pymongocrypt"]):
        yield


def json_data(relative: str) -> Any:
    from bson import json_util

    return json_util.loads((DATA / relative).read_text())


def local_key_document() -> dict[str, Any]:
    """The spec corpus' local data key: id ``LOCALAAAAAAAAAAAAAAAAA==``, alt name ``local``."""
    return json_data("spec-corpus/corpus-key-local.json")  # type: ignore[no-any-return]


def local_explicit_targets(key: dict[str, Any]) -> tuple[Any, Any]:
    """The engine's ``ExplicitEncrypter`` and a ``ClientEncryption``, both over ``key`` alone.

    Call after the harness imported mongocrypt under :func:`instrumented`.
    """
    import bson

    from mongocrypt import ClientEncryption
    from mongocrypt.dropin.synchronous import ExplicitEncrypter
    from mongocrypt.engine import MongoCryptOptions
    from mongocrypt.io.memory import InMemoryIO

    providers = {"local": {"key": SPEC_LOCAL_KEY}}
    io = InMemoryIO()
    io.keys.append(bson.encode(key))
    engine = ExplicitEncrypter(io, MongoCryptOptions(providers, bypass_encryption=True))
    client = ClientEncryption(providers, "keyvault.datakeys", MongoClient([bson.encode(key)]))
    return engine, client


def typed_errors() -> tuple[type[BaseException], ...]:
    """The exceptions an entry point may raise for hostile input."""
    from mongocrypt.errors import MongoCryptError

    return (MongoCryptError, TypeError, ValueError)


#: libmongocrypt 1.13 (the fallback pin) aborts the process on some hostile inputs that newer
#: versions reject with an error (reported; tests/fuzz/test_fuzz.py has their regression tests).
#: A BSON binary subtype 6 whose payload starts with an FLE2 *indexed* V2 blob subtype
#: (14 equality, 15 range, 17 text): 1.13 aborts in mc_FLE2TagAndEncryptedMetadataBlock_cleanup
#: on many malformed ones. Over-approximated as these two bytes anywhere in the BSON.
FLE2_V2_PAIRS = (b"\x06\x0e", b"\x06\x0f", b"\x06\x11")


def aborts_old_fle2_parser(document: bytes) -> bool:
    """Whether ``document`` may hold a ciphertext that aborts libmongocrypt 1.13's parser."""
    from mongocrypt.engine import libmongocrypt_version

    if not libmongocrypt_version().startswith("1.13."):
        return False
    return any(pair in document for pair in FLE2_V2_PAIRS)


def check_live_contexts(baseline: int) -> None:
    """:raises AssertionError: if a native context outlived its operation."""
    from mongocrypt.engine.native import live_objects

    contexts = live_objects()["contexts"]
    if contexts != baseline:
        raise AssertionError(f"{contexts - baseline} libmongocrypt context(s) leaked by this input")


class KnownBugs:
    """Counts inputs that hit an already reported bug (skipped instead of reported as crashes).

    libFuzzer ends the process from C, so Python's ``atexit`` never runs: the counts are written
    to ``$FUZZ_STATS_FILE`` (JSON) as they change, for ``tests/fuzz/run.py`` to report.
    """

    def __init__(self, *names: str) -> None:
        self.counts = dict.fromkeys(names, 0)
        #: With ``FUZZ_STRICT_KNOWN_BUGS=1`` known bugs are reported like any other crash.
        self.strict = os.environ.get("FUZZ_STRICT_KNOWN_BUGS") == "1"
        self._file = os.environ.get("FUZZ_STATS_FILE")

    def hit(self, name: str) -> bool:
        """Count one hit; returns whether to skip the input (False in strict mode)."""
        if self.strict:
            return False
        self.counts[name] += 1
        if self._file:
            with open(self._file, "w") as file:
                json.dump(self.counts, file)
        return True


# -- an in-memory key vault behind a pymongo-shaped client ------------------------------------


class _Cursor:
    def __init__(self, documents: list[Any]) -> None:
        self._documents = documents

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        return iter(self._documents)

    def close(self) -> None:
        pass


class _Database:
    def __init__(self, client: MongoClient, name: str) -> None:
        self.client, self.name = client, name

    def __getitem__(self, name: str) -> FakeCollection:
        return self.client.collection(self.name, name)


class FakeCollection:
    """The part of ``pymongo.collection.Collection`` the key-vault I/O uses (find, find_one,
    insert_one)."""

    def __init__(self, database: _Database, name: str, keys: list[bytes]) -> None:
        self.database, self.name, self.keys = database, name, keys

    def with_options(self, **_options: Any) -> FakeCollection:
        return self

    def find(self, filter: Any = None, *args: Any, **kwargs: Any) -> _Cursor:
        import bson
        from bson.raw_bson import RawBSONDocument

        from mongocrypt.io.memory import key_filter_matches

        query = bson.decode(filter.raw) if isinstance(filter, RawBSONDocument) else filter or {}
        matched = [
            RawBSONDocument(key) for key in self.keys if key_filter_matches(query, bson.decode(key))
        ]
        return _Cursor(matched)

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        return next(iter(self.find(filter)), None)

    def insert_one(self, document: Any, *args: Any, **kwargs: Any) -> Any:
        import bson

        self.keys.append(document.raw if hasattr(document, "raw") else bson.encode(document))
        return None


class MongoClient:
    """An in-memory stand-in for ``pymongo.MongoClient`` holding one key vault (named so, as
    pymongo's ``ClientEncryption`` accepts "mocked and subclassed types" by class name)."""

    def __init__(self, keys: Optional[list[bytes]] = None) -> None:
        self.keys: list[bytes] = list(keys or [])

    def __getitem__(self, name: str) -> _Database:
        return _Database(self, name)

    def collection(self, database: str, name: str) -> FakeCollection:
        return FakeCollection(_Database(self, database), name, self.keys)


# -- input helpers -------------------------------------------------------------------------------


class Reader:
    """Consumes a fuzz input front to back; every read is total (short input gives zeros)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def byte(self) -> int:
        if self.offset >= len(self.data):
            return 0
        self.offset += 1
        return self.data[self.offset - 1]

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk

    def int(self, size: int = 8, signed: bool = True) -> int:
        return int.from_bytes(self.take(size).ljust(size, b"\0"), "little", signed=signed)

    def text(self, limit: int = 32) -> str:
        return self.take(self.byte() % (limit + 1)).decode("utf-8", "replace")

    def rest(self) -> bytes:
        chunk = self.data[self.offset :]
        self.offset = len(self.data)
        return chunk


def bson_value(reader: Reader, depth: int = 0) -> Any:
    """A BSON-encodable value of a type the fuzzer picks (the types explicit encryption meets)."""
    import datetime

    from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

    kind = reader.byte() % 17
    if kind == 0:
        return reader.int(4)
    if kind == 1:
        return Int64(reader.int(8))
    if kind == 2:
        import struct

        return struct.unpack("<d", reader.take(8).ljust(8, b"\0"))[0]
    if kind == 3:
        try:
            return Decimal128(reader.text(40) or "0")
        except Exception:  # not a decimal literal: a valid one instead
            return Decimal128(str(reader.int(8)))
    if kind == 4:
        return reader.text()
    if kind == 5:
        return Binary(reader.take(reader.byte() % 64), reader.byte())
    if kind == 6:
        return bool(reader.byte() & 1)
    if kind == 7:
        return datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=reader.int(5))
    if kind == 8:
        return None
    if kind == 9:
        return ObjectId(reader.take(12).ljust(12, b"\0"))
    if kind == 10:
        return Regex(reader.text(16), "imsx"[: reader.byte() % 5])
    if kind == 11:
        return Code(reader.text(16))
    if kind == 12:
        return Timestamp(reader.int(4, False), reader.int(4, False))
    if kind == 13:
        return MinKey() if reader.byte() & 1 else MaxKey()
    if kind == 14 and depth < 3:
        return [bson_value(reader, depth + 1) for _ in range(reader.byte() % 4)]
    if kind == 15 and depth < 3:
        return {
            reader.text(8) or "k": bson_value(reader, depth + 1) for _ in range(reader.byte() % 4)
        }
    return reader.int(4)


def encode_or_none(document: Mapping[str, Any]) -> Optional[bytes]:
    """BSON of ``document``, or None when bson refuses it (then the input proves nothing)."""
    import bson

    try:
        return bson.encode(document)
    except (bson.errors.InvalidDocument, bson.errors.InvalidStringData, OverflowError, ValueError):
        return None


def run(test_one_input: Callable[[bytes], None]) -> None:
    """The atheris entry point: libFuzzer flags and corpus directories come from ``sys.argv``."""
    import atheris

    argv = list(sys.argv)
    # libFuzzer re-runs argv[0] for -merge=1 (and -fork): tests/fuzz/run.py points it at an
    # executable wrapper, as a .py file is not one.
    argv[0] = os.environ.get("FUZZ_ARGV0", argv[0])
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
