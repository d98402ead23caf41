"""mongocrypt-cryptd: a mongocryptd-compatible daemon (wire protocol, options, idle shutdown)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pymongo
import pytest

from helpers.peers.process import Peer, free_port, port_open

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
        with pymongo.MongoClient(
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
