"""The specification's unified key-management tests (createDataKey, getKey(s), key alt names,
deleteKey, rewrapManyDataKey, named KMS providers, the key cache), one pytest item per test case,
run by the runner in tests/helpers/unified/ against SecantusDB (or MONGODB_URI) and the KMS
emulators.

Cases that cannot pass against emulators are skipped with the reason
(tests/helpers/unified/skips.py).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bson.int64 import Int64
from pymongo import MongoClient

from helpers.unified.matching import UnsupportedFeature, assert_matches
from helpers.unified.runner import Runner, ServerInfo, descriptions, load
from helpers.unified.skips import SKIPS, XFAILS

FILES = (
    "createDataKey.json",
    "createDataKey-kms_providers-invalid.json",
    "getKey.json",
    "getKeys.json",
    "getKeyByAltName.json",
    "addKeyAltName.json",
    "removeKeyAltName.json",
    "deleteKey.json",
    "rewrapManyDataKey.json",
    "rewrapManyDataKey-decrypt_failure.json",
    "rewrapManyDataKey-encrypt_failure.json",
    "namedKMS-createDataKey.json",
    "namedKMS-rewrapManyDataKey.json",
    "namedKMS-explicit.json",
    "keyCache.json",
)


def _cases() -> Iterator[Any]:
    for name in FILES:
        for description in descriptions(name):
            key = (name, description)
            marks = []
            if key in XFAILS:
                marks.append(pytest.mark.xfail(strict=True, reason=XFAILS[key]))
            yield pytest.param(name, description, marks=marks, id=f"{name[:-5]}: {description}")


def test_tables_name_real_cases() -> None:
    """Every skip or xfail entry names a test that exists (a renamed test cannot hide)."""
    known = {(name, description) for name in FILES for description in descriptions(name)}
    assert set(SKIPS) <= known
    assert set(XFAILS) <= known


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ({"x": 1}, {"x": 1, "extra": 2}),  # root documents may have more fields
        ({"x": 1}, {"x": Int64(1)}),  # flexible numerics
        ({"x": 1.0}, {"x": 1}),
        ({"a": {"$$exists": False}}, {"b": 1}),
        ({"a": {"$$exists": True}}, {"a": None}),
        ({"a": {"$$unsetOrMatches": 1}}, {}),
        ({"a": {"$$unsetOrMatches": {"b": 1}}}, {"a": {"b": 1}}),
        ({"$$unsetOrMatches": None}, None),
        ({"a": {"$$type": ["int", "long"]}}, {"a": Int64(5)}),
        ({"a": {"$$type": "binData"}}, {"a": uuid.uuid4()}),
        ({"a": {"$$type": "date"}}, {"a": datetime.datetime.now(datetime.timezone.utc)}),
        ({"a": [{"b": {"$$type": "string"}}]}, {"a": [{"b": "x"}]}),
    ],
)
def test_matcher_accepts(expected: Any, actual: Any) -> None:
    assert_matches(expected, actual)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ({"x": {"y": 1}}, {"x": {"y": 1, "z": 1}}),  # nested documents may not
        ({"x": 1}, {"x": 1.5}),
        ({"x": 1}, {"x": True}),
        ({"x": 1}, {"x": "1"}),
        ({"x": 1}, {}),
        ({"a": {"$$exists": False}}, {"a": None}),
        ({"a": {"$$unsetOrMatches": 1}}, {"a": 2}),
        ({"a": {"$$type": "int"}}, {"a": Int64(5)}),
        ({"a": {"$$type": "binData"}}, {}),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}),  # arrays match element by element
        ({"a": [{"b": 1}]}, {"a": [{"b": 1, "c": 2}]}),
    ],
)
def test_matcher_rejects(expected: Any, actual: Any) -> None:
    with pytest.raises(AssertionError):
        assert_matches(expected, actual)


def test_matcher_iterable_results_hold_root_documents() -> None:
    assert_matches([{"a": 1}], [{"a": 1, "b": 2}], iterable=True)
    with pytest.raises(AssertionError):
        assert_matches([{"a": 1}], [{"a": 1}, {"a": 2}], iterable=True)


def test_matcher_refuses_unknown_operators() -> None:
    with pytest.raises(UnsupportedFeature):
        assert_matches({"a": {"$$sessionLsid": "session0"}}, {"a": 1})


@pytest.fixture(scope="module", params=["mongodb_uri", "auth_mongodb_uri"], ids=["no-auth", "auth"])
def server_uri(request: pytest.FixtureRequest) -> str:
    """Every case runs against a server without auth and one with --auth (as a root user)."""
    uri: str = request.getfixturevalue(request.param)
    return uri


@pytest.fixture(scope="module")
def internal_client(server_uri: str) -> Iterator[MongoClient[Any]]:
    """The runner's internal client: initialData and outcome go through it."""
    client: MongoClient[Any] = MongoClient(server_uri)
    with client:
        yield client


@pytest.fixture(scope="module")
def server_info(internal_client: MongoClient[Any]) -> ServerInfo:
    """The server's version and topology, for runOnRequirements."""
    return ServerInfo.probe(internal_client)


@pytest.mark.requirement("CSE-TEST-03", "CSE-TEST-07")
@pytest.mark.parametrize(("name", "description"), list(_cases()))
def test_unified(
    name: str,
    description: str,
    server_uri: str,
    request: pytest.FixtureRequest,
) -> None:
    reason = SKIPS.get((name, description))
    if reason:
        pytest.skip(reason)
    runner = Runner(
        load(name),
        server_uri,
        request.getfixturevalue("internal_client"),
        request.getfixturevalue("server_info"),
        request.getfixturevalue,
    )
    runner.run(description)
