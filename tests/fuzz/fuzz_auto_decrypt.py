"""Fuzz automatic decryption of server replies, and of the key documents a server returns.

Input: the first byte picks the entry point, the rest is the payload.

- 0: the engine's ``AutoEncrypter.decrypt`` of the payload as a whole server reply (arbitrary,
  mostly invalid, BSON);
- 1: a reply built from the payload: nested documents and arrays whose values include
  ciphertexts naming the key vault's real key (blob subtype, key id, fuzzed body);
- 2: ``MongoCrypt.decryption_context`` on a fresh handle (empty key cache), driven by the state
  machine, with the payload split into the reply (2-byte length prefix) and the key document the
  key vault returns: a hostile key vault as well as a hostile reply.

The key vault holds the specification corpus' local key. Run:
``python tests/fuzz/fuzz_auto_decrypt.py -runs=N [corpus dirs]``.

Found here and fixed: an empty reply buffer aborted the process (e6cf0b9). Known bug (reported,
xfail-tested in tests/fuzz/test_fuzz.py): with libmongocrypt 1.13 (the fallback pin) malformed FLE2
indexed ciphertexts abort the process; on that library such inputs are counted in :data:`KNOWN`
and skipped, unless ``FUZZ_STRICT_KNOWN_BUGS=1``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SPEC_LOCAL_KEY,
    KnownBugs,
    Reader,
    aborts_old_fle2_parser,
    bson_value,
    check_live_contexts,
    encode_or_none,
    instrumented,
    local_key_document,
    run,
    typed_errors,
)

with instrumented():
    import bson
    from bson import Binary

    from mongocrypt.engine import AutoEncrypter, MongoCrypt, MongoCryptOptions, run_state_machine
    from mongocrypt.engine.native import live_objects
    from mongocrypt.io.memory import InMemoryIO

KEY = local_key_document()
KEY_ID = bytes(KEY["_id"])
KEY_BSON = bson.encode(KEY)
PROVIDERS = {"local": {"key": SPEC_LOCAL_KEY}}
OPTIONS = MongoCryptOptions(PROVIDERS, bypass_query_analysis=True, crypt_shared_lib_search_paths=[])
_io = InMemoryIO()
_io.keys.append(KEY_BSON)
ENGINE = AutoEncrypter(_io, OPTIONS)
TYPED = typed_errors()
BASELINE = live_objects()["contexts"]
KNOWN = KnownBugs("fle2_parse_abort_1_13")


class HostileKeyVault(InMemoryIO):
    """Returns the given key document for every key-vault query."""

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self.key = key

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        yield self.key


def ciphertext(reader: Reader) -> Binary:
    subtype = reader.byte()
    return Binary(bytes([subtype]) + KEY_ID + reader.take(reader.byte()), 6)  # type: ignore[no-any-return]  # bson's Binary returns typing.Self, which mypy's Python 3.10 lacks


def reply_value(reader: Reader, depth: int) -> Any:
    kind = reader.byte() % 6
    if kind < 3:
        return ciphertext(reader)
    if kind == 3 and depth < 4:
        return [reply_value(reader, depth + 1) for _ in range(reader.byte() % 4)]
    if kind == 4 and depth < 4:
        return {
            reader.text(6) or "f": reply_value(reader, depth + 1) for _ in range(reader.byte() % 4)
        }
    return bson_value(reader)


def built_reply(reader: Reader) -> bytes:
    batch = [{"_id": i, "x": reply_value(reader, 0)} for i in range(reader.byte() % 3 + 1)]
    document = {"cursor": {"firstBatch": batch, "id": 0, "ns": "db.coll"}, "ok": 1.0}
    return encode_or_none(document) or b""


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    mode, payload = data[0] % 3, data[1:]
    key = b""
    if mode == 1:
        payload = built_reply(Reader(payload))
    elif mode == 2:
        length = int.from_bytes(payload[:2], "little")
        payload, key = payload[2 : 2 + length], payload[2 + length :]
    if aborts_old_fle2_parser(payload) and KNOWN.hit("fle2_parse_abort_1_13"):
        return
    try:
        if mode < 2:
            ENGINE.decrypt(payload)
        else:
            with MongoCrypt(OPTIONS) as crypt, crypt.decryption_context(payload) as ctx:
                run_state_machine(ctx, HostileKeyVault(key))
    except TYPED:
        pass
    check_live_contexts(BASELINE)


if __name__ == "__main__":
    run(TestOneInput)
