"""mongocrypt's own ClientEncryption / AsyncClientEncryption on real peers: every method, every
provider, options validation, KMS TLS, timeouts, concurrency, proxies, events."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any, Optional

import pymongo
import pytest
from bson import Binary
from pymongo.errors import PyMongoError

from conftest import present
from helpers.peers.http_proxy import ConnectProxy
from mongocrypt import (
    Algorithm,
    AsyncClientEncryption,
    ClientEncryption,
    DataKeyOpts,
    EncryptedCollectionError,
    EncryptOpts,
    KeyVaultError,
    MongoCryptError,
    MongoCryptKmsError,
    MongoCryptTimeoutError,
    QueryType,
    RangeOpts,
    RewrapManyDataKeyOpts,
    StringOpts,
    has_string_algorithm,
)
from mongocrypt.events import (
    EncryptionEventListener,
    KeyVaultOperationStarted,
    KeyVaultOperationSucceeded,
    KmsRequestFailed,
    KmsRequestStarted,
    KmsRequestSucceeded,
)
from mongocrypt.io.proxy import AsyncHttpProxyConnect, HttpProxyConnect

PROVIDERS = ["local", "local:second", "aws", "aws:mock", "azure", "gcp", "kmip"]


class Recorder(EncryptionEventListener):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def kms_request_started(self, event: Any) -> None:
        self.events.append(event)

    kms_request_succeeded = kms_request_failed = kms_request_started
    key_vault_operation_started = key_vault_operation_succeeded = kms_request_started
    key_vault_operation_failed = kms_request_started


@pytest.fixture
def client(mongodb_uri: str) -> Iterator[pymongo.MongoClient[Any]]:
    with pymongo.MongoClient[Any](mongodb_uri) as c:
        yield c


@pytest.fixture
def namespace(client: pymongo.MongoClient[Any]) -> Iterator[str]:
    name = f"ce_{uuid.uuid4().hex[:8]}"
    client[name]["keys"].create_index(
        "keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}}
    )
    yield f"{name}.keys"
    client.drop_database(name)


@pytest.fixture
def make(client: pymongo.MongoClient[Any], namespace: str, kms_setup: Any) -> Iterator[Any]:
    """Builds ClientEncryption objects on the session's peers, closing them afterwards."""
    made: list[ClientEncryption] = []

    def build(**options: Any) -> ClientEncryption:
        options.setdefault("kms_tls_options", kms_setup.tls_options)
        ce = ClientEncryption(
            options.pop("kms_providers", kms_setup.providers), namespace, client, **options
        )
        made.append(ce)
        return ce

    yield build
    for ce in made:
        ce.close()


@pytest.fixture
def ce(make: Any) -> ClientEncryption:
    return make()  # type: ignore[no-any-return]  # make is an untyped fixture factory


def opts(kms_setup: Any, provider: str, **extra: Any) -> DataKeyOpts:
    return DataKeyOpts(master_key=kms_setup.master_keys[provider], **extra)


# -- options ---------------------------------------------------------------------------------


@pytest.mark.requirement(
    "CSE-API-09",
    "CSE-CE-01",
    "CSE-CRED-10",
    "CSE-KV-01",
    "CSE-TLS-02",
    "CSE-TLS-04",
    "CSE-TLS-05",
    "CSE-TLS-06",
)
@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (
            {"key_vault_namespace": "nodot"},
            ValueError,
            "key_vault_namespace must be 'database.collection'",
        ),
        ({"timeout_ms": -1}, ValueError, "timeout_ms must be an int >= 0"),
        ({"codec_options": {"tz_aware": True}}, TypeError, "codec_options must be CodecOptions"),
        (
            {"credential_providers": {"aws": lambda: {}}},
            ValueError,
            "requires kms_providers['aws'] to be empty",
        ),
        ({"credential_providers": {"gcp": lambda: {}}}, ValueError, "may only hold an 'aws'"),
        ({"event_listeners": [object()]}, TypeError, "EncryptionEventListener"),
        (
            {"kms_tls_options": {"aws": {"tlsInsecure": True}}},
            ValueError,
            "Insecure TLS options prohibited: tlsInsecure",
        ),
        (
            {"kms_tls_options": {"aws": {"tlsAllowInvalidHostnames": True}}},
            ValueError,
            "Insecure TLS options prohibited: tlsAllowInvalidHostnames",
        ),
        (
            {"kms_tls_options": {"aws": {"tlsAllowInvalidCertificates": True}}},
            ValueError,
            "Insecure TLS options prohibited: tlsAllowInvalidCertificates",
        ),
        (
            {"kms_tls_options": {"aws": {"tlsDisableCertificateRevocationCheck": True}}},
            ValueError,
            "Insecure TLS options prohibited",
        ),
        ({"kms_tls_options": {"kmip": {"tls": False}}}, ValueError, "TLS is required"),
        (
            {"kms_tls_options": {"aws": {"tlsCAFiel": "x"}}},
            ValueError,
            "unknown KMS TLS option 'tlsCAFiel'",
        ),
        ({"kms_connect_callback": "proxy"}, TypeError, "kms_connect_callback must be callable"),
    ],
)
def test_bad_options_name_the_option(
    client: Any, kms_setup: Any, kwargs: dict[str, Any], error: type, text: str
) -> None:
    namespace = kwargs.pop("key_vault_namespace", "kv.keys")
    with pytest.raises(error) as info:
        ClientEncryption(
            {"local": {"key": os.urandom(96)}, "aws": {"accessKeyId": "a", "secretAccessKey": "b"}},
            namespace,
            client,
            **kwargs,
        )
    assert text in str(info.value)


