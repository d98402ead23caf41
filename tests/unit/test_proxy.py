"""io/proxy.py: CONNECT tunnels through the project's HTTP proxy (plain and TLS) on real sockets,
proxy authentication, and the ways a proxy can refuse or break a tunnel."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from helpers.peers.certs import TlsFiles
from helpers.peers.http_proxy import ConnectProxy
from mongocrypt.io.kms import KmsConnectContext
from mongocrypt.io.proxy import AsyncHttpProxyConnect, HttpProxyConnect, ProxyError


def serve(*, reply: bytes, echo: bool = False, hold: bool = False) -> tuple[int, list[bytes]]:
    """A one-connection server on 127.0.0.1: echoes everything (``echo``), or records what it
    reads up to the end of an HTTP head, answers ``reply``, and closes (after the client does,
    with ``hold``)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def run() -> None:
        with listener, listener.accept()[0] as conn:
            if echo:
                while data := conn.recv(4096):
                    conn.sendall(data)
                return
            head = b""
            while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                head += chunk
            received.append(head)
            conn.sendall(reply)
            if hold:
                with contextlib.suppress(OSError):  # the client resets what it left unread
                    conn.recv(1)

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1]), received


@pytest.fixture
def echo_port() -> int:
    return serve(reply=b"", echo=True)[0]


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    relay = ConnectProxy()
    yield relay
    relay.close()


def target(port: int) -> KmsConnectContext:
    return KmsConnectContext("127.0.0.1", port, 10.0)


def round_trip(sock: socket.socket) -> bytes:
    with sock:
        sock.sendall(b"through the tunnel")
        return sock.recv(100)


def test_the_tunnel_reaches_the_target(proxy: ConnectProxy, echo_port: int) -> None:
    sock = HttpProxyConnect("127.0.0.1", proxy.port)(target(echo_port))
    assert round_trip(sock) == b"through the tunnel"
    assert proxy.tunnels == [f"127.0.0.1:{echo_port}"]


def test_the_tunnel_through_a_tls_proxy(tls: TlsFiles, echo_port: int) -> None:
    relay = ConnectProxy(tls)
    try:
        context = ssl.create_default_context(cafile=str(tls.ca))
        sock = HttpProxyConnect("127.0.0.1", relay.port, tls=context)(target(echo_port))
        assert isinstance(sock, ssl.SSLSocket)
        assert round_trip(sock) == b"through the tunnel"
        assert relay.tunnels == [f"127.0.0.1:{echo_port}"]
    finally:
        relay.close()


def test_a_tls_proxy_with_an_untrusted_certificate_is_refused(tls: TlsFiles) -> None:
    relay = ConnectProxy(tls)
    try:
        context = ssl.create_default_context(cafile=str(tls.other_ca))
        with pytest.raises(ssl.SSLCertVerificationError):
            HttpProxyConnect("127.0.0.1", relay.port, tls=context)(target(1))
        assert relay.tunnels == []
    finally:
        relay.close()


def test_a_refused_connect_is_a_proxy_error(proxy: ConnectProxy, echo_port: int) -> None:
    proxy.refuse = True
    connect = HttpProxyConnect("127.0.0.1", proxy.port)
    with pytest.raises(ProxyError) as info:
        connect(target(echo_port))
    assert str(info.value) == (
        f"HttpProxyConnect(http://127.0.0.1:{proxy.port}) refused CONNECT "
        f"127.0.0.1:{echo_port}: 'HTTP/1.1 403 Forbidden'"
    )
    assert isinstance(info.value, ConnectionError)  # a network error: the KMS request is retried


def test_a_proxy_closing_before_answering_is_a_proxy_error() -> None:
    port, received = serve(reply=b"")
    with pytest.raises(ProxyError, match="closed the connection before answering CONNECT"):
        HttpProxyConnect("127.0.0.1", port)(target(443))
    assert received[0].startswith(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n")


def test_an_endless_head_is_cut_off() -> None:
    port, _ = serve(reply=b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 80_000, hold=True)
    with pytest.raises(ProxyError, match="before answering CONNECT"):
        HttpProxyConnect("127.0.0.1", port)(target(443))


def test_basic_authentication_is_sent_and_the_password_never_shown() -> None:
    port, received = serve(reply=b"HTTP/1.1 200 Connection established\r\n\r\n")
    connect = HttpProxyConnect("127.0.0.1", port, username="kms-user", password="pr0xy-secret")
    connect(target(5696)).close()
    credentials = base64.b64encode(b"kms-user:pr0xy-secret").decode()
    assert received == [
        b"CONNECT 127.0.0.1:5696 HTTP/1.1\r\nHost: 127.0.0.1:5696\r\n"
        + f"Proxy-Authorization: Basic {credentials}\r\n\r\n".encode()
    ]
    assert repr(connect) == f"HttpProxyConnect(http://127.0.0.1:{port})"
    assert "pr0xy-secret" not in repr(connect) + str(vars(connect))


def test_without_a_username_no_authorization_is_sent() -> None:
    port, received = serve(reply=b"HTTP/1.1 200 Connection established\r\n\r\n")
    HttpProxyConnect("127.0.0.1", port)(target(443)).close()
    assert b"Proxy-Authorization" not in received[0]


def test_the_async_callback_tunnels_too(proxy: ConnectProxy, echo_port: int) -> None:
    connect = AsyncHttpProxyConnect("127.0.0.1", proxy.port)
    sock = asyncio.run(connect(target(echo_port)))
    assert round_trip(sock) == b"through the tunnel"
    assert proxy.tunnels == [f"127.0.0.1:{echo_port}"]
