"""An HTTPS mock of the cloud KMS APIs libmongocrypt talks to (no emulator exists for Azure or
GCP): AWS KMS Encrypt/Decrypt, Azure Key Vault wrapkey/unwrapkey with its token endpoint, and GCP
Cloud KMS encrypt/decrypt with its token endpoint. Keys are wrapped for real (AES-GCM under a key
held by the mock), so a wrong or corrupted ciphertext fails as it would on a real KMS.

Failpoints, as the drivers' own test tooling offers them, apply to every provider:
``set_failpoint("network", n)`` drops the next n connections after reading the request;
``set_failpoint("http", n)`` answers the next n requests with HTTP 429. They are also reachable as
``POST /set_failpoint/network`` / ``/http`` with ``{"count": n}``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .certs import TlsFiles

AZURE_TOKEN = "mock-azure-access-token"
GCP_TOKEN = "mock-gcp-access-token"


class CloudKmsMock:
    """The mock server; ``endpoint`` is ``127.0.0.1:PORT`` (libmongocrypt wants a dotted host)."""

    def __init__(
        self,
        tls: TlsFiles,
        cert: Optional[Path] = None,
        key: Optional[Path] = None,
        delay: float = 0.0,
    ) -> None:
        self._aead = AESGCM(AESGCM.generate_key(256))
        self._lock = threading.Lock()
        self._failures = {"network": 0, "http": 0}
        self.requests: list[str] = []  # "METHOD path" of every request served
        self.delay = delay  # seconds each KMS reply waits (to observe concurrency)
        self.in_flight = 0
        self.max_in_flight = 0
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert or tls.server_cert, key or tls.server_key)
        mock = self

        class Handler(_Handler):
            owner = mock

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_failpoint(self, kind: str, count: int) -> None:
        with self._lock:
            self._failures[kind] = count

    def take_failure(self) -> Optional[str]:
        with self._lock:
            for kind in ("network", "http"):
                if self._failures[kind] > 0:
                    self._failures[kind] -= 1
                    return kind
        return None

    def reset(self) -> None:
        with self._lock:
            self._failures = {"network": 0, "http": 0}
            self.requests.clear()
            self.max_in_flight = 0

    def wrap(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, None)

    def unwrap(self, ciphertext: bytes) -> bytes:
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _b64(data: bytes, url: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data) if url else base64.b64encode(data)
    return encoded.decode().rstrip("=") if url else encoded.decode()


def _unb64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


class _Handler(BaseHTTPRequestHandler):
    owner: CloudKmsMock
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on ``owner.requests`` instead."""

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.owner.requests.append(f"POST {self.path}")
        failpoint = re.fullmatch(r"/set_failpoint/(network|http)", self.path)
        if failpoint:
            self.owner.set_failpoint(failpoint.group(1), int(json.loads(body)["count"]))
            return self._reply(200, {"ok": True})
        failure = self.owner.take_failure()
        if failure == "network":
            self.close_connection = True
            self.connection.close()
            return None
        if failure == "http":
            return self._reply(429, {"__type": "ThrottlingException", "message": "failpoint"})
        with self.owner._lock:
            self.owner.in_flight += 1
            self.owner.max_in_flight = max(self.owner.max_in_flight, self.owner.in_flight)
        try:
            if self.owner.delay:
                time.sleep(self.owner.delay)
            return self._route(body)
        except Exception as exc:  # a malformed request or ciphertext: answer as a KMS would
            return self._reply(400, {"__type": "ValidationException", "message": repr(exc)})
        finally:
            with self.owner._lock:
                self.owner.in_flight -= 1

    def _route(self, body: bytes) -> None:
        path = self.path.split("?")[0]
        target = self.headers.get("X-Amz-Target", "")
        if target == "TrentService.Encrypt":
            request = json.loads(body)
            blob = self.owner.wrap(_unb64(request["Plaintext"]))
            return self._reply(200, {"CiphertextBlob": _b64(blob), "KeyId": request["KeyId"]})
        if target == "TrentService.Decrypt":
            plaintext = self.owner.unwrap(_unb64(json.loads(body)["CiphertextBlob"]))
            return self._reply(200, {"Plaintext": _b64(plaintext), "KeyId": "mock"})
        if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", path):
            return self._reply(
                200, {"access_token": AZURE_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
            )
        if path == "/token":
            assert b"assertion=" in body
            return self._reply(
                200, {"access_token": GCP_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
            )
        azure = re.fullmatch(r"/keys/([^/]+)/([^/]*)/(wrapkey|unwrapkey)", path)
        if azure:
            if self.headers.get("Authorization") != f"Bearer {AZURE_TOKEN}":
                return self._reply(401, {"error": {"code": "Unauthorized"}})
            value = _unb64(json.loads(body)["value"])
            result = (
                self.owner.wrap(value) if azure.group(3) == "wrapkey" else self.owner.unwrap(value)
            )
            return self._reply(
                200,
                {
                    "kid": f"https://{self.headers['Host']}/keys/{azure.group(1)}",
                    "value": _b64(result, url=True),
                },
            )
        gcp = re.fullmatch(r"/v1/projects/.+/cryptoKeys/([^/:]+):(encrypt|decrypt)", path)
        if gcp:
            if self.headers.get("Authorization") != f"Bearer {GCP_TOKEN}":
                return self._reply(401, {"error": {"code": 401}})
            request = json.loads(body)
            if gcp.group(2) == "encrypt":
                return self._reply(
                    200,
                    {
                        "ciphertext": _b64(self.owner.wrap(_unb64(request["plaintext"]))),
                        "name": gcp.group(1),
                    },
                )
            return self._reply(
                200, {"plaintext": _b64(self.owner.unwrap(_unb64(request["ciphertext"])))}
            )
        return self._reply(404, {"error": f"no mock route for {path}"})
