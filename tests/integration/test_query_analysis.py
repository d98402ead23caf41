"""Which query analyzer automatic encryption uses, on real pymongo clients: the modes that must not
search for crypt_shared do not load one planted on the library path, ``"auto"`` falls back to the
embedded analyzer when no mongocryptd can be spawned (and says so), and failures of the analyzer
are a distinct error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from bson import Binary
from pymongo.encryption_options import AutoEncryptionOpts as PymongoAutoEncryptionOpts
from pymongo.errors import EncryptionError

from helpers.peers.process import free_port, port_open
from mongocrypt import ClientEncryption, QueryAnalysisError, _env, cryptd
from mongocrypt.auto_encryption import AutoEncryptionOpts

CRYPTD = Path(sys.executable).with_name("mongocrypt-cryptd")
LOGGER = "mongocrypt.auto_encryption"

#: A stand-in crypt_shared: it only records, from a constructor, that it was loaded.
STAND_IN = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void loaded(void) {
    const char *path = getenv("STAND_IN_MARK");
    FILE *file = path ? fopen(path, "w") : NULL;
    if (file) { fputs("loaded\n", file); fclose(file); }
}
"""

#: A stand-in crypt_shared that loads and refuses every command, as crypt_shared refuses what
#: automatic encryption cannot do (mongocryptd's code 51118, an operator it does not support).
REFUSING = r"""
#include <stdint.h>
#include <stddef.h>
typedef struct { int error; int code; const char *explanation; } status_t;
static status_t statuses[64];
static int next_status;
static int lib_handle, analyzer_handle;
uint64_t mongo_crypt_v1_get_version(void) { return (uint64_t)8 << 48; }
const char *mongo_crypt_v1_get_version_str(void) { return "stand-in-8.0.0"; }
status_t *mongo_crypt_v1_status_create(void) {
    status_t *s = &statuses[next_status++ % 64];
    s->error = 0; s->code = 0; s->explanation = "";
    return s;
}
void mongo_crypt_v1_status_destroy(status_t *s) { (void)s; }
int mongo_crypt_v1_status_get_error(const status_t *s) { return s->error; }
const char *mongo_crypt_v1_status_get_explanation(const status_t *s) { return s->explanation; }
int mongo_crypt_v1_status_get_code(const status_t *s) { return s->code; }
void *mongo_crypt_v1_lib_create(status_t *s) { (void)s; return &lib_handle; }
int mongo_crypt_v1_lib_destroy(void *lib, status_t *s) { (void)lib; (void)s; return 0; }
void *mongo_crypt_v1_query_analyzer_create(void *lib, status_t *s) {
    (void)lib; (void)s; return &analyzer_handle;
}
void mongo_crypt_v1_query_analyzer_destroy(void *qa) { (void)qa; }
uint8_t *mongo_crypt_v1_analyze_query(void *qa, const uint8_t *doc, const char *ns,
                                      uint32_t ns_len, uint32_t *len, status_t *s) {
    (void)qa; (void)doc; (void)ns; (void)ns_len; (void)len;
    s->error = 2; s->code = 51118; s->explanation = "stand-in crypt_shared refuses the command";
    return NULL;
}
void mongo_crypt_v1_bson_free(uint8_t *bson) { (void)bson; }
"""

#: Inserts through a client whose analyzer is the refusing crypt_shared; prints the error.
REFUSED_INSERT = """
import sys, pymongo
from mongocrypt.auto_encryption import AutoEncryptionOpts
uri, library, namespace = sys.argv[1:4]
database = namespace.split(".")[0]
opts = AutoEncryptionOpts(
    {"local": {"key": b"k" * 96}}, database + ".keys", query_analysis="crypt_shared",
    crypt_shared_lib_path=library,
    schema_map={namespace: {"bsonType": "object", "properties": {}}},
)
with pymongo.MongoClient(uri, auto_encryption_opts=opts) as client:
    try:
        client[database].people.insert_one({"ssn": "123-45-6789"})
    except pymongo.errors.EncryptionError as exc:
        cause = exc.cause
        print(type(cause).__name__, isinstance(exc, pymongo.errors.EncryptionError), cause)
"""

