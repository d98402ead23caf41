"""Fuzz explicit decryption: hostile ciphertexts (BSON binary subtype 6) and hostile BSON.

Input: the first byte picks the entry point, the rest is the payload.

- 0: the engine's ``ExplicitEncrypter.decrypt`` of ``{"v": Binary(payload, 6)}``;
- 1: the engine's ``ExplicitEncrypter.decrypt`` of the payload as the whole document (arbitrary,
  mostly invalid, BSON);
- 2: ``mongocrypt.ClientEncryption.decrypt(Binary(payload, 6))`` over an in-memory key vault;
- 3: a ciphertext whose header names the key vault's real key: blob subtype from the payload's
  first byte, the key id, then the rest (gets past the key lookup into payload parsing and HMAC).

The key vault holds the specification corpus' local key, so corpus ciphertexts (and mutations of
them) reach decryption proper. Known bug (reported, xfail-tested in tests/fuzz/test_fuzz.py): with
libmongocrypt 1.13 (the fallback pin) malformed FLE2 indexed ciphertexts abort the process; on
that library such inputs are counted and skipped unless ``FUZZ_STRICT_KNOWN_BUGS=1``.

Run: ``python tests/fuzz/fuzz_explicit_decrypt.py -runs=N [corpus dirs]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    KnownBugs,
    aborts_old_fle2_parser,
    check_live_contexts,
    instrumented,
    local_explicit_targets,
    local_key_document,
    run,
    typed_errors,
)

with instrumented():
    import bson
    from bson import Binary

    from mongocrypt.engine.native import live_objects

KEY = local_key_document()
KEY_ID = bytes(KEY["_id"])
ENGINE, CLIENT_ENCRYPTION = local_explicit_targets(KEY)
TYPED = typed_errors()
KNOWN = KnownBugs("fle2_parse_abort_1_13")
BASELINE = live_objects()["contexts"]


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    mode, payload = data[0] % 4, data[1:]
    if mode == 3:
        payload = payload[:1] + KEY_ID + payload[1:]
    document = payload if mode == 1 else bson.encode({"v": Binary(payload, 6)})
    if aborts_old_fle2_parser(document) and KNOWN.hit("fle2_parse_abort_1_13"):
        return
    try:
        if mode == 2:
            CLIENT_ENCRYPTION.decrypt(Binary(payload, 6))
        else:
            ENGINE.decrypt(document)
    except TYPED:
        pass
    check_live_contexts(BASELINE)


if __name__ == "__main__":
    run(TestOneInput)
