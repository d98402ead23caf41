"""Coverage-guided fuzzing (atheris) of every entry point hostile input reaches: explicit
decryption, automatic decryption of server replies (and of the key documents a server returns),
explicit encryption options, KMS replies, the pymongocrypt facade as pymongo drives it, and the
embedded query analyzer. The harnesses live in fuzz/ (see tests/fuzz/README.md).

The bounded run here: ``tests/fuzz/run.py`` runs every harness in a subprocess (two at a time) for
``MONGOCRYPT_FUZZ_TOTAL`` inputs in all (default 200,000; at least 100,000 are required) over the
committed corpus, in memory (no network); each harness must exit cleanly: no crash, hang, leaked
context, or exception other than the project's typed errors. The long run (>= 1M inputs) is
``python tests/fuzz/run.py --total 1000000 --update-corpus``.

Bugs the fuzzers found have their own regression tests below (xfail, strict, until fixed); the
harnesses count and skip inputs hitting exactly those bugs, so they keep looking for new ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Binary, Code

from conftest import DETERMINISTIC, RANDOM, v
from mongocrypt import ClientEncryption, EncryptOpts, MongoCryptError, RangeOpts, StringOpts
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCrypt, MongoCryptOptions, libmongocrypt_version

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tests" / "fuzz"
HARNESSES = ["explicit_decrypt", "auto_decrypt", "encrypt_options", "kms_reply", "facade"]
TOTAL = int(os.environ.get("MONGOCRYPT_FUZZ_TOTAL", "200000"))
MINIMUM_TOTAL = 100_000


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


needs_atheris = pytest.mark.skipif(
    not _has_atheris(), reason="atheris is not installed (pip install atheris; test extra)"
)


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("fuzz")
    report = directory / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "run.py"),
            "--total",
            str(TOTAL),
            "--jobs",
            "2",
            "--json",
            str(report),
            "--artifacts",
            str(directory / "artifacts"),
            "--timeout",
            "600",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert report.exists(), (
        f"tests/fuzz/run.py failed before reporting:\n{done.stdout}\n{done.stderr}"
    )
    results = {r["harness"]: r for r in json.loads(report.read_text())}
    print(done.stdout)
    return results


def _check(results: dict[str, Any], harness: str) -> None:
    result = results[harness]
    if result["status"] == "skipped":
        pytest.skip(f"{harness}: {result['detail']}")
    assert result["status"] == "ok", (
        f"the {harness} harness failed; crashing inputs: {result['artifacts']} "
        f"(replay: python tests/fuzz/fuzz_{harness}.py FILE)\n{result['detail']}"
    )
    assert result["inputs"] >= result["runs_requested"], result


@needs_atheris
@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_survives_its_inputs(fuzz_results: dict[str, Any], harness: str) -> None:
    _check(fuzz_results, harness)


@needs_atheris
def test_analyzer_harness(fuzz_results: dict[str, Any]) -> None:
    _check(fuzz_results, "analyzer")


@needs_atheris
def test_enough_inputs_in_all(fuzz_results: dict[str, Any]) -> None:
    total = sum(r["inputs"] for r in fuzz_results.values())
    assert total >= min(MINIMUM_TOTAL, TOTAL), fuzz_results


def test_every_harness_has_a_corpus() -> None:
    for harness in [*HARNESSES, "analyzer"]:
        corpus = FUZZ / "corpus" / harness
        files = list(corpus.iterdir())
        assert files, f"{corpus} is empty: run python tests/fuzz/seeds.py"
        assert sum(f.stat().st_size for f in files) < 1_000_000, "keep the corpus small"


# -- bugs the fuzzers found --------------------------------------------------------------------

_EMPTY_BUFFER_SCRIPT = """
import os
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import AutoEncrypter, MongoCrypt, MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO
providers = {"local": {"key": os.urandom(96)}}
auto = AutoEncrypter(InMemoryIO(), MongoCryptOptions(providers, crypt_shared_lib_search_paths=[]))
explicit = ExplicitEncrypter(InMemoryIO(), MongoCryptOptions(providers, bypass_encryption=True))
calls = {
    "AutoEncrypter.decrypt": lambda: auto.decrypt(b""),
    "AutoEncrypter.encrypt": lambda: auto.encrypt("db", b""),
    "ExplicitEncrypter.encrypt": lambda: explicit.encrypt(
        b"", "AEAD_AES_256_CBC_HMAC_SHA_512-Random", key_id=bytes(16)),
    "schema_map": lambda: MongoCrypt(MongoCryptOptions(providers, schema_map=b"")),
    "encrypted_fields_map": lambda: MongoCrypt(
        MongoCryptOptions(providers, encrypted_fields_map=b"")),
}
try:
    calls[{name!r}]()
except (MongoCryptError, TypeError, ValueError) as exc:
    print("typed error:", type(exc).__name__, exc)
