"""pymongo's own encryption API, unchanged, running on mongocrypt: written as a pymongo user
writes it (pymongo and bson imports only), against SecantusDB (or MONGODB_URI) and the KMS peers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bson.binary import STANDARD, Binary
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import Algorithm, ClientEncryption
from pymongo.encryption_options import AutoEncryptionOpts
from pymongo.errors import DuplicateKeyError, EncryptionError

from conftest import present

PROVIDERS = ["local", "local:second", "aws", "aws:mock", "azure", "gcp", "kmip"]
OPTS: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=STANDARD)


@pytest.fixture
def key_vault(mongodb_uri: str) -> Iterator[str]:
    """A fresh key vault namespace with the unique keyAltNames index the spec asks for."""
    namespace = f"keyvault_{uuid.uuid4().hex[:8]}.datakeys"
    db, coll = namespace.split(".")
    with MongoClient[Any](mongodb_uri) as client:
        client[db][coll].create_index(
            "keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}}
        )
        yield namespace
        client.drop_database(db)


@pytest.fixture
def client(mongodb_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    with MongoClient[Any](mongodb_uri, uuidRepresentation="standard") as c:
        yield c


@pytest.fixture
def client_encryption(
    kms_setup: Any, key_vault: str, client: MongoClient[Any]
) -> Iterator[ClientEncryption[Any]]:
    with ClientEncryption[Any](
        kms_setup.providers, key_vault, client, OPTS, kms_tls_options=kms_setup.tls_options
    ) as ce:
        yield ce


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_data_key_and_round_trip(
    client_encryption: ClientEncryption[Any], kms_setup: Any, provider: str
) -> None:
    name = f"{provider}-key"
    key_id = client_encryption.create_data_key(
        provider, master_key=kms_setup.master_keys[provider], key_alt_names=[name]
    )
    assert isinstance(key_id, Binary) and key_id.subtype == 4
    document = present(client_encryption.get_key(key_id))
    assert document["masterKey"]["provider"] == provider
    assert document["keyAltNames"] == [name]
    for algorithm in (
        Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic,
        Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random,
    ):
        ciphertext = client_encryption.encrypt(
            {"ssn": "457-55-5462"} if algorithm.endswith("Random") else "457-55-5462",
            algorithm,
            key_alt_name=name,
        )
        assert ciphertext.subtype == 6
        assert client_encryption.decrypt(ciphertext) in ({"ssn": "457-55-5462"}, "457-55-5462")


def test_every_client_side_algorithm(client_encryption: ClientEncryption[Any]) -> None:
    key_id = client_encryption.create_data_key("local")
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        (Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, "text", {}),
        (Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, [1, 2, 3], {}),
        (Algorithm.UNINDEXED, "text", {}),
        (Algorithm.INDEXED, "text", {"contention_factor": 0}),
    ]
    for algorithm, value, extra in cases:
        ciphertext = client_encryption.encrypt(value, algorithm, key_id=key_id, **extra)
        assert ciphertext.subtype == 6
        assert client_encryption.decrypt(ciphertext) == value
    # uuid.UUID key ids are accepted as well as Binary ones.
    ciphertext = client_encryption.encrypt(
        1, Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id=key_id.as_uuid()
    )
    assert client_encryption.decrypt(ciphertext) == 1


@pytest.mark.requirement("CSE-ERR-06")
def test_key_management(client_encryption: ClientEncryption[Any]) -> None:
    first = client_encryption.create_data_key("local", key_alt_names=["first"])
    second = client_encryption.create_data_key("local")
    assert {k["_id"] for k in client_encryption.get_keys()} == {first, second}
    assert present(client_encryption.get_key_by_alt_name("first"))["_id"] == first
    before = client_encryption.add_key_alt_name(second, "second")
    assert before is not None and "keyAltNames" not in before
    assert present(client_encryption.get_key_by_alt_name("second"))["_id"] == second
    with pytest.raises(DuplicateKeyError) as duplicate:  # the server's error, code kept
        client_encryption.add_key_alt_name(first, "second")
    assert duplicate.value.code == 11000
    before = client_encryption.remove_key_alt_name(second, "second")
    assert before is not None and before["keyAltNames"] == ["second"]
    # emptied arrays are removed
    assert "keyAltNames" not in present(client_encryption.get_key(second))
    assert client_encryption.remove_key_alt_name(second, "absent") is not None
    result = client_encryption.delete_key(first)
    assert result.deleted_count == 1
    assert client_encryption.get_key(first) is None
    assert client_encryption.get_key_by_alt_name("first") is None


@pytest.mark.parametrize(
    ("source", "target"),
    [("local", "aws"), ("aws", "azure"), ("gcp", "kmip"), ("kmip", "local:second")],
)
def test_rewrap_many_data_key_between_providers(
    client_encryption: ClientEncryption[Any], kms_setup: Any, source: str, target: str
) -> None:
    key_id = client_encryption.create_data_key(source, master_key=kms_setup.master_keys[source])
    ciphertext = client_encryption.encrypt(
        "kept", Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id=key_id
    )
    result = client_encryption.rewrap_many_data_key(
        {}, provider=target, master_key=kms_setup.master_keys[target]
    )
    assert result.bulk_write_result is not None and result.bulk_write_result.modified_count == 1
    assert present(client_encryption.get_key(key_id))["masterKey"]["provider"] == target
    assert client_encryption.decrypt(ciphertext) == "kept"


def test_rewrap_with_nothing_to_rewrap(client_encryption: ClientEncryption[Any]) -> None:
    assert client_encryption.rewrap_many_data_key({}).bulk_write_result is None


def test_auto_decryption_of_explicitly_encrypted_documents(
    client_encryption: ClientEncryption[Any],
    client: MongoClient[Any],
    kms_setup: Any,
    key_vault: str,
    mongodb_uri: str,
) -> None:
    key_id = client_encryption.create_data_key("aws", master_key=kms_setup.master_keys["aws"])
    coll = client.get_database("dropin").get_collection(f"people_{uuid.uuid4().hex[:6]}")
    ciphertext = client_encryption.encrypt(
        "457-55-5462", Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Deterministic, key_id=key_id
    )
    coll.insert_one({"_id": 1, "name": "Ada", "ssn": ciphertext})
    assert (
        present(coll.find_one({"_id": 1}))["ssn"] == ciphertext
    )  # the server only ever sees ciphertext
    options = AutoEncryptionOpts(
        kms_setup.providers,
        key_vault,
        bypass_auto_encryption=True,
        kms_tls_options=kms_setup.tls_options,
    )
    with MongoClient[Any](mongodb_uri, auto_encryption_opts=options) as encrypted:
        found = encrypted[coll.database.name][coll.name].find_one({"ssn": ciphertext})
        assert found == {"_id": 1, "name": "Ada", "ssn": "457-55-5462"}
    coll.drop()


def test_wrong_kms_ca_is_a_clear_tls_error(
    client: MongoClient[Any], key_vault: str, kms_setup: Any, tls: Any
) -> None:
    options = {**kms_setup.tls_options, "aws": {"tlsCAFile": str(tls.other_ca)}}
    with (
        ClientEncryption[Any](
            kms_setup.providers, key_vault, client, OPTS, kms_tls_options=options
        ) as ce,
        pytest.raises(
            EncryptionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"
        ),
    ):
        ce.create_data_key("aws", master_key=kms_setup.master_keys["aws"])


@pytest.mark.requirement("CSE-TLS-03")
def test_kmip_without_client_certificate_is_refused(
    client: MongoClient[Any], key_vault: str, kms_setup: Any, tls: Any
) -> None:
    options = {**kms_setup.tls_options, "kmip": {"tlsCAFile": str(tls.ca)}}
    with (
        ClientEncryption[Any](
            kms_setup.providers, key_vault, client, OPTS, kms_tls_options=options
        ) as ce,
        pytest.raises(EncryptionError) as info,
    ):
        ce.create_data_key("kmip", master_key={})
    assert "handshake" in str(info.value).lower()  # PyKMIP requires a client certificate


def test_string_algorithm_options_reach_libmongocrypt(
    client_encryption: ClientEncryption[Any],
) -> None:
    """pymongo >= 4.18 send StringOpts as string_opts; 4.16-4.17 send TextOpts as text_opts."""
    import pymongo.encryption_options as options

    import mongocrypt

    if not mongocrypt.has_string_algorithm:
        pytest.skip("needs a libmongocrypt with the String algorithm")
    prefix: options.PrefixOpts = {"strMinQueryLength": 2, "strMaxQueryLength": 10}
    extra: dict[str, Any]
    if hasattr(options, "StringOpts"):
        extra = {
            "string_opts": options.StringOpts(
                prefix=prefix, case_sensitive=True, diacritic_sensitive=True
            )
        }
    else:
        extra = {
            "text_opts": options.TextOpts(  # type: ignore[attr-defined]  # pymongo 4.16-4.17 only
                prefix=prefix, case_sensitive=True, diacritic_sensitive=True
            )
        }
    key_id = client_encryption.create_data_key("local")
    ciphertext = client_encryption.encrypt(
        "hello world", "String", key_id=key_id, contention_factor=0, **extra
    )
    assert ciphertext.subtype == 6 and ciphertext[0] == 11
    assert client_encryption.decrypt(ciphertext) == "hello world"
    query = client_encryption.encrypt(
        "hel", "String", key_id=key_id, contention_factor=0, query_type="prefix", **extra
    )
    assert query.subtype == 6 and query[0] == 18


def test_on_demand_aws_credentials(
    client: MongoClient[Any], key_vault: str, kms_setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prose 15 (success) the pymongo way: {"aws": {}} is filled from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "on-demand-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "on-demand-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    tls_options = {"aws": kms_setup.tls_options["aws:mock"]}
    with ClientEncryption[Any](
        {"aws": {}}, key_vault, client, OPTS, kms_tls_options=tls_options
    ) as ce:
        key_id = ce.create_data_key("aws", master_key=kms_setup.master_keys["aws:mock"])
        ciphertext = ce.encrypt("x", Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random, key_id=key_id)
        assert ce.decrypt(ciphertext) == "x"
