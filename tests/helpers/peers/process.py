"""Starting a peer process: a free port, readiness, the log when it fails, and a sure stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional


class PeerError(RuntimeError):
    """A peer did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Peer:
    """A child process with its log file; stop() ends it (TERM, then KILL) and its group."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log: Path,
        ready: Callable[[], bool],
        timeout: float = 30.0,
        cwd: Optional[Path] = None,
    ) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            list(args),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                self.stop()
                raise PeerError(f"{name} exited with {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise PeerError(f"{name} was not ready after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(empty log)"

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()