"""


@pytest.mark.parametrize(
    "entry_point",
    [
        "AutoEncrypter.decrypt",
        "AutoEncrypter.encrypt",
        "ExplicitEncrypter.encrypt",
        "schema_map",
        "encrypted_fields_map",
    ],
)
def test_an_empty_buffer_is_a_typed_error_not_an_abort(entry_point: str) -> None:
    """Found by fuzz_auto_decrypt.py: an empty buffer passed as BSON aborted the process (libbson's
    'bson_init_static(): assertion failed: data'); fixed in e6cf0b9 (engine/binary.py)."""
    script = "from mongocrypt.errors import MongoCryptError\n" + textwrap.dedent(
        _EMPTY_BUFFER_SCRIPT
    ).replace("{name!r}", repr(entry_point))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr.strip()}"
    assert "typed error: " in done.stdout


@pytest.fixture
def local_encrypter(encrypter: ExplicitEncrypter) -> tuple[ExplicitEncrypter, bytes]:
    key_id = encrypter.create_data_key("local", key_alt_names=["fuzz"])
    return encrypter, bytes(key_id)


@pytest.mark.parametrize("contention", [2**63, -(2**63) - 1])
def test_engine_contention_factor_out_of_range(
    local_encrypter: tuple[ExplicitEncrypter, bytes], contention: int
) -> None:
    """Found by fuzz_encrypt_options.py: escaped as OverflowError from cffi; fixed in 7b745fb."""
    encrypter, key_id = local_encrypter
    with pytest.raises((ValueError, MongoCryptError)):
        encrypter.encrypt(v(1), "Indexed", key_id=key_id, contention_factor=contention)


@pytest.fixture
def offline_client_encryption() -> Any:
    """A ClientEncryption whose key vault client never connects (these errors come first)."""
    from pymongo import MongoClient

    client: Any = MongoClient("mongodb://127.0.0.1:9", connect=False, serverSelectionTimeoutMS=1)
    with ClientEncryption({"local": {"key": os.urandom(96)}}, "kv.keys", client) as ce:
        yield ce
    client.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"min": 0, "max": 10, "sparsity": 2**64},
        {"min": 0, "max": 10, "trim_factor": 2**63},
        {"min": 0.0, "max": 1.0, "precision": 2**63},
    ],
    ids=["sparsity", "trim_factor", "precision"],
)
def test_range_int_options_out_of_range_name_the_option(fields: dict[str, Any]) -> None:
    """Found by fuzz_encrypt_options.py: escaped as OverflowError from bson.encode."""
    (name,) = set(fields) - {"min", "max"}
    with pytest.raises(ValueError, match=name):
        RangeOpts(**fields)


def test_contention_factor_out_of_range(offline_client_encryption: Any) -> None:
    key_id = Binary(bytes(16), 4)
    with pytest.raises(ValueError, match="contention_factor"):  # refused when built
        encrypt_opts = EncryptOpts("Indexed", key_id=key_id, contention_factor=2**63)
        offline_client_encryption.encrypt(1, encrypt_opts)


def test_key_expiration_out_of_range() -> None:
    with pytest.raises(ValueError, match="key_expiration_ms"):
        MongoCrypt(MongoCryptOptions({"local": {"key": os.urandom(96)}}, key_expiration_ms=2**64))


@pytest.mark.parametrize("algorithm", [DETERMINISTIC, RANDOM])
def test_javascript_code_with_nul_is_refused(
    local_encrypter: tuple[ExplicitEncrypter, bytes], algorithm: str
) -> None:
    encrypter, key_id = local_encrypter
    value = v(Code("a\x00b"))
    with pytest.raises(ValueError, match="NUL"):  # libmongocrypt would truncate it at the NUL
        encrypter.encrypt(value, algorithm, key_id=key_id)
    with_scope = v(Code("a\x00b", {"x": 1}))
    with pytest.raises(ValueError, match="NUL"):
        encrypter.encrypt(with_scope, algorithm, key_id=key_id)
    wholes = [v(Code("ab"))] + ([v(Code("ab", {"x": 1}))] if algorithm == RANDOM else [])
    for whole in wholes:  # Deterministic refuses code with scope itself
        assert encrypter.decrypt(encrypter.encrypt(whole, algorithm, key_id=key_id)) == whole


def _analyze() -> Any:
    from mongocrypt.analysis import analyze

    return analyze


@pytest.mark.parametrize("field", ["f", "ssn"])
def test_analyzer_handles_an_empty_projection_expression(field: str) -> None:
    """Found by fuzz_analyzer.py: ``{"$project": {"f": {}}}`` let StopIteration escape
    (``next(iter(value))`` on the empty mapping in analysis/_pipeline.py); fixed since. The
    analyzer must refuse it with its typed error or answer with a complete reply."""
    analyze = _analyze()
    schema = {
        "bsonType": "object",
        "properties": {
            "ssn": {
                "encrypt": {
                    "keyId": [Binary(bytes(16), 4)],
                    "bsonType": "string",
                    "algorithm": DETERMINISTIC,
                }
            }
        },
    }
    command = {
        "aggregate": "coll",
        "pipeline": [{"$project": {field: {}}}],
        "cursor": {},
        "jsonSchema": schema,
        "isRemoteSchema": False,
    }
    try:
        reply = analyze(command)
    except MongoCryptError:
        return
    assert isinstance(reply["result"], dict)
    assert reply["result"]["pipeline"] == [{"$project": {field: {}}}]


# -- native crashes: replayed through the harness in a subprocess -------------------------------

FALLBACK = libmongocrypt_version().startswith("1.13.")


def _segment(reply: bytes) -> bytes:
    """One KMS attempt's bytes in fuzz_kms_reply.py's layout."""
    return len(reply).to_bytes(2, "little") + reply


def _http(body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()  # compact, as Google's replies
    return _segment(f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)


#: A KMIP Get response whose nested BatchItem length (0x800000e8) overruns its structure
#: (found by fuzz_kms_reply.py, minimized by libFuzzer): harness layout, scenario 7 (kmip key
#: decryption).
_KMIP_NESTED_LENGTHS = bytes.fromhex(
    "070000380142007b010000013042007a0100000038420069010100002042006a020000000400000001000000"
    "0042006b0200000004000000000000000042000d020000000400000001ffffffff42000f01800000e842005c"
    "05000000040000000a0000000042007f050000000400000000000000004200002042006a0200000004000000"
    "070000000042009407000000057569c0420057f4d75f5739884e09f0da35e1607c01000000c0420057050000"
    "0004000000070000e9bace1de5f9ee59711760712590bf000042004501000000684200430860149ca0e9ce1d"
    "e5f9ee59711730d7b4fa4203eea402dda25c06ad8062be27466d89b0a7147169e15879f7b685b093837403f1"
    "66b66e49eba5c220f4d75f5739884e09f0da35e1607c01000000c04200570500000004070000e9bace1de5f9"
    "ee59711760712590bf"
)


def _replay(harness: str, data: bytes) -> None:
    """Run one input through a harness in a fresh process, known-bug filters off: it must
    survive (a typed error is fine; an abort or segfault is not)."""
    code = (
        f"import sys; sys.path.insert(0, {str(FUZZ)!r}); import fuzz_{harness} as h; "
        f"h.TestOneInput(bytes.fromhex({data.hex()!r})); print('survived')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FUZZ_STRICT_KNOWN_BUGS": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 0, f"exit status {done.returncode}: {lines[-1] if lines else ''}"
    assert "survived" in done.stdout


_GCP_SCRIPT = """
import base64, json, sys
from bson import json_util
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO
import bson

