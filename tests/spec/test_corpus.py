"""The specification's corpus, for the local KMS provider: every ciphertext decrypts to the
corpus value, deterministic encryption reproduces the corpus ciphertext byte for byte, and the
types deterministic encryption must refuse are refused."""

from __future__ import annotations

from typing import Any

import bson
import pytest

from conftest import DETERMINISTIC, RANDOM, SPEC_LOCAL_KEY, load_json, unv, v
from mongocrypt import MongoCryptError
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO

CORPUS = load_json("spec-corpus/corpus.json")
ENCRYPTED = load_json("spec-corpus/corpus-encrypted.json")
# Types Python's bson package cannot hold faithfully (they decode to DBRef and str): checked by
# their BSON type byte instead of by value.
PYTHON_LOSSY = {"dbPointer": 0x0C, "symbol": 0x0E}
LOCAL_ENTRIES = sorted(
    name
    for name, entry in ENCRYPTED.items()
    if isinstance(entry, dict) and entry.get("kms") == "local"
)


@pytest.fixture(scope="module")
def corpus_encrypter() -> ExplicitEncrypter:
    io = InMemoryIO()
    io.keys.append(bson.encode(load_json("spec-corpus/corpus-key-local.json")))
    return ExplicitEncrypter(
        io, MongoCryptOptions({"local": {"key": SPEC_LOCAL_KEY}}, bypass_encryption=True)
    )


def test_the_corpus_has_local_entries() -> None:
    assert len(LOCAL_ENTRIES) > 150


@pytest.mark.requirement("CSE-AUTO-10")
@pytest.mark.parametrize("name", LOCAL_ENTRIES)
def test_prose_6_corpus_entry(corpus_encrypter: ExplicitEncrypter, name: str) -> None:
    entry: dict[str, Any] = ENCRYPTED[name]
    plain: dict[str, Any] = CORPUS[name]
    if not entry["allowed"]:
        # The corpus stores the plaintext for values that must not be encrypted.
        algorithm = DETERMINISTIC if entry["algo"] == "det" else RANDOM
        with pytest.raises(MongoCryptError):
            corpus_encrypter.encrypt(v(plain["value"]), algorithm, key_alt_name="local")
        return
    decrypted = corpus_encrypter.decrypt(v(entry["value"]))  # BSON {"v": value}, type preserved
    if plain["type"] in PYTHON_LOSSY:
        assert decrypted[4] == PYTHON_LOSSY[plain["type"]]  # the element's BSON type byte
    else:
        assert decrypted == bson.encode({"v": plain["value"]})
    if entry["algo"] == "det":
        again = unv(corpus_encrypter.encrypt(decrypted, DETERMINISTIC, key_alt_name="local"))
        assert again == entry["value"]
