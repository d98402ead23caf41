"""The steps a credential source takes, and what both runners need to perform them.

A source is a generator (:data:`Flow`): it yields an :class:`HttpRequest` or a :class:`ReadFile`,
receives a :class:`Reply` or the file's bytes, and returns the provider's settings; it raises
:class:`Failure` when something is wrong. It does no I/O itself, so the asyncio runner and the
blocking one generated from it (``_async_runner`` and ``_sync_runner``) drive the same sources.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar, Union

from pymongo import _csot

from mongocrypt.errors import MongoCryptTimeoutError, redact

#: Characters of a reply body quoted in an error message.
BODY_IN_MESSAGE = 1000
#: Replies larger than this are refused (a credential reply is a few kilobytes).
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP exchange; ``source`` names the service in messages (never secrets in ``url``)."""

    source: str
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    form: Optional[Mapping[str, str]] = field(default=None, repr=False)
    trust_env: bool = False


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class ReadFile:
    """Read a local file named by the environment variable ``variable``."""

    variable: str
    path: str


Step = Union[HttpRequest, ReadFile]
T = TypeVar("T")
#: A source: a generator that yields steps, receives their results and returns the settings.
Flow = Generator[Step, Any, T]


class Failure(Exception):
    """A source failed; the runner turns it into a CredentialsError naming the provider.

    :param detail: what failed (URL, status, redacted body).
    :param cause: the underlying exception, chained to the CredentialsError.
    """

    def __init__(self, detail: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.cause = cause


def url(base: str, path: str) -> str:
    """``path`` on the service at ``base`` (a trailing ``/`` of ``base`` is ignored)."""
    return base.rstrip("/") + path


# -- performing steps (both runners) --------------------------------------------------------------


def exchange_limit(timeout: float) -> tuple[float, bool]:
    """Seconds one exchange may take: ``timeout`` capped by the operation's CSOT budget.

    :returns: the limit, and whether the budget (not ``timeout``) set it.
    :raises MongoCryptTimeoutError: the budget has already run out.
    """
    remaining = _csot.remaining()
    if remaining is None or remaining >= timeout:
        return timeout, False
    if remaining <= 0:
        raise MongoCryptTimeoutError(
            "the operation's time budget ran out before fetching credentials"
        )
    return remaining, True


def timed_out(request: HttpRequest, timeout: float, cause: BaseException) -> Failure:
    return Failure(
        f"{request.source} at {request.url} did not reply in full within {timeout:g} s", cause
    )


def budget_ran_out(request: HttpRequest) -> MongoCryptTimeoutError:
    return MongoCryptTimeoutError(
        f"the operation's time budget ran out waiting for {request.source} at {request.url}"
    )


def transport_failed(request: HttpRequest, exc: BaseException) -> Failure:
    return Failure(
        f"request to {request.source} at {request.url} failed: {type(exc).__name__}: {exc}", exc
    )


def step_source(step: Step) -> str:
    """What a step reads from, for the log: the service, or the environment variable's file."""
    if isinstance(step, HttpRequest):
        return step.source
    return f"the file named by {step.variable}"


def read_file(step: ReadFile) -> bytes:
    """The file's contents (at most :data:`MAX_BODY` bytes); blocks."""
    try:
        with open(step.path, "rb") as file:
            return file.read(MAX_BODY)
    except OSError as exc:
        raise Failure(
            f"could not read the file named by {step.variable} ({step.path}): "
            f"{exc.strerror or type(exc).__name__}",
            exc,
        ) from None


class Body:
    """Collects a reply body, refusing oversized ones."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > MAX_BODY:
            raise Failure(
                f"{self._request.source} at {self._request.url} sent a reply larger than "
                f"{MAX_BODY} bytes"
            )

    def reply(self, status: int) -> Reply:
        return Reply(status, bytes(self._data))


# -- reading replies ------------------------------------------------------------------------------


def quoted_body(reply: Reply) -> str:
    """The body for a message: decoded, secrets redacted, then truncated."""
    text = reply.body.decode("utf-8", "replace")
    text = redact(text)
    if len(text) > BODY_IN_MESSAGE:
        text = f"{text[:BODY_IN_MESSAGE]}... ({len(text) - BODY_IN_MESSAGE} more characters)"
    return repr(text)


def reply_failure(request: HttpRequest, reply: Reply, problem: str) -> Failure:
    return Failure(
        f"{request.source} at {request.url} {problem} "
        f"(HTTP {reply.status}, body {quoted_body(reply)})"
    )


def expect_ok(request: HttpRequest, reply: Reply) -> None:
    if reply.status != 200:
        raise reply_failure(request, reply, "replied with an error")


def json_object(request: HttpRequest, reply: Reply) -> dict[str, Any]:
    """The reply's JSON object; a non-200 status or a body that is not one fails."""
    expect_ok(request, reply)
    try:
        document = json.loads(reply.body)
    except ValueError:
        raise reply_failure(request, reply, "replied with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise reply_failure(request, reply, "replied with JSON that is not an object")
    return document


def required_str(request: HttpRequest, reply: Reply, document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise reply_failure(request, reply, f"replied without a string {name}")
    return value
