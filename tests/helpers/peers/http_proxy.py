"""A small HTTP CONNECT proxy (plain or TLS) for the KMS proxy tests: it relays bytes, records the
tunnels it opened, and can be told to refuse them."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Optional

from .certs import TlsFiles


class ConnectProxy:
    """Listens on 127.0.0.1; ``tunnels`` lists the ``host:port`` targets of CONNECT requests.

    :param tls: serve the proxy itself over TLS with the test server certificate.
    :param route: maps a requested ``host:port`` to where the tunnel really goes (for public KMS
        host names pointing at local emulators); default: as requested.
    """

    def __init__(
        self, tls: Optional[TlsFiles] = None, route: Optional[dict[str, tuple[str, int]]] = None
    ) -> None:
        self.tunnels: list[str] = []
        self.refuse = False
        self.route = route or {}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._context: Optional[ssl.SSLContext] = None
        if tls is not None:
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(tls.server_cert, tls.server_key)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self._context is not None:
                client = self._context.wrap_socket(client, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT" or self.refuse:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection(
                self.route.get(target, (host, int(port))), timeout=10
            )
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._relay(client, upstream)
        except OSError:
            pass
        finally:
            client.close()

    @staticmethod
    def _relay(client: socket.socket, upstream: socket.socket) -> None:
        with upstream:
            sockets = [client, upstream]
            while True:
                # An SSL socket may hold decrypted bytes select() cannot see.
                ready: list[socket.socket] = (
                    [client] if isinstance(client, ssl.SSLSocket) and client.pending() else []
                )
                if not ready:
                    ready, _, _ = select.select(sockets, [], [], 10)
                    if not ready:
                        return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
