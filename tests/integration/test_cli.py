"""The ``mongocrypt`` command end to end: real server, real KMS emulators, in-process ``main()``."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pymongo
import pytest
from bson import json_util

from mongocrypt.cli import main

AWS_SECRET = f"aws-secret-{uuid.uuid4().hex}"
URI_PASSWORD = f"pw-{uuid.uuid4().hex}"


class Run:
    """Runs ``main()`` with captured output; remembers everything printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.printed: list[str] = []

    def __call__(self, *argv: str, stdin: Optional[str] = None) -> tuple[int, str, str]:
        saved = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main(list(argv))
        finally:
            sys.stdin = saved
        out, err = self.capsys.readouterr()
        self.printed += [out, err]
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


@pytest.fixture
def vault(mongodb_uri: str) -> Iterator[str]:
    """A fresh key vault with the unique index on keyAltNames the specification advises."""
    database = f"cli_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient(mongodb_uri) as client:
        client[database]["keys"].create_index(
            "keyAltNames", unique=True, partialFilterExpression={"keyAltNames": {"$exists": True}}
        )
        yield f"{database}.keys"
        client.drop_database(database)


@pytest.fixture
def local_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = os.urandom(96)
    path = tmp_path / "master.key"
    path.write_bytes(key)
    return path, key


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, mongodb_uri: str, vault: str, local_key: tuple[Path, bytes]
) -> None:
    """The connection and a local master key, given through the environment."""
    for name in list(os.environ):
        if name.startswith("MONGOCRYPT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("MONGOCRYPT_KEY_VAULT", vault)
    monkeypatch.setenv("MONGOCRYPT_LOCAL_KEY_FILE", str(local_key[0]))


@pytest.fixture
def aws_files(tmp_path: Path, kms_setup: Any) -> list[str]:
    """Flags for the emulated AWS KMS (``aws:mock``) through a providers file and TLS options."""
    providers = tmp_path / "providers.json"
    providers.write_text(
        json_util.dumps({"aws:mock": {"accessKeyId": "mock", "secretAccessKey": AWS_SECRET}})
    )
    tls_options = tmp_path / "tls.json"
    tls_options.write_text(json.dumps({"aws:mock": kms_setup.tls_options["aws:mock"]}))
    return ["--kms-providers-file", str(providers), "--kms-tls-options-file", str(tls_options)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- help and entry point ---------------------------------------------------------------------

COMMANDS = [
    [],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "show"],
    ["keys", "delete"],
    ["keys", "add-alt-name"],
    ["keys", "remove-alt-name"],
    ["keys", "rewrap"],
    ["keys", "create-index"],
    ["encrypt"],
    ["encrypt-expression"],
    ["decrypt"],
    ["doctor"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mongocrypt")
def test_help_everywhere(run: Run, command: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    assert out.startswith(f"usage: mongocrypt {' '.join(command)}".rstrip())
    if command and command != ["keys"]:
        assert "--json" in out


def test_console_entry_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mongocrypt.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: mongocrypt" in done.stdout
    for command in ("keys", "encrypt", "decrypt", "doctor"):
        assert command in done.stdout


def test_usage_errors_exit_2(run: Run) -> None:
    code, out, err = run()
    assert code == 2 and out == ""
    assert "mongocrypt: error:" in err
    code, _, err = run("encrypt", '"x"', "--key-alt-name", "k")
    assert code == 2 and "mongocrypt: error: the following arguments are required" in err
    code, _, err = run("keys", "frobnicate")
    assert code == 2 and "invalid choice" in err


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_local_key_lifecycle(run: Run) -> None:
    code, out, err = run("keys", "create", "local", "--alt-name", "ssn", "--alt-name", "dob")
    assert code == 0, err
    key_id = out.strip()
    assert str(uuid.UUID(key_id)) == key_id

    listed = run.json("keys", "list")
    assert [k["id"] for k in listed] == [key_id]
    assert listed[0]["provider"] == "local" and sorted(listed[0]["keyAltNames"]) == ["dob", "ssn"]
    code, out, _ = run("keys", "list")
    assert code == 0 and key_id in out and "local" in out and out.startswith("ID")
    assert run.json("keys", "list", "--provider", "aws") == []

    by_name = run.json("keys", "show", "ssn")
    assert by_name["id"] == key_id and by_name["creationDate"]
    assert "keyMaterial" not in by_name
    code, out, _ = run("keys", "show", key_id)
    assert code == 0 and f"id:            {key_id}" in out

    other = run.json("keys", "create", "local")["id"]
    added = run.json("keys", "add-alt-name", other, "backup")
    assert added["keyAltNames"] == ["backup"]
    code, _, err = run("keys", "add-alt-name", other, "ssn")
    assert code == 1 and "mongocrypt: error:" in err and "11000" in err

    removed = run.json("keys", "remove-alt-name", key_id, "dob")
    assert removed["keyAltNames"] == ["ssn"] and removed["removed"] is True
    code, out, _ = run("keys", "remove-alt-name", key_id, "nope")
    assert code == 0 and "nothing to remove" in out
    removed = run.json("keys", "remove-alt-name", "backup", "backup")
    assert removed["keyAltNames"] == [] and removed["removed"] is True

    code, _, err = run("keys", "delete", key_id)
    assert code == 2 and "without --yes" in err
    assert run.json("keys", "delete", "ssn", "--yes") == {"id": key_id, "deleted": 1}
    code, out, err = run("keys", "show", key_id)
    assert code == 1 and out == ""
    assert err == f"mongocrypt: error: no data key with id or alternate name {key_id!r}\n"
    code, out, _ = run("keys", "delete", other, "-y")
    assert code == 0 and out == f"deleted key {other}\n"
    assert run.json("keys", "list") == []


@pytest.mark.usefixtures("env")
def test_listing_needs_no_master_key(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id = run.json("keys", "create", "local", "--alt-name", "a")["id"]
    monkeypatch.delenv("MONGOCRYPT_LOCAL_KEY_FILE")
    assert [k["id"] for k in run.json("keys", "list")] == [key_id]
    assert run.json("keys", "show", "a")["id"] == key_id
    code, _, err = run("encrypt", '"x"', "--algorithm", "random", "--key-alt-name", "a")
    assert code == 2 and "no KMS provider configured" in err


# -- encrypt / decrypt ------------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_encrypt_decrypt_round_trip(run: Run) -> None:
    key_id = run.json("keys", "create", "local", "--alt-name", "ssn")["id"]
    code, out, err = run(
        "encrypt", '"457-55-5462"', "--algorithm", "deterministic", "--key-alt-name", "ssn"
    )
    assert code == 0, err
    ciphertext = json.loads(out)
    assert ciphertext["$binary"]["subType"] == "06"
    code, again, _ = run(
        "encrypt", '"457-55-5462"', "--algorithm", "deterministic", "--key-id", key_id
    )
    assert json.loads(again) == ciphertext  # deterministic: the same key gives the same bytes

    code, out, _ = run("decrypt", json.dumps(ciphertext))
    assert code == 0 and out == '"457-55-5462"\n'
    code, out, _ = run("decrypt", stdin=json.dumps(ciphertext))
    assert code == 0 and out == '"457-55-5462"\n'

    # Types survive with canonical Extended JSON; stdin works for both directions.
    code, out, _ = run(
        "encrypt", "-", "--algorithm", "random", "--key-id", key_id, stdin='{"$numberLong": "5"}'
    )
    assert code == 0
    code, relaxed, _ = run("decrypt", out)
    code, canonical, _ = run("decrypt", out, "--canonical")
    assert relaxed == "5\n" and json.loads(canonical) == {"$numberLong": "5"}
    assert run.json("decrypt", out) == {"value": {"$numberLong": "5"}}
    encrypted = run.json("encrypt", "2.5", "--algorithm", "random", "--key-id", key_id)
    assert encrypted["ciphertext"]["$binary"]["subType"] == "06"
    assert run.json("decrypt", json.dumps(encrypted["ciphertext"])) == {
        "value": {"$numberDouble": "2.5"}
    }


@pytest.mark.usefixtures("env")
def test_queryable_encryption_payloads(run: Run) -> None:
    key_id = run.json("keys", "create", "local")["id"]
    indexed = ["--algorithm", "indexed", "--key-id", key_id, "--contention-factor", "0"]
    insert = run.json("encrypt", '"x"', *indexed)["ciphertext"]
    assert run.json("decrypt", json.dumps(insert)) == {"value": "x"}
    find = run.json("encrypt", '"x"', *indexed, "--query-type", "equality")["ciphertext"]
    assert base64.b64decode(find["$binary"]["base64"])[0] == 12  # a QE find payload
    ranged = run.json(
        "encrypt",
        "25",
        "--algorithm",
        "range",
        "--key-id",
        key_id,
        "--contention-factor",
        "0",
        "--range-opts",
        '{"min": 0, "max": 200, "sparsity": 1, "trimFactor": 1}',
    )["ciphertext"]
    assert run.json("decrypt", json.dumps(ranged)) == {"value": {"$numberInt": "25"}}
    code, _, err = run(
        "encrypt", "25", "--algorithm", "range", "--key-id", key_id, "--range-opts", '{"lo": 1}'
    )
    assert code == 2 and "unknown --range-opts field 'lo'" in err


@pytest.mark.usefixtures("env")
def test_encrypt_errors(run: Run) -> None:
    key_id = run.json("keys", "create", "local")["id"]
    code, _, err = run("encrypt", "457-55-5462", "--algorithm", "random", "--key-id", key_id)
    assert code == 2 and "not valid (Extended) JSON" in err and "quote strings" in err
    code, _, err = run("encrypt", '"x"', "--algorithm", "random", "--key-id", "not-a-uuid")
    assert code == 2 and "--key-id must be a UUID" in err
    code, _, err = run("encrypt", '"x"', "--algorithm", "random", "--key-alt-name", "missing")
    assert code == 1 and err.startswith("mongocrypt: error:")
    code, _, err = run("decrypt", '"not a ciphertext"')
    assert code == 2 and "subtype 6" in err
    code, _, err = run("encrypt", "--algorithm", "random", "--key-id", key_id, stdin="  ")
    assert code == 2 and "no value given" in err


# -- AWS KMS (emulated) and rewrap -----------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_aws_key_and_rewrap_with_progress(
    run: Run, aws_files: list[str], kms_setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    master_key = json.dumps(kms_setup.master_keys["aws:mock"])
    created = run.json("keys", "create", "aws:mock", "--master-key", master_key, *aws_files)
    assert created["provider"] == "aws:mock"
    assert created["masterKey"]["key"] == kms_setup.master_keys["aws:mock"]["key"]
    local_ids = [run.json("keys", "create", "local")["id"] for _ in range(4)]
    code, ciphertext, err = run(
        "encrypt", '"moved"', "--algorithm", "random", "--key-id", local_ids[0]
    )
    assert code == 0, err

    # Move every local key to the AWS master key, two keys per request, progress on a "TTY".
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(
        "keys",
        "rewrap",
        "--filter",
        '{"masterKey.provider": "local"}',
        "--provider",
        "aws:mock",
        "--master-key",
        master_key,
        "--batch-size",
        "2",
        *aws_files,
    )
    assert code == 0, err
    assert out.startswith("matched 4 keys, rewrapped 4 to aws:mock in ")
    assert "rewrapping [" in err and "4/4" in err and err.endswith("\n")
    providers = {k["id"]: k["provider"] for k in run.json("keys", "list", *aws_files)}
    assert set(providers.values()) == {"aws:mock"}
    code, out, _ = run("decrypt", ciphertext, *aws_files)
    assert code == 0 and out == '"moved"\n'

    # And back to the local master key, as JSON, without a progress bar when not a terminal.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    code, out, err = run(
        "keys", "rewrap", "--filter", '{"keyAltNames": {"$exists": false}}', "--provider", "local",
        *aws_files, "--json",
    )  # fmt: skip
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["matched"] == 5 and summary["rewrapped"] == 5
    assert summary["provider"] == "local" and summary["duration_s"] >= 0
    code, out, _ = run("decrypt", ciphertext)  # no AWS settings needed any more
    assert code == 0 and out == '"moved"\n'

    # Rotation under each key's own master key; an empty match is a success.
    assert run.json("keys", "rewrap")["rewrapped"] == 5
    empty = run.json(
        "keys", "rewrap", "--filter", '{"_id": {"$uuid": "' + str(uuid.uuid4()) + '"}}'
    )
    assert empty == {
        "matched": 0,
        "rewrapped": 0,
        "provider": None,
        "duration_s": empty["duration_s"],
    }


@pytest.mark.usefixtures("env")
def test_rewrap_failure_reports_progress(run: Run, aws_files: list[str], tmp_path: Path) -> None:
    run.json("keys", "create", "local")
    bad_tls = tmp_path / "bad-tls.json"
    bad_tls.write_text(json.dumps({"aws:mock": {"tlsCAFile": str(tmp_path / "missing.pem")}}))
    code, _, err = run(
        "keys", "rewrap", "--provider", "aws:mock", "--master-key",
        json.dumps({"region": "us-east-1", "key": "arn:aws:kms:us-east-1:1:key/x"}),
        "--kms-providers-file", aws_files[1], "--kms-tls-options-file", str(bad_tls),
        "--timeout-ms", "3000",
    )  # fmt: skip
    assert code == 1 and "mongocrypt: error:" in err


# -- settings sources -------------------------------------------------------------------------


def test_config_file(
    run: Run,
    tmp_path: Path,
    mongodb_uri: str,
    vault: str,
    kms_setup: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MONGODB_URI", "MONGOCRYPT_KEY_VAULT", "MONGOCRYPT_LOCAL_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "master.b64").write_text(base64.b64encode(os.urandom(96)).decode())
    ca = kms_setup.tls_options["aws:mock"]["tlsCAFile"]
    config = tmp_path / "mongocrypt.toml"
    config.write_text(
        f"uri = {json.dumps(mongodb_uri)}\n"
        f'key_vault = "{vault}"\n'
        "timeout_ms = 20000\n"
        "[kms_providers.local]\n"
        'key_file = "keys/master.b64"\n'
        '[kms_providers."aws:mock"]\n'
        f'accessKeyId = "mock"\nsecretAccessKey = "{AWS_SECRET}"\n'
        '[kms_tls_options."aws:mock"]\n'
        f"tlsCAFile = {json.dumps(ca)}\n"
    )
    key_id = run.json("keys", "create", "local", "--config", str(config))["id"]
    monkeypatch.setenv("MONGOCRYPT_CONFIG", str(config))
    master_key = json.dumps(kms_setup.master_keys["aws:mock"])
    aws = run.json("keys", "create", "aws:mock", "--master-key", master_key)
    listed = run.json("keys", "list")
    assert {k["id"] for k in listed} == {key_id, aws["id"]}
    # A flag wins over the config file.
    other = f"{vault.split('.')[0]}.other"
    assert run.json("keys", "list", "--key-vault", other) == []

    config.write_text("colour = 'blue'\n")
    code, _, err = run("keys", "list")
    assert code == 2 and "unknown setting 'colour'" in err
    config.write_text("uri = \n")
    code, _, err = run("keys", "list")
    assert code == 2 and "not valid TOML" in err


def test_local_key_from_environment(
    run: Run, mongodb_uri: str, vault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("MONGOCRYPT_KEY_VAULT", vault)
    monkeypatch.setenv("MONGOCRYPT_LOCAL_KEY", base64.b64encode(os.urandom(96)).decode())
    key_id = run.json("keys", "create", "local")["id"]
    encrypted = run.json("encrypt", "true", "--algorithm", "random", "--key-id", key_id)
    assert run.json("decrypt", json.dumps(encrypted["ciphertext"])) == {"value": True}


@pytest.mark.usefixtures("env")
def test_named_local_providers(run: Run, tmp_path: Path) -> None:
    second = tmp_path / "second.key"
    second.write_bytes(os.urandom(96))
    flag = f"local:second={second}"
    key_id = run.json("keys", "create", "local:second", "--local-key-file", flag)["id"]
    summary = run.json("keys", "rewrap", "--provider", "local", "--local-key-file", flag)
    assert summary["rewrapped"] == 1
    assert run.json("keys", "show", key_id)["provider"] == "local"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_configuration_errors_exit_2(run: Run, tmp_path: Path) -> None:
    code, out, err = run("keys", "list", "--key-vault", "no-dot")
    assert code == 2 and out == ""
    assert err == (
        "mongocrypt: error: key vault namespace must be 'database.collection', not 'no-dot'\n"
    )
    code, _, err = run("keys", "create", "aws")
    assert code == 2 and "no settings for KMS provider 'aws' (configured: local)" in err
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 10)
    code, _, err = run("keys", "create", "local", "--local-key-file", str(short))
    assert code == 2 and "must hold 96 bytes" in err
    code, _, err = run("keys", "list", "--local-key-file", str(tmp_path / "absent"))
    assert code == 2 and "cannot read local key file" in err
    broken = tmp_path / "providers.json"
    broken.write_text('{"aws": {"secretAccessKey": "do-not-print-me",}}')
    code, _, err = run("keys", "list", "--kms-providers-file", str(broken))
    assert code == 2 and "is not valid JSON" in err and "do-not-print-me" not in err
    code, _, err = run("keys", "create", "local", "--master-key", "[1]")
    assert code == 2 and "--master-key must be a JSON object" in err
    code, _, err = run("keys", "rewrap", "--master-key", "{}")
    assert code == 2 and "--master-key needs --provider" in err
    code, _, err = run("keys", "list", "--uri", "http://nowhere")
    assert code == 2 and "bad connection string" in err


@pytest.mark.usefixtures("env")
def test_operation_errors_exit_1(run: Run) -> None:
    code, _, err = run("keys", "show", str(uuid.uuid4()))
    assert code == 1 and "no data key with id or alternate name" in err
    code, _, err = run("keys", "add-alt-name", "unknown-name", "x")
    assert code == 1 and "'unknown-name'" in err
    uri = f"mongodb://127.0.0.1:{closed_port()}/"
    code, out, err = run("keys", "list", "--uri", uri, "--timeout-ms", "300")
    assert code == 1 and out == "" and err.startswith("mongocrypt: error:")


def test_secrets_never_echoed(
    run: Run,
    env: None,
    local_key: tuple[Path, bytes],
    aws_files: list[str],
    kms_setup: Any,
    tmp_path: Path,
) -> None:
    """Master keys, KMS secrets and URI passwords appear in no output, errors included."""
    master_key = json.dumps(kms_setup.master_keys["aws:mock"])
    key_id = run.json("keys", "create", "local", "--alt-name", "s")["id"]
    run.json("keys", "create", "aws:mock", "--master-key", master_key, *aws_files)
    for argv in (
        ["keys", "list"],
        ["keys", "show", key_id],
        ["keys", "show", "s"],
        ["keys", "rewrap", *aws_files],
        ["keys", "create", "aws:mock", "--master-key", '{"region": "x"}', *aws_files],
        ["encrypt", '"v"', "--algorithm", "random", "--key-id", key_id],
        ["doctor"],
        ["keys", "list", "--uri", f"mongodb://u:{URI_PASSWORD}@127.0.0.1:{closed_port()}/"],
        ["keys", "list", "--uri", f"mongodb://u:{URI_PASSWORD}@/?bad"],
        ["doctor", "--uri", f"mongodb://u:{URI_PASSWORD}@127.0.0.1:{closed_port()}/"],
    ):
        for extra in ([], ["--json"]):
            run(*argv, *extra, "--timeout-ms", "2000")
    bad = tmp_path / "bad.key"
    bad.write_text(base64.b64encode(local_key[1]).decode() + "!")
    run("keys", "list", "--local-key-file", str(bad))
    printed = "\n".join(run.printed)
    assert "matched 2 keys" in printed and "mongocrypt: error:" in printed
    key = local_key[1]
    for secret in (
        base64.b64encode(key).decode(),
        key.hex(),
        key.decode("latin-1"),
        AWS_SECRET,
        URI_PASSWORD,
    ):
        assert secret not in printed


# -- doctor -----------------------------------------------------------------------------------


def test_doctor_text_and_json(
    run: Run, mongodb_uri: str, cloud_kms: Any, tls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("MONGOCRYPT_QUERY_ANALYSIS", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    import mongocrypt

    code, out, err = run(
        "doctor", "--uri", mongodb_uri, "--kms-endpoint", cloud_kms.endpoint,
        "--kms-ca-file", str(tls.ca),
    )  # fmt: skip
    assert code == 0, out + err
    assert f"libmongocrypt      {mongocrypt.libmongocrypt_version()}, native crypto: yes" in out
    assert "crypt_shared       not found (searched $SYSTEM)" in out
    assert "mongocryptd        not on PATH" in out
    assert "auto (default) -> none available (use query_analysis='embedded')" in out
    assert "mongocrypt's drop-in facade: active" in out
    assert "server             ok: " in out
    assert f"kms {cloud_kms.endpoint} ok: TLSv1." in out
    assert err == ""

    report = run.json("doctor", "--uri", mongodb_uri)
    assert report["ok"] is True and report["problems"] == []
    assert report["libmongocrypt"] == {
        "version": mongocrypt.libmongocrypt_version(),
        "native_crypto": True,
    }
    assert report["features"] == {
        "has_kms_in_place_retry": mongocrypt.has_kms_in_place_retry,
        "has_string_algorithm": mongocrypt.has_string_algorithm,
    }
    assert report["crypt_shared"]["found"] is False and report["mongocryptd"] is None
    assert report["drop_in"]["facade_active"] is True
    assert report["drop_in"]["pymongocrypt"] == "1.21.0"
    assert report["drop_in"]["pymongo"] == pymongo.version
    assert report["server"]["ok"] is True and report["kms_endpoints"] == []
    assert run.json("doctor")["server"] is None  # no --uri, no MONGODB_URI: not checked
    # The doctor reads no key vault or KMS settings: broken ones do not stop it.
    monkeypatch.setenv("MONGOCRYPT_KEY_VAULT", "no-dot")
    monkeypatch.setenv("MONGOCRYPT_LOCAL_KEY_FILE", "/nonexistent")
    assert run.json("doctor")["ok"] is True


def test_doctor_failures_exit_1(
    run: Run, cloud_kms: Any, tls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("MONGOCRYPT_QUERY_ANALYSIS", raising=False)
    code, out, _ = run("doctor", "--kms-endpoint", cloud_kms.endpoint)  # system CAs only
    assert code == 1
    assert f"kms {cloud_kms.endpoint} FAILED: certificate verification failed" in out
    assert f"problem: KMS {cloud_kms.endpoint} failed" in out
    code, out, _ = run(
        "doctor", "--uri", f"mongodb://127.0.0.1:{closed_port()}/", "--timeout-ms", "300",
        "--kms-endpoint", f"127.0.0.1:{closed_port()}", "--kms-ca-file", str(tls.ca), "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 1
    assert report["ok"] is False and report["server"]["ok"] is False
    assert report["server"]["error"] and report["kms_endpoints"][0]["ok"] is False
    assert len(report["problems"]) == 2


def test_doctor_query_analysis_modes(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    fake = tmp_path / "mongocryptd"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MONGOCRYPT_QUERY_ANALYSIS", raising=False)
    report = run.json("doctor")
    assert report["mongocryptd"] == str(fake)
    assert report["query_analysis"]["mode"] == "mongocryptd"

    monkeypatch.setenv("MONGOCRYPT_QUERY_ANALYSIS", "crypt_shared")
    code, out, _ = run("doctor")
    assert code == 1 and "crypt_shared (MONGOCRYPT_QUERY_ANALYSIS) -> crypt_shared" in out
    assert "problem: query analysis is crypt_shared but crypt_shared was not found" in out

    monkeypatch.setenv("MONGOCRYPT_QUERY_ANALYSIS", "embedded")
    report = run("doctor", "--json")
    analysis = json.loads(report[1])["query_analysis"]
    assert analysis["mode"] == "embedded"
    assert (report[0] == 0) == analysis["embedded_analyzer"]

    monkeypatch.setenv("MONGOCRYPT_QUERY_ANALYSIS", "bogus")
    code, out, _ = run("doctor")
    assert code == 1 and "MONGOCRYPT_QUERY_ANALYSIS='bogus' is not one of auto" in out

    monkeypatch.setenv("MONGOCRYPT_QUERY_ANALYSIS", "none")
    assert run.json("doctor")["query_analysis"]["mode"] == "none"

    missing = tmp_path / "mongo_crypt_v1.so"
    shared = run.json("doctor", "--crypt-shared-lib-path", str(missing))["crypt_shared"]
    assert shared["found"] is False and shared["searched"] == str(missing)


# -- the traps a new user met (issue 15, items 8-13) ------------------------------------------


def _without_index(mongodb_uri: str, vault: str) -> pymongo.MongoClient[Any]:
    """A client on the test's key vault, whose unique index on keyAltNames is dropped."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        mongodb_uri, uuidRepresentation="standard"
    )
    database, collection = vault.split(".", 1)
    client[database][collection].drop_index("keyAltNames_1")
    return client


@pytest.mark.usefixtures("env")
def test_alt_names_stay_unique_without_the_index(run: Run, mongodb_uri: str, vault: str) -> None:
    with _without_index(mongodb_uri, vault):
        first = run.json("keys", "create", "local", "--alt-name", "shared")["id"]
        second = run.json("keys", "create", "local")["id"]
        code, _, err = run("keys", "add-alt-name", second, "shared")
        assert code == 1 and f"alternate name 'shared' already belongs to key {first}" in err
        assert "mongocrypt keys create-index" in err
        code, _, err = run("keys", "create", "local", "--alt-name", "shared")
        assert code == 1 and "already belongs" in err
        assert [k["id"] for k in run.json("keys", "list")] == [first, second]
        # Adding a key's own name again is no conflict.
        assert run.json("keys", "add-alt-name", first, "shared")["keyAltNames"] == ["shared"]
        code, out, _ = run("doctor")
        assert code == 1 and f"key vault          {vault}: NO unique index on keyAltNames" in out
        assert f"problem: key vault {vault} has no unique index" in out and "create-index" in out

        created = run.json("keys", "create-index")
        assert created["namespace"] == vault and created["unique"] is True
        assert created["key"] == {"keyAltNames": 1}
        assert created["partialFilterExpression"] == {"keyAltNames": {"$exists": True}}
        code, out, _ = run("doctor")
        assert f"key vault          {vault}: unique index on keyAltNames" in out
        assert "problem: key vault" not in out
        # From now on the server refuses a duplicate by itself.
        code, _, err = run("keys", "add-alt-name", second, "shared")
        assert code == 1 and "11000" in err


@pytest.mark.usefixtures("env")
def test_shared_alt_names_are_named(run: Run, mongodb_uri: str, vault: str) -> None:
    with _without_index(mongodb_uri, vault) as client:
        first = run.json("keys", "create", "local", "--alt-name", "twin")["id"]
        second = run.json("keys", "create", "local")["id"]
        database, collection = vault.split(".", 1)
        client[database][collection].update_one(
            {"_id": uuid.UUID(second)}, {"$push": {"keyAltNames": "twin"}}
        )
        shared = f"keys {' and '.join(sorted([first, second]))} share the alternate name 'twin'"
        code, _, err = run("keys", "rewrap")
        assert code == 1 and "rewrap stopped after 0 of 2 keys" in err
        assert shared in err and "create-index" in err
        code, _, err = run("keys", "create-index")
        assert code == 1 and shared in err
        assert "remove-alt-name" in err


def test_options_before_the_command(
    run: Run, mongodb_uri: str, vault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("MONGOCRYPT_") or name == "MONGODB_URI":
            monkeypatch.delenv(name)
    first, second = tmp_path / "first.key", tmp_path / "second.key"
    first.write_bytes(os.urandom(96))
    second.write_bytes(os.urandom(96))
    config = tmp_path / "cfg.toml"
    config.write_text(f'uri = {json.dumps(mongodb_uri)}\nkey_vault = "{vault}"\n')
    key_flag = f"local:first={first}"
    key_id = run.json(
        "--config", str(config), "keys", "create", "local:first", "--local-key-file", key_flag
    )["id"]
    code, out, err = run("--config", str(config), "--json", "keys", "list")
    assert code == 0, err
    assert [k["id"] for k in json.loads(out)] == [key_id]
    # Lists add up across both places: one key file before the command, one after.
    code, out, err = run(
        "--config", str(config), "--local-key-file", key_flag,
        "keys", "rewrap", "--provider", "local:second",
        "--local-key-file", f"local:second={second}",
    )  # fmt: skip
    assert code == 0 and out.startswith("matched 1 keys, rewrapped 1 to local:second"), err
    # A flag after the command wins over the same flag before it.
    other = f"{vault.split('.')[0]}.other"
    assert (
        run.json(
            "--key-vault", vault, "--config", str(config), "keys", "list", "--key-vault", other
        )
        == []
    )
    code, _, err = run("--local-key-file", str(first), "doctor")
    assert code == 2 and "--local-key-file does not apply to 'doctor'" in err


@pytest.mark.usefixtures("env")
def test_base64_key_file_with_line_breaks(
    run: Run, local_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    wrapped = tmp_path / "master.b64"
    wrapped.write_bytes(base64.encodebytes(local_key[1]))  # what base64(1) writes
    assert wrapped.read_text().count("\n") == 2
    key_id = run.json("keys", "create", "local")["id"]
    encrypted = run.json(
        "encrypt", '"x"', "--algorithm", "random", "--key-id", key_id,
        "--local-key-file", str(wrapped),
    )  # fmt: skip
    assert run.json("decrypt", json.dumps(encrypted["ciphertext"])) == {"value": "x"}


def test_misspelt_algorithm_is_a_usage_error(run: Run) -> None:
    code, out, err = run(
        "encrypt", '"x"', "--algorithm", "determinstic", "--key-id", str(uuid.uuid4())
    )
    assert code == 2 and out == ""
    assert "argument --algorithm: unknown algorithm 'determinstic'" in err
    for name in (
        "deterministic",
        "random",
        "indexed",
        "range",
        "AEAD_AES_256_CBC_HMAC_SHA_512-Random",
    ):
        assert name in err


@pytest.mark.usefixtures("env")
def test_encrypt_expression(run: Run) -> None:
    key_id = run.json("keys", "create", "local", "--alt-name", "ages")["id"]
    options = [
        "--contention-factor",
        "0",
        "--range-opts",
        '{"min": 0, "max": 200, "sparsity": 1, "trimFactor": 1}',
    ]
    expression = '{"$and": [{"age": {"$gte": 18}}, {"age": {"$lt": 65}}]}'
    for key in (["--key-id", key_id], ["--key-alt-name", "ages"]):
        encrypted = run.json("encrypt-expression", expression, *key, *options)["expression"]
        bounds = encrypted["$and"]
        assert [list(bound["age"]) for bound in bounds] == [["$gte"], ["$lt"]]
        payload = bounds[0]["age"]["$gte"]["$binary"]
        assert payload["subType"] == "06" and "$numberInt" not in json.dumps(bounds)
    code, out, err = run("encrypt-expression", *key, *options, stdin=expression)
    assert code == 0 and '"$and"' in out, err

    code, _, err = run("encrypt-expression", '{"age": {"$gte": 18}}', "--key-id", key_id, *options)
    assert code == 2 and 'must be an Extended JSON {"$and": [...]}' in err
    code, _, err = run(
        "encrypt",
        "18",
        "--algorithm",
        "range",
        "--query-type",
        "range",
        "--key-id",
        key_id,
        *options,
    )
    assert code == 2 and "mongocrypt encrypt-expression" in err


@pytest.mark.usefixtures("env")
def test_config_file_with_secrets_readable_by_others(run: Run, tmp_path: Path) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text(
        f'[kms_providers.local]\nkey = "{base64.b64encode(os.urandom(96)).decode()}"\n'
    )
    plain = tmp_path / "plain.toml"
    plain.write_text('[kms_providers.local]\nkey_file = "master.key"\n')
    (tmp_path / "master.key").write_bytes(os.urandom(96))
    warning = f"mongocrypt: warning: config file {secret} holds secrets and other users can read it"
    secret.chmod(0o644)
    code, _, err = run("keys", "list", "--config", str(secret))
    assert code == 0 and warning in err and f"chmod 600 {secret}" in err
    secret.chmod(0o640)
    code, _, err = run("keys", "list", "--config", str(secret))
    assert code == 0 and warning in err
    secret.chmod(0o600)
    assert run("keys", "list", "--config", str(secret)) == (0, "", "")
    plain.chmod(0o644)  # the key is in another file
    assert run("keys", "list", "--config", str(plain)) == (0, "", "")
