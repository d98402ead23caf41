"""The cases that cannot pass here, each with the reason, decided by reading the test.

The KMS peers here are emulators: the cloud mock wraps keys under its own secret, and PyKMIP holds
none of the keys the specification's KMIP server does. So key documents whose keyMaterial the
real AWS/Azure/GCP/KMIP services wrapped cannot be unwrapped here, and the emulators accept any
master key, so an error only the real service raises (a key of another region or account, an
unknown key vault or key ring) cannot be reproduced. Keys wrapped with the spec's local master key
work, and so does creating keys with any provider (the emulators wrap them).
"""

from __future__ import annotations

__all__ = ["AUTO_SKIPS", "AUTO_XFAILS", "SKIPS", "VALIDATOR_INDEPENDENT", "XFAILS"]


def _real(*providers: str) -> str:
    names = ", ".join(providers)
    return f"needs the real {names} KMS (key material wrapped by the real service)"


def _rejects(provider: str, what: str) -> str:
    return (
        f"needs the real {provider} KMS: it expects the service to reject {what}; "
        "the emulator wraps under any master key"
    )


#: (file name, test description) -> skip reason.
SKIPS: dict[tuple[str, str], str] = {
    ("rewrapManyDataKey.json", "rewrap with new AWS KMS provider"): _real("Azure", "GCP", "KMIP"),
    ("rewrapManyDataKey.json", "rewrap with new Azure KMS provider"): _real("AWS", "GCP", "KMIP"),
    ("rewrapManyDataKey.json", "rewrap with new GCP KMS provider"): _real("AWS", "Azure", "KMIP"),
    ("rewrapManyDataKey.json", "rewrap with new KMIP KMS provider"): _real(
        "AWS", "Azure", "GCP", "KMIP"
    ),
    ("rewrapManyDataKey.json", "rewrap with new KMIP delegated KMS provider"): _real(
        "AWS", "Azure", "GCP", "KMIP"
    ),
    ("rewrapManyDataKey.json", "rewrap with new local KMS provider"): _real(
        "AWS", "Azure", "GCP", "KMIP"
    ),
    ("rewrapManyDataKey.json", "rewrap with current KMS provider"): _real(
        "AWS", "Azure", "GCP", "KMIP"
    ),
    (
        "rewrapManyDataKey-encrypt_failure.json",
        "rewrap with invalid masterKey for AWS KMS provider",
    ): _rejects("AWS", "a us-east-2 key the credentials cannot use"),
    (
        "rewrapManyDataKey-encrypt_failure.json",
        "rewrap with invalid masterKey for Azure KMS provider",
    ): _rejects("Azure", "an unknown key vault and key name"),
    (
        "rewrapManyDataKey-encrypt_failure.json",
        "rewrap with invalid masterKey for GCP KMS provider",
    ): _rejects("GCP", "an unknown key ring and key name"),
    ("namedKMS-rewrapManyDataKey.json", "rewrap to aws:name1"): _real("Azure", "GCP", "KMIP"),
    ("namedKMS-rewrapManyDataKey.json", "rewrap to azure:name1"): _real("AWS", "GCP", "KMIP"),
    ("namedKMS-rewrapManyDataKey.json", "rewrap to gcp:name1"): _real("AWS", "Azure", "KMIP"),
    ("namedKMS-rewrapManyDataKey.json", "rewrap to kmip:name1"): _real("AWS", "Azure", "GCP"),
    ("namedKMS-rewrapManyDataKey.json", "rewrap to local:name1"): _real(
        "AWS", "Azure", "GCP", "KMIP"
    ),
    ("namedKMS-rewrapManyDataKey.json", "rewrap from aws:name1 to aws:name2"): _real("AWS"),
}

#: (file name, test description) -> "bug: ..." reason of a strict xfail, until src/ is fixed.
XFAILS: dict[tuple[str, str], str] = {}


