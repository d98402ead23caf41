"""How pymongo spawns and talks to mongocryptd for mongocrypt's AutoEncryptionOpts: the defaults the
specification gives its options, the command line, the child's output, and the hidden client.
The spawned program is a recording wrapper around our mongocryptd-compatible daemon
(``mongocrypt-cryptd``), found as ``mongocryptd`` on PATH."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pymongo
import pytest
from pymongo.errors import EncryptionError
from pymongo.monitoring import CommandListener, CommandStartedEvent

from helpers.peers.process import free_port, port_open
from mongocrypt import ClientEncryption
from mongocrypt.auto_encryption import AutoEncryptionOpts

DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
CRYPTD_SCRIPT = Path(sys.executable).parent / "mongocrypt-cryptd"
#: What the wrapper records about itself before it becomes the daemon: its pid, its arguments,
#: and where its standard input, output and error lead.
WRAPPER = """#!/bin/sh
here=$(dirname "$0")
echo $$ > "$here/pid"
printf '%s\\n' "$@" > "$here/argv"
fds=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)
echo "$fds" > "$here/fds"
exec {daemon} "$@"
"""


class Started(CommandListener):
    def __init__(self) -> None:
        self.events: list[CommandStartedEvent] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.events.append(event)

    def succeeded(self, event: Any) -> None: ...

    def failed(self, event: Any) -> None: ...


@dataclass
class Spawned:
    """The wrapper's directory (on PATH) and what it recorded."""

    directory: Path

    def lines(self, name: str) -> list[str]:
        return (self.directory / name).read_text().splitlines()

    def stop(self) -> None:
        pid_file = self.directory / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture
def mongocryptd_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Spawned]:
    directory = tmp_path / "bin"
    directory.mkdir()
    wrapper = directory / "mongocryptd"
    wrapper.write_text(WRAPPER.format(daemon=CRYPTD_SCRIPT))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    spawned = Spawned(directory)
    yield spawned
    spawned.stop()


@pytest.fixture
def encrypted_namespace(mongodb_uri: str) -> Iterator[dict[str, Any]]:
    """A local key and a schema map encrypting ``secret`` in a fresh database."""
    name = f"spawning_{uuid.uuid4().hex[:8]}"
    providers = {"local": {"key": os.urandom(96)}}
    with (
        pymongo.MongoClient[Any](mongodb_uri) as plain,
        ClientEncryption(providers, f"{name}.keys", plain) as ce,
    ):
        key_id = ce.create_data_key("local")
        encrypt = {"keyId": [key_id], "bsonType": "string", "algorithm": DETERMINISTIC}
        yield {
            "kms_providers": providers,
            "key_vault_namespace": f"{name}.keys",
            "schema_map": {
                f"{name}.coll": {
                    "bsonType": "object",
                    "properties": {"secret": {"encrypt": encrypt}},
                }
            },
            "db": name,
        }
        plain.drop_database(name)


def insert_secret(
    mongodb_uri: str, setup: dict[str, Any], listener: Optional[Started] = None, **options: Any
) -> None:
    opts = AutoEncryptionOpts(
        setup["kms_providers"],
        setup["key_vault_namespace"],
        schema_map=setup["schema_map"],
        query_analysis="mongocryptd",
        **options,
    )
    with pymongo.MongoClient[Any](
        mongodb_uri, auto_encryption_opts=opts, event_listeners=[listener] if listener else []
    ) as client:
        client[setup["db"]].coll.insert_one({"secret": "s3cret"})
        assert client[setup["db"]].coll.find_one({"secret": "s3cret"}) is not None


@pytest.mark.requirement(
    "CSE-XOPT-01", "CSE-XOPT-02", "CSE-XOPT-03", "CSE-XOPT-04", "CSE-CRYPTD-05", "CSE-CRYPTD-11"
)
def test_defaults_spawn_mongocryptd_from_path_and_connect_to_port_27020(
    mongodb_uri: str, encrypted_namespace: dict[str, Any], mongocryptd_on_path: Spawned
) -> None:
    """No mongocryptd option given: ``mongocryptd`` from PATH is spawned with
    ``--idleShutdownTimeoutSecs=60`` only, its output goes nowhere, the markings come from
    localhost:27020, and none of the commands sent there reach the user's listener."""
    listener = Started()
    insert_secret(mongodb_uri, encrypted_namespace, listener)
    assert mongocryptd_on_path.lines("argv") == ["--idleShutdownTimeoutSecs=60"]
    assert mongocryptd_on_path.lines("fds") == [os.devnull] * 3
    assert port_open(27020)
    seen = {event.command_name for event in listener.events}
    assert {"insert", "find"} <= seen
    assert all(event.connection_id[1] != 27020 for event in listener.events)


@pytest.mark.requirement("CSE-CRYPTD-04")
@pytest.mark.parametrize(
    ("args", "idle"),
    [
        ([], ["--idleShutdownTimeoutSecs=60"]),
        (["--idleShutdownTimeoutSecs=7"], ["--idleShutdownTimeoutSecs=7"]),
        (["--idleShutdownTimeoutSecs", "7"], ["--idleShutdownTimeoutSecs", "7"]),
    ],
    ids=["appended", "equals-form-kept", "separate-form-kept"],
)
def test_spawn_command_line_always_has_an_idle_timeout(
    mongodb_uri: str,
    encrypted_namespace: dict[str, Any],
    mongocryptd_on_path: Spawned,
    args: list[str],
    idle: list[str],
) -> None:
    port = free_port()
    insert_secret(
        mongodb_uri,
        encrypted_namespace,
        mongocryptd_uri=f"mongodb://localhost:{port}",
        mongocryptd_spawn_args=[f"--port={port}", *args],
    )
    assert mongocryptd_on_path.lines("argv") == [f"--port={port}", *idle]


@pytest.mark.requirement("CSE-CRYPTD-06")
def test_mongocryptd_client_selects_servers_for_10_seconds(
    mongodb_uri: str, encrypted_namespace: dict[str, Any]
) -> None:
    """A mongocryptd_uri without serverSelectionTimeoutMS: the hidden client gives up after 10 s,
    not after pymongo's usual 30 s (nothing listens; spawning is bypassed, so no retry)."""
    started = time.monotonic()
    with pytest.raises(EncryptionError, match="Timeout"):
        insert_secret(
            mongodb_uri,
            encrypted_namespace,
            mongocryptd_uri=f"mongodb://localhost:{free_port()}",
            mongocryptd_bypass_spawn=True,
        )
    assert 9.5 < time.monotonic() - started < 20


@pytest.mark.requirement("CSE-CRYPTD-01", "CSE-CRYPTD-02")
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # pymongo leaks its half-built client
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_crypt_shared_required_never_spawns_mongocryptd(
    mongodb_uri: str, encrypted_namespace: dict[str, Any], mongocryptd_on_path: Spawned
) -> None:
    """With crypt_shared required (and absent here), the client fails, and no mongocryptd, though
    one is on PATH, was started for it."""
    port = free_port()
    with pytest.raises(Exception, match="crypt_shared"):
        insert_secret(
            mongodb_uri,
            encrypted_namespace,
            crypt_shared_lib_required=True,
            mongocryptd_uri=f"mongodb://localhost:{port}",
            mongocryptd_spawn_args=[f"--port={port}"],
        )
    assert not (mongocryptd_on_path.directory / "pid").exists()
    assert not port_open(port)
