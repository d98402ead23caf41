"""KMS requests over TLS: the transport behind every KMS exchange of mongocrypt's own I/O.

One attempt per request per batch, as libmongocrypt drives it: wait its backoff (``usleep``),
connect (directly, or through the user's ``kms_connect_callback``), do TLS with the provider's
options against the KMS host (SNI and verification use the KMS host even through a proxy), send
the request, feed the reply. A network failure is reported with ``fail()`` so libmongocrypt can
schedule a retry (the request then comes back in the next batch); certificate verification
failures and libmongocrypt's own verdicts are final. The requests of one batch run concurrently.

TLS runs on a memory BIO over whatever socket the connection gives, so TLS to the KMS works the
same over a plain socket and over a TLS socket to a proxy. The async transport runs the same
exchange in worker threads, so the event loop never blocks.

Timeouts: 10 s to connect and per read, capped by the operation's remaining budget
(``pymongo.timeout()`` or the client's ``timeout_ms``); an exhausted budget raises
:class:`~mongocrypt.errors.MongoCryptTimeoutError` and is not retried.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import socket
import ssl
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from pymongo import _csot

from mongocrypt.engine import KmsContext, has_kms_in_place_retry
from mongocrypt.errors import MongoCryptError, MongoCryptKmsError, MongoCryptTimeoutError
from mongocrypt.events import (
    EventPublisher,
    KmsRequestFailed,
    KmsRequestStarted,
    KmsRequestSucceeded,
)
from mongocrypt.io.tls import default_kms_context, kms_ssl_contexts

__all__ = [
    "AsyncKmsConnectCallback",
    "AsyncKmsTransport",
    "KmsConnectCallback",
    "KmsConnectContext",
    "KmsTransport",
    "parse_endpoint",
]

#: Seconds allowed to connect, and to wait for each part of a reply, without a CSOT budget.
KMS_TIMEOUT = 10.0


@dataclass(frozen=True)
class KmsConnectContext:
    """What a ``kms_connect_callback`` is asked to connect to.

    :param host: the KMS host (also what TLS verifies, whoever the socket really reaches).
    :param port: the KMS port.
    :param timeout: seconds the connection may take (the remaining budget, at most 10 s).
    """

    host: str
    port: int
    timeout: float


#: Returns a connected, not yet TLS-wrapped socket (a TLS socket to a proxy is fine too).
KmsConnectCallback = Callable[[KmsConnectContext], socket.socket]
AsyncKmsConnectCallback = Callable[[KmsConnectContext], Awaitable[socket.socket]]


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as libmongocrypt gives it; 443 when no port."""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = endpoint.rpartition(":") if ":" in endpoint else (endpoint, "", "")
    return host, int(port) if port else 443


def _budget(limit: float = KMS_TIMEOUT) -> float:
    """Seconds left for the next step: ``limit`` capped by the CSOT budget."""
    remaining = _csot.remaining()
    if remaining is None:
        return limit
    if remaining <= 0:
        raise MongoCryptTimeoutError("the operation's time budget ran out during a KMS request")
    return min(limit, remaining)


