"""mongocrypt-cryptd: a mongocryptd-compatible daemon (wire protocol, options, idle shutdown)."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pymongo
import pytest

from helpers.peers.process import Peer, free_port, port_open
from mongocrypt.analysis import MAX_WIRE_VERSION

CRYPTD = [sys.executable, "-m", "mongocrypt.cryptd"]


def start(tmp_path: Path, *args: str) -> tuple[Peer, int]:
    port = free_port()
    peer = Peer(
        "mongocrypt-cryptd",
        [*CRYPTD, f"--port={port}", *args],
        tmp_path / "cryptd.log",
        ready=lambda: port_open(port),
    )
    return peer, port


@pytest.mark.requirement("CSE-CRYPTD-13")
def test_answers_like_mongocryptd(tmp_path: Path) -> None:
    peer, port = start(tmp_path, "--idleShutdownTimeoutSecs=30")
    try:
        with pymongo.MongoClient[Any](
            f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=5000
        ) as client:
            hello = client.admin.command("hello")
            assert hello["iscryptd"] is True and hello["maxWireVersion"] >= 26
            assert client.admin.command("ping")["ok"] == 1
            assert client.admin.command("isMaster")["ismaster"] is True
    finally:
        peer.stop()


def test_idle_shutdown_and_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "cryptd.pid"
    peer, _ = start(
        tmp_path, "--idleShutdownTimeoutSecs", "1", f"--pidfilepath={pid_file}", "--logappend"
    )
    assert int(pid_file.read_text()) == peer.process.pid
    assert peer.process.wait(timeout=10) == 0
    assert "ignoring options it does not need: --logappend" in peer.tail()
    peer.stop()


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    peer, port = start(tmp_path, "--idleShutdownTimeoutSecs=30")
    try:
        result = subprocess.run(
            [*CRYPTD, f"--port={port}"], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    finally:
        peer.stop()


def test_bad_idle_timeout() -> None:
    result = subprocess.run(
        [*CRYPTD, "--idleShutdownTimeoutSecs=0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "must be > 0" in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mongocrypt-cryptd"
    if not script.exists():
        pytest.skip("needs the installed console script (pip install)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--idleShutdownTimeoutSecs" in result.stdout


# -- wire details, checked by pymongo and on a raw socket ----------------------------------------

#: The fields of mongocryptd's handshake reply (its ``CrytpDCmdHello``), besides the primary flag.
HELLO_FIELDS = {
    "iscryptd",
    "maxBsonObjectSize",
    "maxMessageSizeBytes",
    "localTime",
    "maxWireVersion",
    "minWireVersion",
    "ok",
}


@pytest.fixture
def cryptd_port(tmp_path: Path) -> Iterator[int]:
    peer, port = start(tmp_path, "--idleShutdownTimeoutSecs=30")
    yield port
    peer.stop()


def _op_msg(request_id: int, command: dict[str, Any], flags: int = 0) -> bytes:
    payload = struct.pack("<I", flags) + b"\x00" + bson.encode(command)
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload


def _op_compressed(request_id: int, message: bytes, compressor: int) -> bytes:
    original = message[16:]
    data = zlib.compress(original) if compressor == 2 else original
    body = struct.pack("<iiB", 2013, len(original), compressor) + data
    return struct.pack("<iiii", 16 + len(body), request_id, 0, 2012) + body


def _read_reply(sock: socket.socket) -> tuple[int, int, int, dict[str, Any]]:
    """(requestID, responseTo, opCode, document) of the next reply."""
    header = sock.recv(16, socket.MSG_WAITALL)
    length, request_id, response_to, op_code = struct.unpack("<iiii", header)
    body = sock.recv(length - 16, socket.MSG_WAITALL)
    document = bson.decode(body[5:] if op_code == 2013 else body[20:])
    return request_id, response_to, op_code, document


def test_hello_reply_has_mongocryptd_fields(cryptd_port: int) -> None:
    """The handshake reply is mongocryptd's: ``iscryptd: true`` (how drivers recognise it,
    CSE-CRYPTD-12), ``isWritablePrimary`` for ``hello`` and ``ismaster`` for the legacy names,
    and none of mongod's ``helloOk``, ``connectionId``, ``logicalSessionTimeoutMinutes``,
    ``compression`` (mongocryptd sends none, so a driver keeps the legacy handshake, starts no
    session and never compresses)."""
    with pymongo.MongoClient[Any](
        f"mongodb://127.0.0.1:{cryptd_port}", serverSelectionTimeoutMS=5000
    ) as client:
        hello = client.admin.command({"hello": 1, "helloOk": True})
        assert set(hello) == HELLO_FIELDS | {"isWritablePrimary"}
        assert hello["iscryptd"] is True and hello["maxWireVersion"] == MAX_WIRE_VERSION
        legacy = client.admin.command("isMaster")
        assert set(legacy) == HELLO_FIELDS | {"ismaster"}
        assert client.admin.command("ismaster")["ismaster"] is True
        # pymongo checked every reply's responseTo against its request: it saw a server
        assert (
            client.topology_description.server_descriptions()[
                ("127.0.0.1", cryptd_port)
            ].server_type_name
            == "Standalone"
        )


def test_replies_number_themselves_and_answer_their_request(cryptd_port: int) -> None:
    """Each reply has its own, increasing requestID (never 0) and the request's id as
    responseTo, on one connection and across connections."""
    seen = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", cryptd_port), timeout=10) as sock:
            for request_id in (7, 4242):
                sock.sendall(_op_msg(request_id, {"ping": 1, "$db": "admin"}))
                reply_id, response_to, op_code, reply = _read_reply(sock)
                assert (response_to, op_code, reply["ok"]) == (request_id, 2013, 1.0)
                seen.append(reply_id)
    assert 0 not in seen and seen == sorted(seen) and len(set(seen)) == len(seen)


def test_more_to_come_gets_no_reply(cryptd_port: int) -> None:
    """An OP_MSG with the moreToCome flag is answered with nothing: the next reply on the
    connection answers the next request."""
    with socket.create_connection(("127.0.0.1", cryptd_port), timeout=10) as sock:
        sock.sendall(_op_msg(1, {"ping": 1, "$db": "admin"}, flags=2))
        sock.sendall(_op_msg(2, {"ping": 1, "$db": "admin"}))
        assert _read_reply(sock)[1] == 2


@pytest.mark.parametrize("compressor", [0, 2], ids=["noop", "zlib"])
def test_op_compressed_is_served(cryptd_port: int, compressor: int) -> None:
    """OP_COMPRESSED with the noop or zlib compressor is decompressed and answered."""
    with socket.create_connection(("127.0.0.1", cryptd_port), timeout=10) as sock:
        message = _op_msg(0, {"isMaster": 1, "$db": "admin"})
        sock.sendall(_op_compressed(11, message, compressor))
        _, response_to, op_code, reply = _read_reply(sock)
        assert (response_to, op_code, reply["iscryptd"]) == (11, 2013, True)


def test_op_compressed_with_another_compressor_gets_an_error_reply(cryptd_port: int) -> None:
    """A compressor the daemon does not have (snappy, id 1) gets an error reply, and the
    connection stays usable (it used to be closed)."""
    with socket.create_connection(("127.0.0.1", cryptd_port), timeout=10) as sock:
        message = _op_msg(0, {"ping": 1, "$db": "admin"})
        sock.sendall(_op_compressed(5, message, 1))
        _, response_to, op_code, reply = _read_reply(sock)
        assert (response_to, op_code, reply["ok"]) == (5, 2013, 0.0)
        assert "compressor id 1 is not supported" in reply["errmsg"]
        sock.sendall(_op_msg(6, {"ping": 1, "$db": "admin"}))
        assert _read_reply(sock)[1:] == (6, 2013, {"ok": 1.0})


def test_bind_ip_takes_a_comma_separated_list(tmp_path: Path) -> None:
    """``--bind_ip`` takes several addresses, as mongocryptd's does; one idle clock for all."""
    peer, port = start(tmp_path, "--idleShutdownTimeoutSecs=30", "--bind_ip=127.0.0.1, 127.0.0.2")
    try:
        for host in ("127.0.0.1", "127.0.0.2"):
            assert port_open(port, host)
            with pymongo.MongoClient[Any](
                f"mongodb://{host}:{port}", serverSelectionTimeoutMS=5000
            ) as client:
                assert client.admin.command("hello")["iscryptd"] is True
    finally:
        peer.stop()


def test_bind_ip_with_an_empty_address() -> None:
    result = subprocess.run(
        [*CRYPTD, "--bind_ip=127.0.0.1,"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "--bind_ip has an empty address" in result.stderr


def test_op_compressed_cannot_inflate_past_its_announced_size(cryptd_port: int) -> None:
    """zlib data that inflates to more than the announced size gets an error reply, without
    being inflated whole."""
    with socket.create_connection(("127.0.0.1", cryptd_port), timeout=10) as sock:
        bomb = zlib.compress(bytes(10_000_000))
        body = struct.pack("<iiB", 2013, 100, 2) + bomb
        sock.sendall(struct.pack("<iiii", 16 + len(body), 9, 0, 2012) + body)
        _, response_to, _, reply = _read_reply(sock)
        assert (response_to, reply["ok"]) == (9, 0.0)
        assert "bytes where 100 were announced" in reply["errmsg"]
