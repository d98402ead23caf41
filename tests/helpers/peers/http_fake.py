"""A scripted HTTP server for the metadata services on-demand credentials come from (GCP metadata,
Azure IMDS, AWS ECS/EC2/STS): routes map to canned replies, every request is recorded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """What the server answers: ``delay`` stalls before the status line, ``dribble`` sends the
    body's first byte and then one more every ``dribble`` seconds until the test ends (or, with
    ``dribble_for``, for that many seconds, and then stalls)."""

    status: int = 200
    body: Union[bytes, str, Mapping[str, Any]] = b""
    delay: float = 0.0
    dribble: float = 0.0
    dribble_for: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Received:
    method: str
    target: str  # path and raw query, as sent
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


class FakeServer:
    """Routes (method, path) to a :class:`Reply`; anything else gets 404 ``no route``."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Reply] = {}
        self.received: list[Received] = []
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]  # the handler finds the fake on its server
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def route(self, method: str, path: str, body: Any = b"", **options: Any) -> None:
        self.routes[(method, path)] = Reply(body=body, **options)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]  # set on the server in FakeServer.__init__
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake.received.append(Received(self.command, self.path, headers, body))
        reply = fake.routes.get((self.command, urlsplit(self.path).path), Reply(404, "no route"))
        if reply.delay and fake.stopping.wait(reply.delay):
            return
        data = reply.payload()
        try:
            self.send_response(reply.status)
            if reply.dribble:
                self.end_headers()  # HTTP/1.0 without Content-Length: the body ends at close
                self.wfile.write(data[:1])
                started = time.monotonic()
                while not fake.stopping.wait(reply.dribble):
                    if reply.dribble_for and time.monotonic() - started >= reply.dribble_for:
                        fake.stopping.wait()
                        return
                    self.wfile.write(b" ")
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeouts)