@pytest.mark.requirement("CSE-TLS-07", "CSE-TLS-08")
def test_prose_11_case_5_ocsp_endpoint_check_is_permitted(
    make: Any, kms_setup: Any, tls: Any
) -> None:
    ce = make(
        kms_tls_options={
            **kms_setup.tls_options,
            "aws": {"tlsCAFile": str(tls.ca), "tlsDisableOCSPEndpointCheck": True},
        }
    )
    assert ce.create_data_key("aws", opts(kms_setup, "aws")).subtype == 4


@pytest.mark.requirement("CSE-ENC-01", "CSE-ENC-02")
@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"algorithm": Algorithm.RANDOM}, "exactly one of key_id and key_alt_name"),
        (
            {"algorithm": Algorithm.RANDOM, "key_id": b"0" * 16},
            "key_id must be a uuid.UUID or a bson Binary",
        ),
        ({"algorithm": 5, "key_alt_name": "a"}, "algorithm must be str"),
        (
            {"algorithm": "Indexed", "key_alt_name": "a", "contention_factor": "0"},
            "contention_factor must be int",
        ),
        (
            {"algorithm": "Range", "key_alt_name": "a", "range_opts": {"min": 0}},
            "range_opts must be RangeOpts",
        ),
    ],
)
def test_encrypt_opts_validation(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises((TypeError, ValueError), match=text):
        EncryptOpts(**kwargs)


@pytest.mark.requirement("CSE-API-01")
def test_option_types_validate() -> None:
    with pytest.raises(TypeError, match="key_alt_names must be a sequence of str"):
        DataKeyOpts(key_alt_names="one")
    with pytest.raises(ValueError, match="sparsity must be >= 0"):
        RangeOpts(sparsity=-1)
    with pytest.raises(TypeError, match="case_sensitive must be bool"):
        StringOpts(case_sensitive=1, diacritic_sensitive=True)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(TypeError, match="provider must be str"):
        RewrapManyDataKeyOpts(None)  # type: ignore[arg-type]  # a wrong type on purpose
    assert "<redacted>" in repr(DataKeyOpts(key_material=b"k" * 96))


# -- data keys and encryption ----------------------------------------------------------------


@pytest.mark.requirement(
    "CSE-CE-02",
    "CSE-CE-11",
    "CSE-DK-02",
    "CSE-DK-03",
    "CSE-DK-04",
    "CSE-DK-05",
    "CSE-DK-06",
    "CSE-KMS-01",
    "CSE-KMS-02",
    "CSE-KMS-03",
    "CSE-KMS-04",
    "CSE-KMS-06",
    "CSE-LMC-03",
    "CSE-TLS-03",
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_create_data_key_and_round_trip(
    ce: ClientEncryption, kms_setup: Any, provider: str
) -> None:
    key_id = ce.create_data_key(provider, opts(kms_setup, provider, key_alt_names=[provider]))
    assert isinstance(key_id, Binary) and key_id.subtype == 4
    assert present(ce.get_key(key_id))["masterKey"]["provider"] == provider
    for algorithm in (Algorithm.DETERMINISTIC, Algorithm.RANDOM, Algorithm.UNINDEXED):
        for key in ({"key_alt_name": provider}, {"key_id": key_id}):
            ciphertext = ce.encrypt("457-55-5462", EncryptOpts(algorithm, **key))
            assert ciphertext.subtype == 6
            assert ce.decrypt(ciphertext) == "457-55-5462"


def test_queryable_encryption_resolves_key_alt_names_once(make: Any) -> None:
    """Issue 15 item 3: libmongocrypt takes QE keys by id; the name is looked up, then cached."""
    recorder = Recorder()
    ce = make(event_listeners=[recorder])
    key_id = ce.create_data_key("local", DataKeyOpts(key_alt_names=["qe"]))
    indexed = EncryptOpts(Algorithm.INDEXED, key_alt_name="qe", contention_factor=0)
    recorder.events.clear()
    assert ce.decrypt(ce.encrypt("v", indexed)) == "v"
    finds = [e for e in recorder.events if isinstance(e, KeyVaultOperationStarted)]
    assert len(finds) == 2  # the name's id, then the key itself
    recorder.events.clear()
    range_opts = RangeOpts(min=0, max=200, sparsity=1, trim_factor=1)
    ce.encrypt(
        5,
        EncryptOpts(Algorithm.RANGE, key_alt_name="qe", contention_factor=0, range_opts=range_opts),
    )
    ce.encrypt("u", EncryptOpts(Algorithm.UNINDEXED, key_alt_name="qe"))
    expression = ce.encrypt_expression(
        {"$and": [{"a": {"$gte": 1}}, {"a": {"$lt": 9}}]},
        EncryptOpts(
            Algorithm.RANGE,
            key_alt_name="qe",
            contention_factor=0,
            query_type="range",
            range_opts=range_opts,
        ),
    )
    assert expression["$and"][0]["a"]["$gte"].subtype == 6
    assert not [e for e in recorder.events if isinstance(e, KeyVaultOperationStarted)]
    assert ce.get_key(key_id) is not None
    with pytest.raises(
        MongoCryptError, match=r"no data key in key vault \S+ has the alternate name 'nobody'"
    ):
        ce.encrypt("v", EncryptOpts(Algorithm.INDEXED, key_alt_name="nobody", contention_factor=0))


def test_key_alt_name_resolution_expires_with_the_key_cache(make: Any) -> None:
    ce = make(key_expiration_ms=1)
    first = ce.create_data_key("local", DataKeyOpts(key_alt_names=["moving"]))
    opts = EncryptOpts(Algorithm.UNINDEXED, key_alt_name="moving")
    ce.encrypt("a", opts)
    ce.remove_key_alt_name(first, "moving")
    second = ce.create_data_key("local", DataKeyOpts(key_alt_names=["moving"]))
    time.sleep(0.01)
    assert ce.encrypt("b", opts)[1:17] == second.as_uuid().bytes


@pytest.mark.requirement(
    "CSE-CE-12",
    "CSE-CE-13",
    "CSE-ENC-03",
    "CSE-ENC-06",
    "CSE-ENC-07",
    "CSE-ENC-08",
)
def test_queryable_encryption_algorithms(ce: ClientEncryption) -> None:
    key_id = ce.create_data_key("local")
    indexed = ce.encrypt("x", EncryptOpts(Algorithm.INDEXED, key_id=key_id, contention_factor=0))
    assert ce.decrypt(indexed) == "x"
    find = ce.encrypt(
        "x",
        EncryptOpts(
            Algorithm.INDEXED, key_id=key_id, contention_factor=0, query_type=QueryType.EQUALITY
        ),
    )
    assert find.subtype == 6 and find[0] == 12
    range_opts = RangeOpts(min=0, max=200, sparsity=1, trim_factor=1)
    value = ce.encrypt(
        25, EncryptOpts(Algorithm.RANGE, key_id=key_id, contention_factor=0, range_opts=range_opts)
    )
    assert ce.decrypt(value) == 25
    expression = ce.encrypt_expression(
        {"$and": [{"age": {"$gte": 5}}, {"age": {"$lt": 100}}]},
        EncryptOpts(
            Algorithm.RANGE,
            key_id=key_id,
            contention_factor=0,
            query_type=QueryType.RANGE,
            range_opts=range_opts,
        ),
    )
    assert expression["$and"][0]["age"]["$gte"].subtype == 6
    if has_string_algorithm:
        string_opts = StringOpts(
            case_sensitive=True,
            diacritic_sensitive=True,
            prefix={"strMinQueryLength": 2, "strMaxQueryLength": 8},
        )
        text = ce.encrypt(
            "hello",
            EncryptOpts(
                Algorithm.STRING, key_id=key_id, contention_factor=0, string_opts=string_opts
            ),
        )
        assert ce.decrypt(text) == "hello"


@pytest.mark.requirement("CSE-API-04", "CSE-DK-01", "CSE-DK-08")
def test_uuid_key_ids_and_key_material(ce: ClientEncryption) -> None:
    key_id = ce.create_data_key("local", DataKeyOpts(key_material=os.urandom(96)))
    ciphertext = ce.encrypt(1, EncryptOpts(Algorithm.RANDOM, key_id=key_id.as_uuid()))
    assert ce.decrypt(ciphertext) == 1
    with pytest.raises(ValueError, match="key_material must be 96 bytes, not 5"):
        ce.create_data_key("local", DataKeyOpts(key_material=b"short"))


@pytest.mark.requirement("CSE-CE-13")
def test_decrypt_needs_a_ciphertext(ce: ClientEncryption) -> None:
    with pytest.raises(TypeError, match="subtype 6"):
        ce.decrypt(Binary(b"x", 0))


@pytest.mark.requirement("CSE-CE-03")
def test_invalid_master_key_writes_nothing(
    ce: ClientEncryption, client: Any, namespace: str
) -> None:
    with pytest.raises(MongoCryptError):
        ce.create_data_key("aws", DataKeyOpts(master_key={"region": "us-east-1"}))  # no key ARN
    db, coll = namespace.split(".")
    assert client[db][coll].count_documents({}) == 0


# -- key management --------------------------------------------------------------------------


@pytest.mark.requirement(
    "CSE-CE-05",
    "CSE-CE-06",
    "CSE-CE-07",
    "CSE-CE-08",
    "CSE-CE-09",
    "CSE-CE-10",
)
def test_key_management(ce: ClientEncryption) -> None:
    first = ce.create_data_key("local", DataKeyOpts(key_alt_names=["first"]))
    second = ce.create_data_key("local")
    assert {k["_id"] for k in ce.get_keys()} == {first, second}
    assert present(ce.get_key_by_alt_name("first"))["_id"] == first
    assert ce.get_key(uuid.uuid4()) is None and ce.get_key_by_alt_name("nobody") is None
    previous = ce.add_key_alt_name(second, "second")
    assert previous is not None and "keyAltNames" not in previous
    assert ce.add_key_alt_name(uuid.uuid4(), "x") is None
    previous = present(ce.remove_key_alt_name(second, "second"))
    assert list(previous["keyAltNames"]) == ["second"]
    assert "keyAltNames" not in present(ce.get_key(second))
    ce.add_key_alt_name(second, "a")
    ce.add_key_alt_name(second, "b")
    ce.remove_key_alt_name(second, "a")
    assert list(present(ce.get_key(second))["keyAltNames"]) == ["b"]
    assert ce.delete_key(first).deleted_count == 1 and ce.get_key(first) is None


@pytest.mark.requirement("CSE-ERR-02", "CSE-ERR-06", "CSE-KV-04")
def test_duplicate_alt_name_keeps_the_server_code(ce: ClientEncryption) -> None:
    """Prose 13 through our own API: the unique index's error arrives as KeyVaultError 11000."""
    ce.create_data_key("local", DataKeyOpts(key_alt_names=["taken"]))
    with pytest.raises(KeyVaultError) as created:
        ce.create_data_key("local", DataKeyOpts(key_alt_names=["taken"]))
    other = ce.create_data_key("local")
    with pytest.raises(KeyVaultError) as added:
        ce.add_key_alt_name(other, "taken")
    for error in (created.value, added.value):
        assert error.code == 11000 and "E11000" in str(error)
        assert isinstance(error.__cause__, pymongo.errors.DuplicateKeyError)


@pytest.mark.requirement("CSE-CE-04", "CSE-DK-11")
@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("local", "aws"),
        ("aws", "azure"),
        ("azure", "gcp"),
        ("gcp", "kmip"),
        ("kmip", "local:second"),
    ],
)
def test_rewrap_many_data_key(
    ce: ClientEncryption, kms_setup: Any, source: str, target: str
) -> None:
    key_id = ce.create_data_key(source, opts(kms_setup, source))
    ciphertext = ce.encrypt("kept", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
    result = ce.rewrap_many_data_key(
        {}, RewrapManyDataKeyOpts(target, kms_setup.master_keys[target])
    )
    assert present(result.bulk_write_result).modified_count == 1
    key = present(ce.get_key(key_id))
    assert key["masterKey"]["provider"] == target
    assert key["updateDate"] >= key["creationDate"]
    assert ce.decrypt(ciphertext) == "kept"
    assert ce.rewrap_many_data_key({"_id": uuid.uuid4()}).bulk_write_result is None


def test_rewrap_reports_progress(ce: ClientEncryption) -> None:
    """Issue 15 item 6: (keys matched, keys rewrapped), as the CLI shows them."""
    for _ in range(3):
        ce.create_data_key("local")
    calls: list[tuple[int, int]] = []
    result = ce.rewrap_many_data_key({}, progress=lambda *p: calls.append(p))
    assert result.bulk_write_result is not None
    assert calls == [(3, 0), (3, 3)]
    calls.clear()
    ce.rewrap_many_data_key({"_id": uuid.uuid4()}, progress=lambda *p: calls.append(p))
    assert calls == [(0, 0)]
    with pytest.raises(TypeError, match="progress must be callable"):
        ce.rewrap_many_data_key({}, progress=3)  # type: ignore[arg-type]


@pytest.mark.requirement("CSE-CE-14", "CSE-QE-09", "CSE-QE-10", "CSE-QE-11")
def test_create_encrypted_collection_failure_carries_the_keys(
    ce: ClientEncryption, client: Any
) -> None:
    database = client[f"ece_{uuid.uuid4().hex[:6]}"]
    fields = {
        "fields": [
            {"path": "ssn", "bsonType": "string", "keyId": None},
            {"path": "dob", "bsonType": "date", "keyId": None},
        ]
    }
    if os.environ.get("MONGODB_URI"):
        pytest.skip("checks the failure path on SecantusDB, which refuses encryptedFields")
    with pytest.raises(EncryptedCollectionError) as info:
        ce.create_encrypted_collection(database, "people", fields, "local")
    filled = info.value.encrypted_fields
    ids = [f["keyId"] for f in filled["fields"]]
    assert all(isinstance(i, Binary) for i in ids) and all(ce.get_key(i) for i in ids)
    assert fields["fields"][0]["keyId"] is None  # the caller's document is left untouched
    with pytest.raises(TypeError, match="encrypted_fields must be a mapping"):
        ce.create_encrypted_collection(database, "people", None, "local")  # type: ignore[arg-type]  # a wrong type on purpose


@pytest.mark.requirement("CSE-CE-14")
def test_prose_21_case_1_simple_creation_on_a_real_server(
    ce: ClientEncryption, client: Any
) -> None:
    if not os.environ.get("MONGODB_URI"):
        pytest.skip(
            "needs a real mongod >= 7.0 through MONGODB_URI (SecantusDB refuses encryptedFields)"
        )
    database = client[f"ece_{uuid.uuid4().hex[:6]}"]
    _collection, filled = ce.create_encrypted_collection(
        database,
        "people",
        {"fields": [{"path": "ssn", "bsonType": "string", "keyId": None}]},
        "local",
    )
    assert isinstance(filled["fields"][0]["keyId"], Binary)
    assert "people" in database.list_collection_names()
    client.drop_database(database.name)


# -- KMS transport: TLS, concurrency, timeouts, proxies ---------------------------------------


@pytest.mark.requirement("CSE-TLS-01")
def test_wrong_ca_is_final_not_retried(make: Any, kms_setup: Any, tls: Any) -> None:
    recorder = Recorder()
    ce = make(
        kms_tls_options={**kms_setup.tls_options, "aws": {"tlsCAFile": str(tls.other_ca)}},
        event_listeners=[recorder],
    )
    with pytest.raises(MongoCryptKmsError, match="TLS certificate verification failed for KMS aws"):
        ce.create_data_key("aws", opts(kms_setup, "aws"))
    failures = [e for e in recorder.events if isinstance(e, KmsRequestFailed)]
    assert len(failures) == 1 and failures[0].retrying is False


def _aws_at(kms_setup: Any, endpoint: str) -> DataKeyOpts:
    return DataKeyOpts(master_key={**kms_setup.master_keys["aws:mock"], "endpoint": endpoint})


@pytest.mark.requirement("CSE-TLS-09")
def test_prose_10_invalid_kms_certificate(
    ce: ClientEncryption, kms_setup: Any, expired_kms: Any
) -> None:
    """Prose 10, invalid KMS certificate."""
    with pytest.raises(MongoCryptKmsError, match="certificate has expired"):
        ce.create_data_key("aws:mock", _aws_at(kms_setup, expired_kms.endpoint))


@pytest.mark.requirement("CSE-TLS-09")
def test_prose_10_invalid_hostname_in_kms_certificate(
    ce: ClientEncryption, kms_setup: Any, wrong_host_kms: Any
) -> None:
    """Prose 10, invalid hostname in KMS certificate."""
    with pytest.raises(MongoCryptKmsError, match="mismatch"):
        ce.create_data_key("aws:mock", _aws_at(kms_setup, wrong_host_kms.endpoint))


@pytest.mark.requirement("CSE-RETRY-03")
def test_requests_of_one_context_run_concurrently(
    ce: ClientEncryption, kms_setup: Any, cloud_kms: Any
) -> None:
    """A rewrap of five keys makes five KMS decrypt requests in one batch: they overlap."""
    for _ in range(5):
        ce.create_data_key("aws:mock", opts(kms_setup, "aws:mock"))
    cloud_kms.reset()
    cloud_kms.delay = 0.3
    try:
        started = time.monotonic()
        result = ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local"))
        elapsed = time.monotonic() - started
    finally:
        cloud_kms.delay = 0.0
    assert present(result.bulk_write_result).modified_count == 5
    assert cloud_kms.max_in_flight >= 2, cloud_kms.max_in_flight
    assert elapsed < 5 * 0.3, elapsed


@pytest.mark.requirement("CSE-CE-16", "CSE-CSOT-01", "CSE-CSOT-04")
def test_timeout_ms_bounds_a_stalled_kms(make: Any, kms_setup: Any, black_hole: str) -> None:
    ce = make(timeout_ms=500)
    started = time.monotonic()
    with pytest.raises(MongoCryptTimeoutError):
        ce.create_data_key("aws:mock", _aws_at(kms_setup, black_hole))
    assert time.monotonic() - started < 3


def test_pymongo_timeout_context_bounds_it_too(
    ce: ClientEncryption, kms_setup: Any, black_hole: str
) -> None:
    started = time.monotonic()
    with pytest.raises(MongoCryptTimeoutError), pymongo.timeout(0.5):
        ce.create_data_key("aws:mock", _aws_at(kms_setup, black_hole))
    assert time.monotonic() - started < 3


@pytest.mark.requirement("CSE-KCB-01", "CSE-KCB-02", "CSE-KCB-03", "CSE-KCB-04")
@pytest.mark.parametrize("proxy_tls", [False, True], ids=["plain-proxy", "tls-proxy"])
def test_http_proxy(make: Any, kms_setup: Any, tls: Any, cloud_kms: Any, proxy_tls: bool) -> None:
    """Prose 28's shape: KMS traffic goes through a CONNECT proxy; TLS runs end to end."""
    proxy = ConnectProxy(tls if proxy_tls else None)
    context = ssl.create_default_context(cafile=str(tls.ca)) if proxy_tls else None
    try:
        ce = make(kms_connect_callback=HttpProxyConnect("127.0.0.1", proxy.port, tls=context))
        key_id = ce.create_data_key("aws:mock", opts(kms_setup, "aws:mock"))
        assert (
            ce.decrypt(ce.encrypt("via proxy", EncryptOpts(Algorithm.RANDOM, key_id=key_id)))
            == "via proxy"
        )
        assert proxy.tunnels and set(proxy.tunnels) == {cloud_kms.endpoint}
    finally:
        proxy.close()


@pytest.mark.requirement("CSE-KCB-06", "CSE-RETRY-02")
def test_refusing_proxy_fails_after_retries(make: Any, kms_setup: Any) -> None:
    proxy = ConnectProxy()
    proxy.refuse = True
    calls: list[Any] = []
    connect = HttpProxyConnect("127.0.0.1", proxy.port)

    def counting(context: Any) -> Any:
        calls.append(context)
        return connect(context)

    try:
        ce = make(kms_connect_callback=counting)
        with pytest.raises(MongoCryptKmsError, match="refused CONNECT"):
            ce.create_data_key("aws:mock", opts(kms_setup, "aws:mock"))
    finally:
        proxy.close()
    assert len(calls) == 4  # the first attempt and libmongocrypt's three retries
    assert all(c.timeout <= 10 for c in calls)


# -- events ----------------------------------------------------------------------------------


def test_events_describe_traffic_without_secrets(make: Any, kms_setup: Any, cloud_kms: Any) -> None:
    recorder = Recorder()
    ce = make(event_listeners=[recorder])
    cloud_kms.set_failpoint("network", 1)
    key_id = ce.create_data_key("aws:mock", opts(kms_setup, "aws:mock"))
    ce.decrypt(ce.encrypt("top secret plaintext", EncryptOpts(Algorithm.RANDOM, key_id=key_id)))
    kinds = [type(e) for e in recorder.events]
    assert kinds[:4] == [
        KmsRequestStarted,
        KmsRequestFailed,
        KmsRequestStarted,
        KmsRequestSucceeded,
    ]
    assert recorder.events[1].retrying and recorder.events[2].attempt == 2
    assert KeyVaultOperationStarted in kinds and KeyVaultOperationSucceeded in kinds
    inserts = [e for e in recorder.events if getattr(e, "operation", "") == "insert"]
    assert inserts[-1].documents == 1
    text = repr(recorder.events)
    for secret in ("mock", "top secret plaintext", repr(kms_setup.providers["local"]["key"])):
        assert secret not in text.replace("aws:mock", "").replace("mock-key", "")


def test_a_failing_listener_does_not_break_the_operation(make: Any, caplog: Any) -> None:
    class Broken(EncryptionEventListener):
        def key_vault_operation_started(self, event: Any) -> None:
            raise RuntimeError("listener bug")

    ce = make(event_listeners=[Broken()])
    assert ce.create_data_key("local").subtype == 4
    assert "listener bug" in caplog.text


# -- async -----------------------------------------------------------------------------------


@pytest.mark.requirement("CSE-CE-15")
def test_async_client_encryption(
    mongodb_uri: str, kms_setup: Any, tls: Any, cloud_kms: Any
) -> None:
    async def scenario() -> None:
        client: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(mongodb_uri)
        name = f"ace_{uuid.uuid4().hex[:8]}"
        proxy = ConnectProxy()
        async with AsyncClientEncryption(
            kms_setup.providers,
            f"{name}.keys",
            client,
            kms_tls_options=kms_setup.tls_options,
            kms_connect_callback=AsyncHttpProxyConnect("127.0.0.1", proxy.port),
        ) as ace:
            ids = [
                await ace.create_data_key(p, opts(kms_setup, p, key_alt_names=[p]))
                for p in ("local", "aws:mock", "kmip")
            ]
            ciphertexts = await asyncio.gather(
                *(
                    ace.encrypt(f"v{i}", EncryptOpts(Algorithm.RANDOM, key_id=k))
                    for i, k in enumerate(ids)
                )
            )
            assert await asyncio.gather(*(ace.decrypt(c) for c in ciphertexts)) == [
                "v0",
                "v1",
                "v2",
            ]
            assert present(await ace.get_key_by_alt_name("kmip"))["_id"] == ids[2]
            by_name = EncryptOpts(Algorithm.INDEXED, key_alt_name="local", contention_factor=0)
            assert await ace.decrypt(await ace.encrypt("qe", by_name)) == "qe"
            progress: list[tuple[int, int]] = []
            assert len([k async for k in ace.get_keys()]) == 3
            await ace.add_key_alt_name(ids[0], "extra")
            await ace.remove_key_alt_name(ids[0], "extra")
            result = await ace.rewrap_many_data_key(
                {}, RewrapManyDataKeyOpts("local:second"), progress=lambda *p: progress.append(p)
            )
            assert present(result.bulk_write_result).modified_count == 3
            assert progress == [(3, 0), (3, 3)]
            assert (await ace.delete_key(ids[1])).deleted_count == 1
            assert cloud_kms.endpoint in proxy.tunnels
        proxy.close()
        await client.drop_database(name)
        await client.close()

    asyncio.run(scenario())


class CommandLog(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[Any] = []

    def started(self, event: Any) -> None:
        self.commands.append(event.command)

    def succeeded(self, event: Any) -> None: ...

    def failed(self, event: Any) -> None: ...


@pytest.mark.requirement("CSE-KV-02", "CSE-KV-03")
def test_every_key_vault_operation_is_majority(mongodb_uri: str, namespace: str) -> None:
    log = CommandLog()
    with (
        pymongo.MongoClient[Any](mongodb_uri, event_listeners=[log]) as client,
        ClientEncryption(
            {"local": {"key": os.urandom(96)}, "local:b": {"key": os.urandom(96)}},
            namespace,
            client,
        ) as ce,
    ):
        key_id = ce.create_data_key("local")
        ce.encrypt(1, EncryptOpts(Algorithm.RANDOM, key_id=key_id))
        ce.get_key(key_id)
        ce.get_key_by_alt_name("x")
        list(ce.get_keys())
        ce.add_key_alt_name(key_id, "x")
        ce.remove_key_alt_name(key_id, "x")
        ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local:b"))
        ce.delete_key(key_id)
    names = {"find", "insert", "findAndModify", "update", "delete"}
    seen = [c for c in log.commands if next(iter(c)) in names]
    assert {next(iter(c)) for c in seen} == names
    for command in seen:
        if next(iter(command)) == "find":
            assert command["readConcern"] == {"level": "majority"}, command
        else:
            assert command["writeConcern"] == {"w": "majority"}, command


@pytest.mark.requirement("CSE-KCB-05")
def test_connect_callback_gets_the_remaining_budget(make: Any, kms_setup: Any) -> None:
    budgets: list[float] = []
    connect = HttpProxyConnect("127.0.0.1", 9)  # nothing listens: every attempt fails fast

    def recording(context: Any) -> Any:
        budgets.append(context.timeout)
        return connect(context)

    ce = make(kms_connect_callback=recording, timeout_ms=2000)
    with pytest.raises(MongoCryptError):
        ce.create_data_key("aws:mock", opts(kms_setup, "aws:mock"))
    assert budgets and all(0 < b <= 2.0 for b in budgets), budgets


@pytest.mark.requirement("CSE-KV-05")
def test_key_management_creates_no_index(client: pymongo.MongoClient[Any], kms_setup: Any) -> None:
    """Not even the keyAltNames unique index the spec recommends: that needs createIndex rights."""
    name = f"ce_{uuid.uuid4().hex[:8]}"
    try:
        with ClientEncryption(kms_setup.providers, f"{name}.keys", client) as ce:
            key_id = ce.create_data_key("local", DataKeyOpts(key_alt_names=["a"]))
            ce.add_key_alt_name(key_id, "b")
            ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local"))
            ce.decrypt(ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_alt_name="b")))
        assert [index["name"] for index in client[name].keys.list_indexes()] == ["_id_"]
    finally:
        client.drop_database(name)


