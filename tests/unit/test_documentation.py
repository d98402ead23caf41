"""What the specification says the documentation must tell users, found where users read it:
the pages under docs/ and the docstrings of the public API."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mongocrypt import Algorithm, ClientEncryption, DataKeyOpts
from mongocrypt.auto_encryption import AutoEncryptionOpts

DOCS = Path(__file__).resolve().parents[2] / "docs"


def prose(text: str) -> str:
    """Text with its line breaks and repeated spaces folded, so a phrase may span lines."""
    return re.sub(r"\s+", " ", text)


def page(name: str) -> str:
    return prose((DOCS / name).read_text())


def doc(obj: object) -> str:
    return prose(inspect.getdoc(obj) or "")


@pytest.mark.requirement("CSE-DOC-03")
def test_the_list_collections_privilege_is_documented() -> None:
    assert "needs the `listCollections` privilege" in page("automatic-encryption.md")
    assert "needs the listCollections privilege" in doc(AutoEncryptionOpts)


@pytest.mark.requirement("CSE-DOC-04")
def test_when_the_internal_client_is_created_is_documented() -> None:
    text = page("automatic-encryption.md")
    assert "a `maxPoolSize` other than 0" in text
    assert "the parent's options except `minPoolSize=0` and no automatic encryption" in text
    assert "when no `key_vault_client` is given" in text
    assert "when `bypass_auto_encryption` is false" in text


@pytest.mark.requirement("CSE-DOC-05", "CSE-DOC-06", "CSE-DOC-07")
def test_local_schemas_are_documented_as_safer_and_encryption_only() -> None:
    text = page("automatic-encryption.md")
    assert "A local `schema_map` is safer than relying on the server" in text
    assert "a local schema map is safer, as a malicious server could advertise" in doc(
        AutoEncryptionOpts
    )
    assert "other JSON-schema rules in it" in text and "are not enforced" in text
    assert "a schema that has them is refused" in text
    assert "a local `encrypted_fields_map` is safer than the `encryptedFields` read" in text


@pytest.mark.requirement("CSE-DOC-08", "CSE-DOC-09")
def test_no_documentation_describes_the_state_collection_name_options() -> None:
    texts = [path.read_text() for path in DOCS.rglob("*.md")]
    texts.append(doc(ClientEncryption.create_encrypted_collection))
    for text in texts:
        assert "escCollection" not in text and "ecocCollection" not in text


@pytest.mark.requirement("CSE-DOC-10")
def test_create_encrypted_collection_says_existing_clients_are_unchanged() -> None:
    text = doc(ClientEncryption.create_encrypted_collection)
    assert "Existing clients' automatic encryption settings do not change" in text


@pytest.mark.requirement("CSE-DOC-11")
def test_master_key_fields_are_listed_per_provider() -> None:
    text = doc(DataKeyOpts)
    assert "required for aws (region, key, endpoint?)" in text
    assert "azure (keyVaultEndpoint, keyName, keyVersion?)" in text
    assert "gcp (projectId, location, keyRing, keyName, keyVersion?, endpoint?)" in text
    assert "kmip (keyId?, endpoint?, delegated?" in text


@pytest.mark.requirement("CSE-DOC-13")
def test_server_side_payloads_and_preview_query_types_are_documented() -> None:
    text = doc(Algorithm)
    assert "through a client with automatic encryption configured" in text
    assert "(``bypass_query_analysis`` may be set, ``bypass_auto_encryption`` may not)" in text
    assert "experimental: not covered by security guarantees" in text
    assert "may change incompatibly" in text


@pytest.mark.requirement("CSE-DOC-14")
def test_the_way_around_a_refused_operation_is_documented() -> None:
    text = page("automatic-encryption.md")
    assert "When automatic encryption refuses an operation" in text
    assert "`bypass_auto_encryption=True`" in text and "`ClientEncryption.encrypt()`" in text


@pytest.mark.requirement("CSE-DOC-15", "CSE-DOC-16")
def test_crypt_shared_loading_is_documented() -> None:
    text = page("automatic-encryption.md")
    assert "Only one crypt_shared library can be loaded in a process" in text
    assert "the same `crypt_shared_lib_path`" in text
    assert "names the library file, not its directory" in text
    assert "a leading `$ORIGIN` stands for the directory" in text
    assert "a relative path is resolved from the current working directory" in text
    assert "that does not load is an error; a search that finds no library is not" in text


@pytest.mark.requirement("CSE-DOC-17")
def test_smaller_write_batches_and_the_cost_are_documented() -> None:
    text = page("automatic-encryption.md")
    assert "lowers the maximum size of a write batch" in text
    assert "slower than the same operations in clear" in text
