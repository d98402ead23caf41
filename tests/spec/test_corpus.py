"""The specification's corpus, for the local KMS provider: every ciphertext decrypts to the
corpus value, deterministic encryption reproduces the corpus ciphertext byte for byte, and the
types deterministic encryption must refuse are refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import bson
import pymongo
import pytest
from bson import Binary
from pymongo.write_concern import WriteConcern

from conftest import (
    DETERMINISTIC,
    RANDOM,
    SPEC_LOCAL_KEY,
    load_json,
    recorded_aws_plaintext,
    unv,
    v,
)
from mongocrypt import Algorithm, ClientEncryption, EncryptOpts, MongoCryptError
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO
from mongocrypt.options import AlgorithmName

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


# --- Steps 1-9 with automatic encryption (the local schema pass), for the local and aws keys ----
# The aws corpus key's material is known (libmongocrypt's recorded Decrypt reply), so it is
# rewrapped by the cloud KMS mock the spec's AWS host is redirected to. The azure, gcp and kmip
# keys were wrapped by the real services: their fields are left out. So are the dbPointer and
# symbol fields, which Python's bson cannot hold (the explicit test above checks them as bytes).
RUN_KMS = ("local", "aws")
KEY_IDS = {
    "local": Binary(base64.b64decode("LOCALAAAAAAAAAAAAAAAAA=="), 4),
    "aws": Binary(base64.b64decode("AWSAAAAAAAAAAAAAAAAAAA=="), 4),
}


def _auto_fields() -> list[str]:
    return [
        name
        for name, entry in CORPUS.items()
        if isinstance(entry, dict) and entry["kms"] in RUN_KMS and entry["type"] not in PYTHON_LOSSY
    ]


@pytest.fixture
def corpus_clients(
    mongodb_uri: str,
    cloud_kms: Any,
    spec_kms_providers: Any,
    spec_kms_tls_options: Any,
    redirect_kms: Any,
) -> Iterator[tuple[Any, Any, ClientEncryption]]:
    """Steps 1-4: ``client``, ``client_encrypted`` (corpus-schema.json as its schema_map) and
    ``client_encryption``, the local and aws corpus keys in keyvault.datakeys."""
    providers = {kms: spec_kms_providers[kms] for kms in RUN_KMS}
    aws_key = load_json("spec-corpus/corpus-key-aws.json")
    aws_key["keyMaterial"] = Binary(cloud_kms.wrap(recorded_aws_plaintext()))
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        client.db.drop_collection("coll")
        client.keyvault.drop_collection("datakeys")
        client.keyvault.datakeys.with_options(write_concern=WriteConcern(w="majority")).insert_many(
            [load_json("spec-corpus/corpus-key-local.json"), aws_key]
        )
        opts = AutoEncryptionOpts(
            providers,
            "keyvault.datakeys",
            schema_map={"db.coll": load_json("spec-corpus/corpus-schema.json")},
            kms_tls_options=spec_kms_tls_options,
            kms_connect_callback=redirect_kms,
            query_analysis="embedded",
        )
        with (
            pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=opts) as client_encrypted,
            ClientEncryption(
                providers,
                "keyvault.datakeys",
                client,
                kms_tls_options=spec_kms_tls_options,
                kms_connect_callback=redirect_kms,
            ) as client_encryption,
        ):
            yield client, client_encrypted, client_encryption
        client.db.drop_collection("coll")
        client.keyvault.drop_collection("datakeys")


def test_prose_6_corpus_automatic_with_local_schema(corpus_clients: Any) -> None:
    client, client_encrypted, client_encryption = corpus_clients
    fields = _auto_fields()
    copied: dict[str, Any] = {"_id": CORPUS["_id"]}
    for kms in RUN_KMS:
        copied[f"altname_{kms}"] = CORPUS[f"altname_{kms}"]
    for name in fields:  # step 5
        entry = CORPUS[name]
        if entry["method"] == "auto":
            copied[name] = entry
            continue
        algorithm: AlgorithmName = (
            Algorithm.DETERMINISTIC if entry["algo"] == "det" else Algorithm.RANDOM
        )
        key = {"key_id": KEY_IDS[entry["kms"]]} if entry["identifier"] == "id" else {}
        options = EncryptOpts(algorithm, key_alt_name=entry["kms"] if not key else None, **key)
        if entry["allowed"]:
            copied[name] = {**entry, "value": client_encryption.encrypt(entry["value"], options)}
        else:
            with pytest.raises(MongoCryptError):
                client_encryption.encrypt(entry["value"], options)
            copied[name] = entry
    client_encrypted.db.coll.insert_one(copied)  # step 6
    decrypted = client_encrypted.db.coll.find_one()  # step 7
    assert {name: decrypted[name] for name in fields} == {name: CORPUS[name] for name in fields}
    actual = client.db.coll.find_one()  # step 8
    for name in fields:
        expected = ENCRYPTED[name]
        if expected["algo"] == "det":
            assert actual[name]["value"] == expected["value"], name
        elif expected["allowed"]:
            assert actual[name]["value"] != expected["value"], name
        if expected["allowed"]:
            assert client_encryption.decrypt(actual[name]["value"]) == client_encryption.decrypt(
                expected["value"]
            ), name
        else:
            assert actual[name]["value"] == CORPUS[name]["value"], name