@pytest.mark.requirement("CSE-DK-09")
def test_rewrap_master_key_must_suit_the_provider(ce: ClientEncryption, kms_setup: Any) -> None:
    """A masterKey for a local provider is refused, and so is one lacking the provider's fields;
    the keys are left as they were."""
    key_id = ce.create_data_key("local")
    before = ce.get_key(key_id)
    with pytest.raises(MongoCryptError, match="Unexpected field: 'key'"):
        ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local", {"key": "x"}))
    with pytest.raises(MongoCryptError, match="expected UTF-8 key"):  # aws needs "key"
        ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("aws", {"region": "us-east-1"}))
    assert ce.get_key(key_id) == before


#: Each ClientEncryption operation, the key-vault commands it sends, and how to run it with a
#: key ``key_id`` (alt name "k") already in the vault.
CE_OPERATIONS: dict[str, tuple[list[str], Any]] = {
    "create_data_key": (["insert"], lambda ce, key_id, c: ce.create_data_key("local")),
    "encrypt": (
        ["find"],
        lambda ce, key_id, c: ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id)),
    ),
    "encrypt_expression": (
        ["find"],
        lambda ce, key_id, c: ce.encrypt_expression(
            {"$and": [{"v": {"$gt": 1}}]},
            EncryptOpts(
                Algorithm.RANGE,
                key_id=key_id,
                contention_factor=0,
                query_type="range",
                range_opts=RangeOpts(min=0, max=100, sparsity=1, trim_factor=1),
            ),
        ),
    ),
    "decrypt": (["find"], lambda ce, key_id, c: ce.decrypt(c)),
    "get_key": (["find"], lambda ce, key_id, c: ce.get_key(key_id)),
    "get_keys": (["find", "getMore"], lambda ce, key_id, c: list(ce.get_keys())),
    "get_key_by_alt_name": (["find"], lambda ce, key_id, c: ce.get_key_by_alt_name("k")),
    "add_key_alt_name": (["findAndModify"], lambda ce, key_id, c: ce.add_key_alt_name(key_id, "j")),
    "remove_key_alt_name": (
        ["findAndModify"],
        lambda ce, key_id, c: ce.remove_key_alt_name(key_id, "k"),
    ),
    "delete_key": (["delete"], lambda ce, key_id, c: ce.delete_key(key_id)),
    "rewrap_many_data_key": (
        ["find", "update"],
        lambda ce, key_id, c: ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local")),
    ),
}


