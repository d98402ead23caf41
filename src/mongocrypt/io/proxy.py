"""Reaching a KMS through an HTTP proxy: ``kms_connect_callback`` implementations.

The proxy only relays bytes: the callback opens a tunnel with ``CONNECT host:port``, and the KMS
transport then runs TLS to the KMS through it, verifying the KMS host's certificate, so the proxy
never sees plaintext. The connection to the proxy itself may be plain or TLS.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from typing import Optional

from mongocrypt.io.kms import KmsConnectContext

__all__ = ["AsyncHttpProxyConnect", "HttpProxyConnect", "ProxyError"]

_MAX_HEADER = 64 * 1024


class ProxyError(ConnectionError):
    """The proxy refused or broke the tunnel (a network error: the KMS request is retried)."""


class HttpProxyConnect:
    """A ``kms_connect_callback`` tunnelling through an HTTP proxy.

    :param host: the proxy's host.
    :param port: the proxy's port.
    :param tls: an SSL context to speak TLS to the proxy itself (``None``: plain TCP).
    :param username: proxy Basic authentication user (with ``password``).
    :param password: proxy Basic authentication password (never logged or shown in reprs).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: Optional[ssl.SSLContext] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self._authorization = (
            None
            if username is None
            else base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        )

    def __repr__(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"HttpProxyConnect({scheme}://{self.host}:{self.port})"

    def _request(self, context: KmsConnectContext) -> bytes:
        target = f"{context.host}:{context.port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if self._authorization:
            lines.append(f"Proxy-Authorization: Basic {self._authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def __call__(self, context: KmsConnectContext) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=context.timeout)
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            sock.sendall(self._request(context))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk or len(head) > _MAX_HEADER:
                    raise ProxyError(f"{self!r} closed the connection before answering CONNECT")
                head += chunk
            _check_status(head, self, context)
            # CONNECT replies have no body; anything after the head belongs to the tunnel, and a
            # conforming proxy sends nothing before the client speaks.
            return sock
        except BaseException:
            sock.close()
            raise


def _check_status(head: bytes, proxy: object, context: KmsConnectContext) -> None:
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        raise ProxyError(
            f"{proxy!r} refused CONNECT {context.host}:{context.port}: {status_line!r}"
        )


class AsyncHttpProxyConnect(HttpProxyConnect):
    """The same tunnel for ``AsyncClientEncryption`` (a coroutine function)."""

    async def __call__(self, context: KmsConnectContext) -> socket.socket:  # type: ignore[override]
        return await asyncio.to_thread(HttpProxyConnect.__call__, self, context)
