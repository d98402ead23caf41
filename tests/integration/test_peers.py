"""The peers start, answer, and report clearly when they cannot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from helpers.peers.process import Peer, PeerError, free_port, port_open


def test_peer_that_exits_reports_its_log(tmp_path: Path) -> None:
    with pytest.raises(PeerError, match="exited with 3:\nboom"):
        Peer(
            "failing",
            [sys.executable, "-c", "print('boom', flush=True); raise SystemExit(3)"],
            tmp_path / "log",
            ready=lambda: False,
        )


def test_peer_that_never_gets_ready_is_killed(tmp_path: Path) -> None:
    with pytest.raises(PeerError, match="not ready after 1 s"):
        Peer(
            "sleeper",
            [sys.executable, "-c", "import time; print('waiting', flush=True); time.sleep(60)"],
            tmp_path / "log",
            ready=lambda: False,
            timeout=1,
        )


def test_free_port_is_free() -> None:
    assert not port_open(free_port())


def test_secantusdb_answers(mongodb_uri: str) -> None:
    import pymongo

    with pymongo.MongoClient[Any](mongodb_uri) as client:
        assert client.admin.command("ping")["ok"] == 1