@pytest.mark.requirement("CSE-CSOT-04")
@pytest.mark.parametrize(
    "operation",
    list(CE_OPERATIONS),
)
def test_timeout_ms_bounds_every_operation(
    failpoint_uri: str, kms_setup: Any, operation: str
) -> None:
    """A key-vault server that holds each command for 3 s: every operation gives up within its
    500 ms budget with a timeout error."""
    commands, run = CE_OPERATIONS[operation]
    name = f"ce_{uuid.uuid4().hex[:8]}"
    providers = {"local": kms_setup.providers["local"]}
    with pymongo.MongoClient[Any](failpoint_uri) as client:
        with ClientEncryption(providers, f"{name}.keys", client) as setup:
            key_id = setup.create_data_key("local", DataKeyOpts(key_alt_names=["k"]))
            ciphertext = setup.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
        try:
            with ClientEncryption(providers, f"{name}.keys", client, timeout_ms=500) as ce:
                client.admin.command(
                    "configureFailPoint",
                    "failCommand",
                    mode="alwaysOn",
                    data={"failCommands": commands, "blockConnection": True, "blockTimeMS": 3000},
                )
                started = time.monotonic()
                with pytest.raises((MongoCryptError, PyMongoError)) as raised:
                    run(ce, key_id, ciphertext)
                elapsed = time.monotonic() - started
        finally:
            client.admin.command("configureFailPoint", "failCommand", mode="off")
            client.drop_database(name)
    assert _timed_out(raised.value), repr(raised.value)
    assert elapsed < 2.5


def _timed_out(error: Optional[BaseException]) -> bool:
    """Whether the error, or one behind it, is a timeout (a key-vault failure wraps pymongo's)."""
    while error is not None:
        if isinstance(error, TimeoutError) or getattr(error, "timeout", False) is True:
            return True
        error = error.__cause__
    return False