#: Builds a client (no server needed: the handle is configured when the client is created).
CLIENT = """
import sys, pymongo
from mongocrypt.auto_encryption import AutoEncryptionOpts
from pymongo.encryption_options import AutoEncryptionOpts as Pymongo
mode = sys.argv[1]
providers = {"local": {"key": b"k" * 96}}
if mode == "pymongo":
    opts = Pymongo(providers, "kv.keys")
else:
    opts = AutoEncryptionOpts(providers, "kv.keys", query_analysis=mode)
try:
    pymongo.MongoClient("mongodb://127.0.0.1:9", auto_encryption_opts=opts, connect=False).close()
except Exception as exc:
    print(type(exc).__name__, exc)
"""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a stand-in ``mongo_crypt_v1.so``, compiled here."""
    directory = tmp_path_factory.mktemp("crypt_shared")
    (directory / "stand_in.c").write_text(STAND_IN)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(directory / "mongo_crypt_v1.so"), "stand_in.c"],
        cwd=directory,
        check=True,
    )
    return directory


def _loaded_in(stand_in: Path, mode: str, **env: str) -> bool:
    mark = stand_in / f"loaded-{mode}-{uuid.uuid4().hex}"
    environment = {**os.environ, "LD_LIBRARY_PATH": str(stand_in), "STAND_IN_MARK": str(mark)}
    environment.pop(_env.QUERY_ANALYSIS, None)
    environment.update(env)
    subprocess.run([sys.executable, "-c", CLIENT, mode], env=environment, check=True, timeout=60)
    return mark.exists()


@pytest.mark.requirement("CSE-SHL-09")
@pytest.mark.parametrize("mode", ["embedded", "mongocryptd", "none"])
def test_modes_that_do_not_search_never_load_crypt_shared(stand_in: Path, mode: str) -> None:
    """CSE-SHL-09: the specification's drivers cannot opt out of crypt_shared; mongocrypt's modes
    other than "auto" and "crypt_shared" do: one on the library path is never loaded."""
    assert not _loaded_in(stand_in, mode)


@pytest.mark.parametrize("mode", ["embedded", "mongocryptd", "none"])
def test_the_environment_variable_does_the_same_for_pymongos_options(
    stand_in: Path, mode: str
) -> None:
    assert not _loaded_in(stand_in, "pymongo", **{_env.QUERY_ANALYSIS: mode})


@pytest.mark.requirement("CSE-SHL-02")
@pytest.mark.parametrize("mode", ["auto", "crypt_shared"])
def test_auto_and_crypt_shared_search_the_system(stand_in: Path, mode: str) -> None:
    """CSE-SHL-02: the default search path ($SYSTEM) finds the library on the library path (the
    stand-in is not a real crypt_shared, so it is then not used)."""
    assert _loaded_in(stand_in, mode)


# -- "auto" on real clients ------------------------------------------------------------------


@pytest.fixture
def vault(mongodb_uri: str) -> Iterator[dict[str, Any]]:
    """A key vault with one local key and the schema of ``<db>.people`` encrypting ``ssn``."""
    name = f"qa_{uuid.uuid4().hex[:8]}"
    local = {"local": {"key": os.urandom(96)}}
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        with ClientEncryption(local, f"{name}.keys", client) as ce:
            key_id = ce.create_data_key("local")
        schema = {
            "bsonType": "object",
            "properties": {
                "ssn": {
                    "encrypt": {
                        "keyId": [key_id],
                        "bsonType": "string",
                        "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic",
                    }
                }
            },
        }
        yield {
            "client": client,
            "db": name,
            "providers": local,
            "namespace": f"{name}.keys",
            "schema_map": {f"{name}.people": schema},
        }
        client.drop_database(name)


def _analysis_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def _insert_and_check(uri: str, opts: Any, vault: dict[str, Any]) -> float:
    """Insert through an encrypting client; the server must hold ciphertext. Returns seconds."""
    started = time.monotonic()
    with pymongo.MongoClient[Any](uri, auto_encryption_opts=opts) as client:
        client[vault["db"]].people.insert_one({"_id": 1, "ssn": "123-45-6789"})
        found = client[vault["db"]].people.find_one({"ssn": "123-45-6789"})
        assert found is not None and found["_id"] == 1
    elapsed = time.monotonic() - started
    stored = vault["client"][vault["db"]].people.find_one({"_id": 1})
    assert isinstance(stored["ssn"], Binary) and stored["ssn"].subtype == 6
    return elapsed


def test_pymongos_options_without_mongocryptd_use_the_embedded_analyzer(
    mongodb_uri: str,
    vault: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Unchanged pymongo code on a machine without mongocryptd: instead of failing after the
    10 s server selection timeout, the facade uses the embedded analyzer and warns, once."""
    monkeypatch.delenv(_env.QUERY_ANALYSIS, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # certainly no mongocryptd on it
    opts = PymongoAutoEncryptionOpts(
        vault["providers"], vault["namespace"], schema_map=vault["schema_map"]
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        elapsed = _insert_and_check(mongodb_uri, opts, vault)
    assert elapsed < 5, elapsed
    [record] = _analysis_records(caplog)
    assert record.levelno == logging.WARNING
    assert "embedded" in record.getMessage()
    assert "'mongocryptd' is not on PATH" in record.getMessage()


def test_auto_without_mongocryptd_uses_the_embedded_analyzer(
    mongodb_uri: str,
    vault: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    opts = AutoEncryptionOpts(
        vault["providers"], vault["namespace"], schema_map=vault["schema_map"]
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert _insert_and_check(mongodb_uri, opts, vault) < 5
    [record] = _analysis_records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("query analysis: embedded")


@pytest.mark.parametrize("ours", [True, False], ids=["mongocrypt-options", "pymongo-options"])
def test_auto_spawns_mongocryptd_when_it_can(
    mongodb_uri: str,
    vault: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ours: bool,
) -> None:
    """With a spawn path that exists (our mongocrypt-cryptd), "auto" is mongocryptd."""
    monkeypatch.delenv(_env.QUERY_ANALYSIS, raising=False)
    port, pid_file = free_port(), tmp_path / "cryptd.pid"
    cls = AutoEncryptionOpts if ours else PymongoAutoEncryptionOpts
    opts = cls(
        vault["providers"],
        vault["namespace"],
        schema_map=vault["schema_map"],
        mongocryptd_uri=f"mongodb://127.0.0.1:{port}",
        mongocryptd_spawn_path=str(CRYPTD),
        mongocryptd_spawn_args=[f"--port={port}", f"--pidfilepath={pid_file}"],
    )
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            _insert_and_check(mongodb_uri, opts, vault)
        assert port_open(port)  # the spawned daemon served the marking
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
    [record] = _analysis_records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("query analysis: mongocryptd")
    assert str(CRYPTD) in record.getMessage()


def test_bypass_spawn_means_mongocryptd(
    vault: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    opts = AutoEncryptionOpts(
        vault["providers"],
        vault["namespace"],
        schema_map=vault["schema_map"],
        mongocryptd_bypass_spawn=True,
        mongocryptd_uri=f"mongodb://127.0.0.1:{free_port()}",
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        pymongo.MongoClient[Any](auto_encryption_opts=opts, connect=False).close()
    [record] = _analysis_records(caplog)
    assert record.getMessage().startswith("query analysis: mongocryptd")
    assert "mongocryptd_bypass_spawn" in record.getMessage()


def test_the_environment_variable_still_overrides(
    vault: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """MONGOCRYPT_QUERY_ANALYSIS=mongocryptd keeps mongocryptd, even when it is not on PATH."""
    monkeypatch.setenv(_env.QUERY_ANALYSIS, "mongocryptd")
    monkeypatch.setenv("PATH", str(tmp_path))
    opts = PymongoAutoEncryptionOpts(
        vault["providers"], vault["namespace"], schema_map=vault["schema_map"]
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        pymongo.MongoClient[Any](auto_encryption_opts=opts, connect=False).close()
    [record] = _analysis_records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"query analysis: mongocryptd ({_env.QUERY_ANALYSIS}=mongocryptd)"
    )


# -- errors of the analyzer --------------------------------------------------------------------


@pytest.mark.requirement("CSE-ERR-01")
def test_mongocryptd_failures_are_query_analysis_errors(
    mongodb_uri: str, vault: dict[str, Any], tmp_path: Path
) -> None:
    """CSE-ERR-01: a command mongocryptd refuses fails with the distinct QueryAnalysisError (the
    cause of pymongo's EncryptionError), keeping mongocryptd's code."""
    port, pid_file = free_port(), tmp_path / "cryptd.pid"
    opts = AutoEncryptionOpts(
        vault["providers"],
        vault["namespace"],
        schema_map=vault["schema_map"],
        query_analysis="mongocryptd",
        mongocryptd_uri=f"mongodb://127.0.0.1:{port}",
        mongocryptd_spawn_path=str(CRYPTD),
        mongocryptd_spawn_args=[f"--port={port}", f"--pidfilepath={pid_file}"],
    )
    try:
        with pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=opts) as client:
            people = client[vault["db"]].people
            with pytest.raises(EncryptionError) as info:
                people.find_one({"ssn": {"$gt": "1"}})  # deterministic: no range queries
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
    cause = info.value.cause
    assert isinstance(cause, QueryAnalysisError), repr(cause)
    assert cause.code == 51118, cause.code  # mongocryptd's code for an operator it refuses
    assert "mongocryptd" in str(cause) and "$gt" in str(cause)
    assert not info.value.timeout


@pytest.mark.requirement("CSE-ERR-01")
def test_unreachable_mongocryptd_is_a_query_analysis_timeout(vault: dict[str, Any]) -> None:
    """CSE-ERR-01: no mongocryptd at the URI (spawning bypassed): a QueryAnalysisError that
    pymongo still reports as a timeout, after the mongocryptd client's 10 s server selection
    (CSE-CRYPTD-06; the exchange runs outside timeoutMS, which would add maxTimeMS)."""
    opts = AutoEncryptionOpts(
        vault["providers"],
        vault["namespace"],
        schema_map=vault["schema_map"],
        mongocryptd_bypass_spawn=True,
        mongocryptd_uri=f"mongodb://127.0.0.1:{free_port()}",
    )
    uri = vault["client"].address
    with (
        pymongo.MongoClient[Any](*uri, auto_encryption_opts=opts) as client,
        pytest.raises(EncryptionError) as info,
    ):
        client[vault["db"]].people.insert_one({"ssn": "1"})
    assert isinstance(info.value.cause, QueryAnalysisError), repr(info.value.cause)
    assert info.value.timeout


# -- what reaches mongocryptd ------------------------------------------------------------------


@pytest.fixture
def observed_cryptd(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """mongocrypt-cryptd served in this process, recording every command it answers."""
    received: list[dict[str, Any]] = []
    answer = cryptd.answer

    def recording(command: dict[str, Any]) -> dict[str, Any]:
        received.append(dict(command))
        return answer(command)

    monkeypatch.setattr(cryptd, "answer", recording)
    port, ready = free_port(), threading.Event()
    thread = threading.Thread(
        target=cryptd.serve, args=(["127.0.0.1"], port, 5.0, ready), daemon=True
    )
    thread.start()
    assert ready.wait(10)
    yield port, received


@pytest.mark.requirement("CSE-CRYPTD-12", "CSE-CSOT-03")
@pytest.mark.parametrize("ours", [True, False], ids=["mongocrypt-options", "pymongo-options"])
def test_no_max_time_ms_reaches_mongocryptd(
    mongodb_uri: str,
    vault: dict[str, Any],
    observed_cryptd: tuple[int, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    ours: bool,
) -> None:
    """CSE-CRYPTD-12 / CSE-CSOT-03: with a client timeoutMS, the marking command sent to
    mongocryptd carries no maxTimeMS."""
    port, received = observed_cryptd
    monkeypatch.setenv(_env.QUERY_ANALYSIS, "mongocryptd")
    cls = AutoEncryptionOpts if ours else PymongoAutoEncryptionOpts
    opts = cls(
        vault["providers"],
        vault["namespace"],
        schema_map=vault["schema_map"],
        mongocryptd_uri=f"mongodb://127.0.0.1:{port}",
        mongocryptd_bypass_spawn=True,
    )
    host, server_port = vault["client"].address
    sent = _Commands()
    with pymongo.MongoClient[Any](
        host, server_port, timeoutMS=8000, auto_encryption_opts=opts, event_listeners=[sent]
    ) as client:
        client[vault["db"]].people.insert_one({"_id": 1, "ssn": "123-45-6789"})
        with pymongo.timeout(5):
            found = client[vault["db"]].people.find_one({"ssn": "123-45-6789"})
            assert found is not None and found["_id"] == 1
    markings = [c for c in received if next(iter(c)) in ("insert", "find")]
    assert len(markings) == 2, [next(iter(c)) for c in received]
    assert [c for c in markings if "maxTimeMS" in c] == []
    # the server still gets the operation's bound
    to_server = [c for c in sent.commands if c.get("insert", c.get("find")) == "people"]
    assert len(to_server) == 2 and all("maxTimeMS" in c for c in to_server)


class _Commands(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[Any] = []

    def started(self, event: Any) -> None:
        self.commands.append(event.command)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


@pytest.mark.requirement("CSE-ERR-01")
def test_crypt_shared_failures_are_query_analysis_errors(mongodb_uri: str, tmp_path: Path) -> None:
    """CSE-ERR-01: errors of libmongocrypt's crypt_shared category are QueryAnalysisError (the
    cause of pymongo's EncryptionError). A stand-in crypt_shared that refuses every command runs
    in a child process (one crypt_shared per process)."""
    (tmp_path / "refusing.c").write_text(REFUSING)
    library = tmp_path / "mongo_crypt_v1.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(library), "refusing.c"], cwd=tmp_path, check=True
    )
    namespace = f"qa_{uuid.uuid4().hex[:8]}.people"
    done = subprocess.run(
        [sys.executable, "-c", REFUSED_INSERT, mongodb_uri, str(library), namespace],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    kind, wrapped, message = done.stdout.strip().split(" ", 2)
    assert (kind, wrapped) == ("QueryAnalysisError", "True"), done.stdout
    assert "stand-in crypt_shared refuses the command" in message
    assert "code 51118" in message


def test_async_clients_get_the_same_fallback(
    mongodb_uri: str,
    vault: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The asyncio encrypter (the generated sync one's source) decides the same way."""
    monkeypatch.delenv(_env.QUERY_ANALYSIS, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    opts = PymongoAutoEncryptionOpts(
        vault["providers"], vault["namespace"], schema_map=vault["schema_map"]
    )

    async def insert() -> None:
        async with pymongo.AsyncMongoClient[Any](mongodb_uri, auto_encryption_opts=opts) as client:
            await client[vault["db"]].people.insert_one({"_id": 1, "ssn": "123-45-6789"})

    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(insert())
    stored = vault["client"][vault["db"]].people.find_one({"_id": 1})
    assert isinstance(stored["ssn"], Binary) and stored["ssn"].subtype == 6
    [record] = _analysis_records(caplog)
    assert record.levelno == logging.WARNING and "embedded" in record.getMessage()