class _TlsOverSocket:
    """Client TLS through memory BIOs over a connected socket (plain, or TLS to a proxy)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, host: str) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)

    def _pump(self, operation: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                self.sock.settimeout(_budget())
                data = self.sock.recv(65536)
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
            else:
                self._flush()
                return result

    def _flush(self) -> None:
        pending = self.outgoing.read()
        if pending:
            self.sock.settimeout(_budget())
            self.sock.sendall(pending)

    def handshake(self) -> None:
        self._pump(self.tls.do_handshake)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._pump(self.tls.write, view) :]

    def recv(self, size: int) -> bytes:
        try:
            return bytes(self._pump(self.tls.read, size))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""


class KmsTransport:
    """Services KMS requests synchronously (concurrently within a batch).

    :param tls_options: per-provider TLS options (see :mod:`mongocrypt.io.tls`).
    :param connect_callback: opens the connection instead of a direct TCP connect (proxies).
    :param events: where KMS events go.
    :param max_concurrency: at most this many requests of a batch at once.
    """

    def __init__(
        self,
        tls_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
        connect_callback: Optional[Callable[[KmsConnectContext], socket.socket]] = None,
        events: Optional[EventPublisher] = None,
        max_concurrency: int = 8,
    ) -> None:
        if connect_callback is not None and not callable(connect_callback):
            raise TypeError(
                f"kms_connect_callback must be callable, not {type(connect_callback).__name__}"
            )
        self._contexts = kms_ssl_contexts(tls_options)
        self._default_context: Optional[ssl.SSLContext] = None
        self._connect_callback = connect_callback
        self._events = events or EventPublisher()
        self._max_concurrency = max_concurrency
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None

    def _context_for(self, provider: str) -> ssl.SSLContext:
        context = self._contexts.get(provider)
        if context is None:
            if self._default_context is None:
                self._default_context = default_kms_context()
            context = self._default_context
        return context

    def service(self, requests: Sequence[KmsContext]) -> None:
        """One attempt at every request of a batch; raises the first final failure."""
        if len(requests) == 1:
            self.attempt(requests[0])
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self._max_concurrency, thread_name_prefix="mongocrypt-kms"
            )
        futures = [
            self._pool.submit(contextvars.copy_context().run, self.attempt, request)
            for request in requests
        ]
        errors = [f.exception() for f in futures]  # waits for every attempt
        for error in errors:
            if error is not None:
                raise error

    def attempt(self, kms: KmsContext) -> None:
        """Send one request and feed its reply, reporting network failures to libmongocrypt."""
        provider, endpoint, attempt = kms.kms_provider, kms.endpoint, kms.attempt
        events = self._events
        if events:
            events.publish(KmsRequestStarted(provider, endpoint, attempt))
        started = time.monotonic()

        def failed(error: BaseException, retrying: bool) -> None:
            if events:
                failure = f"{type(error).__name__}: {error}"
                events.publish(
                    KmsRequestFailed(
                        provider, endpoint, attempt, time.monotonic() - started, failure, retrying
                    )
                )

        try:
            retry_reason = self._exchange(kms, provider, endpoint)
        except (MongoCryptError, ssl.SSLCertVerificationError, TypeError) as exc:
            failed(exc, False)
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise MongoCryptKmsError(
                    f"TLS certificate verification failed for KMS {provider} at {endpoint}: {exc}"
                ) from exc
            raise
        except Exception as exc:  # network errors, timeouts, a failing connect callback
            try:
                kms.fail()
            except MongoCryptKmsError as final:
                failed(exc, False)
                raise MongoCryptKmsError(
                    f"{final}, last attempt to {provider} at {endpoint} failed with: {exc}",
                    final.code,
                ) from exc
            failed(exc, True)
            return
        if retry_reason is not None:
            failed(MongoCryptKmsError(retry_reason), True)
        elif events:
            events.publish(
                KmsRequestSucceeded(provider, endpoint, attempt, time.monotonic() - started)
            )

    def _connect(self, host: str, port: int) -> socket.socket:
        timeout = _budget()
        if self._connect_callback is not None:
            sock = self._connect_callback(KmsConnectContext(host, port, timeout))
            if not isinstance(sock, socket.socket):
                raise TypeError(
                    f"kms_connect_callback must return a socket.socket, not {type(sock).__name__}"
                )
            return sock
        return socket.create_connection((host, port), timeout=timeout)

    def _exchange(self, kms: KmsContext, provider: str, endpoint: str) -> Optional[str]:
        """Send ``kms``'s request and feed the reply; says why if libmongocrypt will resend it."""
        delay = kms.usleep / 1e6
        if delay:
            time.sleep(min(delay, _budget(delay)))
        host, port = parse_endpoint(endpoint)
        with self._connect(host, port) as sock:
            tls = _TlsOverSocket(sock, self._context_for(provider), host)
            tls.handshake()
            tls.sendall(kms.message)
            status_line = b""
            while (needed := kms.bytes_needed) > 0:
                data = tls.recv(needed)
                if not data:
                    raise ConnectionError(f"KMS {endpoint} closed the connection mid-reply")
                if not status_line:
                    status_line = data.split(b"\r\n", 1)[0][:64]
                if has_kms_in_place_retry:
                    if kms.feed_with_retry(data):  # libmongocrypt resends the request itself
                        shown = status_line.decode("ascii", "replace")
                        return f"KMS {endpoint} asked for a retry ({shown})"
                else:
                    kms.feed(data)
        return None

    def close(self) -> None:
        """Stop the worker threads (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class AsyncKmsTransport:
    """The asyncio twin of :class:`KmsTransport`: the same exchange, in worker threads.

    :param connect_callback: a coroutine function (run on this event loop) returning a socket.
    """

    def __init__(
        self,
        tls_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
        connect_callback: Optional[AsyncKmsConnectCallback] = None,
        events: Optional[EventPublisher] = None,
    ) -> None:
        if connect_callback is not None and not callable(connect_callback):
            raise TypeError(
                f"kms_connect_callback must be callable, not {type(connect_callback).__name__}"
            )
        self._async_callback = connect_callback
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sync = KmsTransport(
            tls_options, self._call_async_callback if connect_callback else None, events
        )

    def _call_async_callback(self, context: KmsConnectContext) -> socket.socket:
        assert self._async_callback is not None and self._loop is not None
        future = asyncio.run_coroutine_threadsafe(
            _as_coroutine(self._async_callback(context)), self._loop
        )
        return future.result(context.timeout)

    async def service(self, requests: Sequence[KmsContext]) -> None:
        """One attempt at every request of a batch, concurrently, off the event loop."""
        self._loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(asyncio.to_thread(self._sync.attempt, request) for request in requests),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def close(self) -> None:
        self._sync.close()


async def _as_coroutine(value: Union[Awaitable[socket.socket], socket.socket]) -> socket.socket:
    return await value if isinstance(value, Awaitable) else value