operation, field, body = sys.argv[1], sys.argv[2], sys.argv[4].replace("FIELD", sys.argv[2])
der = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
providers = {"gcp": {"email": "a@b.iam.gserviceaccount.com",
                     "privateKey": base64.b64encode(der).decode()}}

def http(body):
    return b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body)

def run(depth):
    if depth:
        return run(depth - 1)  # vary the stack under the native call
    replies = [http(b'{"access_token":"t","expires_in":3599,"token_type":"Bearer"}'),
               http(body.encode())]
    io = InMemoryIO(kms={"gcp": lambda request: replies.pop(0) if replies else b""})
    encrypter = ExplicitEncrypter(io, MongoCryptOptions(providers, bypass_encryption=True))
    try:
        if operation == "encrypt":
            encrypter.create_data_key("gcp", master_key={
                "projectId": "p", "location": "global", "keyRing": "r", "keyName": "k"})
        else:
            key = json_util.loads(open(sys.argv[3]).read())
            io.keys.append(bson.encode(key))
            encrypter.encrypt(bson.encode({"v": 1}), "AEAD_AES_256_CBC_HMAC_SHA_512-Random",
                              key_id=bytes(key["_id"]))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"

for depth in range(0, 40, 3):
    print(run(depth), flush=True)
"""


#: GCP reply bodies whose key field (FIELD) is not base64, as Python's json and libbson's
#: parser could read them differently: duplicates (libmongocrypt reads the first) and a raw
#: control character in another string; and as Python's decoder and libmongocrypt's differ: a
#: non-canonical last quantum (nonzero bits after the last byte: the form the fuzzer found on
#: 2026-12-06, tests/fuzz/corpus/kms_reply/gcp-noncanonical-base64) and a character Python
#: counts as whitespace but C's isspace() does not.
_GCP_BODIES = {
    "single": '{"FIELD":"AAEC~wQF"}',
    "duplicate": '{"FIELD":"AAEC~wQF","FIELD":"AAAA"}',
    "control character": '{"name":"a\tb","FIELD":"AAEC~wQF"}',
    "non-canonical": '{"FIELD":"AAECAAC="}',
    "python-only whitespace": '{"FIELD":"AAEC\\u001cAwQF"}',
}


@pytest.mark.parametrize("body", _GCP_BODIES.values(), ids=list(_GCP_BODIES))
@pytest.mark.parametrize(
    ("operation", "field"), [("encrypt", "ciphertext"), ("decrypt", "plaintext")]
)
def test_gcp_reply_with_invalid_base64_is_a_clear_kms_error(
    operation: str, field: str, body: str
) -> None:
    """The guard catches every form of the reply that would abort libmongocrypt (1.13 to
    1.21): a duplicated key field once aborted the process with "_ctx_done_gcp(): assertion
    failed: outlen <= UINT32_MAX"."""
    key_document = ROOT / "tests" / "data" / "libmongocrypt" / "key-document-gcp.json"
    done = subprocess.run(
        [sys.executable, "-c", _GCP_SCRIPT, operation, field, str(key_document), body],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 0, f"exit status {done.returncode}: {lines[-1] if lines else ''}"
    for outcome in done.stdout.splitlines():
        assert outcome.startswith("MongoCryptKmsError"), outcome
        assert "network error" not in outcome, outcome


@pytest.mark.xfail(
    FALLBACK,
    strict=True,
    raises=AssertionError,
    reason="bug (libmongocrypt 1.13.2, the fallback pin; 1.21.1 is fine): decrypting a malformed "
    "FLE2 indexed ciphertext (BSON binary subtype 6 starting with blob subtype 14, 15 or 17 and "
    "at least 18 bytes, e.g. 0x0e + 17 zero bytes) aborts the process (SIGABRT, 'The parameter: "
    "metadata, in function mc_FLE2TagAndEncryptedMetadataBlock_cleanup, cannot be NULL'), "
    "explicitly or while auto-decrypting a server reply",
)
@pytest.mark.parametrize("harness", ["explicit_decrypt", "auto_decrypt"])
def test_malformed_fle2_indexed_ciphertext_is_an_error(harness: str) -> None:
    blob = Binary(b"\x0e" + bytes(17), 6)
    if harness == "explicit_decrypt":
        _replay(harness, b"\x00" + bytes(blob))
    else:
        reply = bson.encode({"cursor": {"firstBatch": [{"x": blob}], "id": 0}, "ok": 1})
        _replay(harness, b"\x00" + reply)


@pytest.mark.xfail(
    FALLBACK,
    strict=True,
    raises=AssertionError,
    reason="bug (libmongocrypt 1.13.2, the fallback pin; 1.21.1 says 'KMS KMIP response too "
    "large'): a KMIP reply whose length field is 2**31 or more aborts the process (SIGABRT, "
    "'want_bytes_pending <= (uint32_t) INT32_MAX failed'; near 2**32 'parser->first_len <= "
    "UINT32_MAX - KMS_KMIP_RESPONSE_PARSER_FIRST_LENGTH failed'); below that it asks for up to "
    "2 GiB of reply",
)
@pytest.mark.parametrize("length", [0x80000000, 0xFFFFFFF8], ids=["2**31", "2**32-8"])
def test_kmip_reply_with_a_huge_length_is_an_error(length: int) -> None:
    reply = bytes.fromhex("42007b01") + length.to_bytes(4, "big") + bytes(64)
    _replay("kms_reply", bytes([6, 0, 0]) + _segment(reply))


@pytest.mark.xfail(
    FALLBACK,
    strict=True,
    raises=AssertionError,
    reason="bug (libmongocrypt 1.13.2, the fallback pin; 1.21.1 is fine): a KMIP Get reply whose "
    "nested item lengths overrun their structure crashes the process with SIGSEGV inside "
    "mongocrypt_kms_ctx_feed (an out-of-bounds read in the KMIP response parsing)",
)
def test_kmip_reply_with_overrunning_nested_lengths_is_an_error() -> None:
    _replay("kms_reply", _KMIP_NESTED_LENGTHS)


def test_string_opts_lengths_must_fit_an_int32() -> None:
    """Found by fuzz_encrypt_options.py: a length past int32 escaped as OverflowError."""
    with pytest.raises(ValueError, match=r"prefix\['strMaxQueryLength'\]"):
        StringOpts(True, True, prefix={"strMinQueryLength": 2, "strMaxQueryLength": 2**63})
    with pytest.raises(TypeError, match=r"substring\['strMaxLength'\]"):
        StringOpts(
            True,
            True,
            substring={"strMaxLength": "10", "strMinQueryLength": 2, "strMaxQueryLength": 5},  # type: ignore[dict-item]  # on purpose
        )