# Automatic encryption (tests/spec/test_unified_auto_encryption.py). Key documents the real AWS KMS
# wrapped are re-wrapped by the cloud mock when the recorded plaintext is known (the spec's AWS key,
# from libmongocrypt's recorded Decrypt reply); the Azure, GCP and KMIP keys' plaintexts are not
# recorded anywhere, and the tests using them compare deterministic ciphertexts made with them.
_VALIDATOR = (
    "; its schema is also in a validator with the encrypt keyword, which this server refuses"
)


def _real_key(provider: str) -> str:
    return (
        f"needs the real {provider}: the expected deterministic ciphertext was made with a data "
        f"key only the real service can unwrap{_VALIDATOR}"
    )


#: (file name, test description) -> skip reason, decided before the test runs. Tests whose
#: schema is in a refused validator are skipped when the runner meets it (runner.NEEDS_ENCRYPT_
#: VALIDATOR), so that they run against a mongod that stores it.
AUTO_SKIPS: dict[tuple[str, str], str] = {
    ("types.json", "type=symbol"): (
        "pymongo cannot send a BSON symbol (bson decodes $symbol to str, which is encrypted as a "
        "string)"
    ),
    ("types.json", "type=undefined"): (
        "pymongo cannot send BSON undefined (bson decodes $undefined to None, which is null)"
    ),
    (
        "azureKMS.json",
        "Insert a document with auto encryption using Azure KMS provider",
    ): _real_key("Azure Key Vault"),
    (
        "gcpKMS.json",
        "Insert a document with auto encryption using GCP KMS provider",
    ): _real_key("GCP Cloud KMS"),
    (
        "kmipKMS.json",
        "Insert a document with auto encryption using KMIP KMS provider",
    ): _real_key("specification's KMIP server (PyKMIP holds none of its secrets)"),
    (
        "kmipKMS.json",
        "Insert a document with auto encryption using KMIP delegated KMS provider",
    ): _real_key("specification's KMIP server (PyKMIP holds none of its keys)"),
    (
        "accessToken-azure.json",
        "Auto encrypt using access token Azure credentials",
    ): _real_key("Azure Key Vault and an Azure access token"),
    (
        "accessToken-azure.json",
        "Explicit encrypt using access token Azure credentials",
    ): _real_key("Azure Key Vault and an Azure access token"),
    (
        "accessToken-gcp.json",
        "Auto encrypt using access token GCP credentials",
    ): _real_key("GCP Cloud KMS and a GCP access token"),
    (
        "accessToken-gcp.json",
        "Explicit encrypt using access token GCP credentials",
    ): _real_key("GCP Cloud KMS and a GCP access token"),
    ("awsTemporary.json", "Insert with invalid temporary credentials"): (
        "needs the real AWS KMS: it expects the service to reject a bad session token; the "
        f"emulator does not check session tokens{_VALIDATOR}"
    ),
}

#: (file name, test description) -> why the test's expectations never reach the collection's
#: schema, so that it runs without the validator a server refuses.
VALIDATOR_INDEPENDENT: dict[tuple[str, str], str] = {
    ("bypassAutoEncryption.json", "Insert with bypassAutoEncryption"): (
        "bypassAutoEncryption: no schema is looked up, only decryption happens"
    ),
    ("bypassAutoEncryption.json", "Insert with bypassAutoEncryption for local schema"): (
        "bypassAutoEncryption: no schema is looked up, only decryption happens"
    ),
    ("unsupportedCommand.json", "mapReduce deterministic encryption (unsupported)"): (
        "the command is refused by name, before any schema is looked up"
    ),
    ("aggregate.json", "Database aggregate should fail"): (
        "a database aggregate is refused as a non-collection command, before any schema lookup"
    ),
    ("timeoutMS.json", "timeoutMS applied to listCollections to get collection schema"): (
        "the operation times out in the listCollections that would fetch the schema"
    ),
}

#: (file name, test description) -> "bug: ..." reason of a strict xfail, until src/ is fixed.
AUTO_XFAILS: dict[tuple[str, str], str] = {}
