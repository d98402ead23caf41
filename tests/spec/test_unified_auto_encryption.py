"""The specification's unified CSFLE tests of automatic encryption (CRUD through an auto-encrypting
pymongo client, schema maps, key alt names, bypass, unsupported commands, types, KMS providers), one
pytest item per test case, run by the runner in tests/helpers/unified/ with mongocrypt's embedded
query analyzer (``query_analysis="embedded"``: no mongocryptd, no crypt_shared) against SecantusDB
(or MONGODB_URI) and the KMS emulators.

The command-started events of an auto-encrypting client carry the encrypted command, so the
deterministic ciphertexts the files expect are compared byte for byte with what the analyzer and
libmongocrypt produced. The spec's AWS data key (the key most files use) is the one libmongocrypt's
recorded AWS Decrypt reply unwraps (tests/data/libmongocrypt/kms-aws/decrypt-response.txt): the
runner has the cloud KMS mock re-wrap that plaintext, so the key documents keep their _id, masterKey
and alt names, KMS requests still go to the AWS host (redirected to the mock), and the expected
ciphertexts stay valid.

Queryable Encryption files (fle2v2-*, QE-*, client-bulkWrite-qe) are not run: the server has no
server-side Queryable Encryption. Cases that cannot pass here are skipped with the reason
(tests/helpers/unified/skips.py, and the runner's skip for validators the server refuses).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from pymongo import MongoClient

from conftest import AWS_DECRYPT_REPLY, load_http_reply, recorded_aws_plaintext
from helpers.unified.runner import Runner, ServerInfo, descriptions, load
from helpers.unified.skips import AUTO_SKIPS, AUTO_XFAILS, VALIDATOR_INDEPENDENT
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO

FILES = (
    "accessToken-azure.json",
    "accessToken-gcp.json",
    "aggregate.json",
    "awsTemporary.json",
    "azureKMS.json",
    "badQueries.json",
    "badSchema.json",
    "basic.json",
    "bulk.json",
    "bypassAutoEncryption.json",
    "bypassedCommand.json",
    "count.json",
    "countDocuments.json",
    "create-and-createIndexes.json",
    "delete.json",
    "distinct.json",
    "explain.json",
    "find.json",
    "findOneAndDelete.json",
    "findOneAndReplace.json",
    "findOneAndUpdate.json",
    "gcpKMS.json",
    "getMore.json",
    "insert.json",
    "keyAltName.json",
    "kmipKMS.json",
    "localKMS.json",
    "localSchema.json",
    "malformedCiphertext.json",
    "missingKey.json",
    "namedKMS.json",
    "noSchema.json",
    "replaceOne.json",
    "timeoutMS.json",
    "types.json",
    "unsupportedCommand.json",
    "updateMany.json",
    "updateOne.json",
    "validatorAndPartialFieldExpression.json",
)

#: The keyMaterial of the specification's AWS data keys (_id AAAA...== and others): the real AWS
#: KMS wrapped it under arn:aws:kms:us-east-1:579766882180:key/89fcc2c4-...
SPEC_AWS_KEY_MATERIAL = base64.b64decode(
    "AQICAHhQNmWG2CzOm1dq3kWLM+iDUZhEqnhJwH9wZVpuZ94A8gEqnsxXlR51T5EbEVezUqqKAAAAwjCBvwYJKoZIhvcN"
    "AQcGoIGxMIGuAgEAMIGoBgkqhkiG9w0BBwEwHgYJYIZIAWUDBAEuMBEEDHa4jo6yp0Z18KgbUgIBEIB74sKxWtV8/YHj"
    "e5lv5THTl0HIbhSwM6EqRlmBiFFatmEWaeMk4tO4xBX65eq670I5TWPSLMzpp8ncGHMmvHqRajNBnmFtbYxN3E3/Wjxm"
    "dbOOe+OXpnGJPcGsftc7cB2shRfA4lICPnE26+oVNXT6p0Lo20nY5XC7jyCO"
)


def known_key_material() -> dict[bytes, bytes]:
    """Cloud-wrapped keyMaterial of the spec -> the data key, as far as recordings tell."""
    return {SPEC_AWS_KEY_MATERIAL: recorded_aws_plaintext()}


def _cases() -> Iterator[Any]:
    for name in FILES:
        for description in descriptions(name):
            key = (name, description)
            marks = []
            if key in AUTO_XFAILS:
                marks.append(pytest.mark.xfail(strict=True, reason=AUTO_XFAILS[key]))
            yield pytest.param(name, description, marks=marks, id=f"{name[:-5]}: {description}")


def test_tables_name_real_cases() -> None:
    """Every skip, xfail or validator-independent entry names a test that exists."""
    known = {(name, description) for name in FILES for description in descriptions(name)}
    assert set(AUTO_SKIPS) <= known
    assert set(AUTO_XFAILS) <= known
    assert set(VALIDATOR_INDEPENDENT) <= known
    assert not set(AUTO_SKIPS) & set(VALIDATOR_INDEPENDENT)


def test_recorded_reply_unwraps_the_spec_aws_key() -> None:
    """The recorded Decrypt reply is the spec AWS key's: with it, libmongocrypt decrypts a
    ciphertext the spec expects (basic.json's deterministic "string0")."""
    spec = load("basic.json")
    (key,) = spec["initialData"][1]["documents"]
    assert bytes(key["keyMaterial"]) == SPEC_AWS_KEY_MATERIAL
    ciphertext = spec["tests"][0]["outcome"][0]["documents"][0]["encrypted_string"]
    reply = load_http_reply(AWS_DECRYPT_REPLY)
    memory = InMemoryIO(kms={"aws": lambda context: reply})
    memory.keys.append(bson.encode(key))
    options = MongoCryptOptions(
        {"aws": {"accessKeyId": "recorded", "secretAccessKey": "recorded"}},
        bypass_encryption=True,
    )
    encrypter = ExplicitEncrypter(memory, options)
    try:
        assert bson.decode(encrypter.decrypt(bson.encode({"v": ciphertext})))["v"] == "string0"
    finally:
        encrypter.close()
    assert len(recorded_aws_plaintext()) == 96


#: Files whose tests set fail points, run against a server that takes configureFailPoint.
NEEDS_FAIL_POINTS = {"timeoutMS.json"}


@pytest.fixture(scope="module")
def internal_client(mongodb_uri: str) -> Iterator[MongoClient[Any]]:
    """The runner's internal client: initialData and outcome go through it."""
    client: MongoClient[Any] = MongoClient(mongodb_uri)
    with client:
        yield client


@pytest.fixture(scope="module")
def failpoint_internal_client(failpoint_uri: str) -> Iterator[MongoClient[Any]]:
    """The internal client of the files in NEEDS_FAIL_POINTS."""
    client: MongoClient[Any] = MongoClient(failpoint_uri)
    with client:
        yield client


@pytest.fixture(scope="module")
def server_info(internal_client: MongoClient[Any]) -> ServerInfo:
    """The server's version and topology, for runOnRequirements."""
    return ServerInfo.probe(internal_client)


@pytest.mark.requirement("CSE-AUTO-02", "CSE-TEST-02")
@pytest.mark.parametrize(("name", "description"), list(_cases()))
def test_unified(name: str, description: str, request: pytest.FixtureRequest) -> None:
    key = (name, description)
    reason = AUTO_SKIPS.get(key)
    if reason:
        pytest.skip(reason)
    fail_points = name in NEEDS_FAIL_POINTS
    uri: str = request.getfixturevalue("failpoint_uri" if fail_points else "mongodb_uri")
    internal: MongoClient[Any] = request.getfixturevalue(
        "failpoint_internal_client" if fail_points else "internal_client"
    )
    runner = Runner(
        load(name),
        uri,
        internal,
        ServerInfo.probe(internal) if fail_points else request.getfixturevalue("server_info"),
        request.getfixturevalue,
        known_key_material=known_key_material(),
        validator_independent=key in VALIDATOR_INDEPENDENT,
    )
    runner.run(description)
