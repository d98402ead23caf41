"""On-demand KMS credentials: what the engine asks for in the ``NEED_KMS_CREDENTIALS`` state.

A KMS provider configured as an empty document (``{"aws": {}}``) is filled in only when
libmongocrypt asks for it, never in advance. :meth:`OnDemandCredentials.fetch` (or
:meth:`~OnDemandCredentials.fetch_async`) returns a new mapping holding exactly the providers asked
for, each from its source:

``aws``
    The user's ``aws_provider`` function when one is given (it replaces discovery). Otherwise the
    MongoDB authentication specification's discovery order, without URI credentials:

    1. environment variables ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and, optionally,
       ``AWS_SESSION_TOKEN``;
    2. web identity: the token in ``AWS_WEB_IDENTITY_TOKEN_FILE`` exchanged for temporary
       credentials of ``AWS_ROLE_ARN`` by STS ``AssumeRoleWithWebIdentity`` (session name from
       ``AWS_ROLE_SESSION_NAME``, or a random one);
    3. ECS: ``GET`` of ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` on the task metadata endpoint;
    4. EC2 instance metadata (IMDSv2): a session token, then the instance's IAM role, then its
       credentials.

    The first source that is configured is used; a configured source that fails raises at once.
    When none gives credentials the error lists what was tried.

``gcp``
    The access token of the instance's default service account, from the GCE metadata server.

``azure``
    A managed-identity access token for Key Vault, from the Azure Instance Metadata Service (IMDS).
    Tokens are kept in a process-wide, thread-safe cache keyed by the IMDS token URL and reused
    while they expire more than a minute from now (the expiry counts from just before the request).

Named providers (``"aws:name"``) never get automatic credentials. Every failure raises
:class:`~mongocrypt.errors.CredentialsError`, naming the provider and the URL and quoting the
reply's status and (truncated) body; secrets in a quoted body are redacted first, and no message,
repr or log line carries a token or key. Each HTTP exchange must complete, from connecting to the
last byte of the reply, within ``timeout`` seconds; requests to metadata services ignore proxy
environment variables, the STS request honours them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import quote

import httpx
from pymongo import _csot

from mongocrypt.errors import CredentialsError, MongoCryptTimeoutError, redact

__all__ = ["AwsCredentialProvider", "CredentialEndpoints", "OnDemandCredentials"]

#: A user-supplied function returning AWS settings: ``accessKeyId``, ``secretAccessKey`` and,
#: optionally, ``sessionToken`` (all strings).
AwsCredentialProvider = Callable[[], Mapping[str, Any]]

_SUPPORTED = ("aws", "gcp", "azure")
#: Characters of a reply body quoted in an error message.
_BODY_IN_MESSAGE = 1000
#: Replies larger than this are refused (a credential reply is a few kilobytes).
_MAX_BODY = 1 << 20
#: A cached Azure token is reused only while it expires more than this many seconds from now.
_AZURE_EXPIRY_MARGIN = 60.0
_AZURE_TOKEN_PATH = (
    "/metadata/identity/oauth2/token"
    "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net%2F"
)
_GCP_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
_EC2_ROLES_PATH = "/latest/meta-data/iam/security-credentials/"


@dataclass(frozen=True)
class CredentialEndpoints:
    """Where the automatic credential sources live; tests point them at local mocks.

    Each field is a base URL (scheme, host and optional port; a trailing ``/`` is ignored). The
    defaults are the real services; :meth:`from_environment`, which :class:`OnDemandCredentials`
    calls at each fetch unless given endpoints, applies ``GCE_METADATA_HOST`` as Google's libraries
    do.

    :param gcp_metadata: the GCE metadata server.
    :param azure_imds: the Azure Instance Metadata Service.
    :param aws_ec2_metadata: the EC2 instance metadata service.
    :param aws_ecs: the ECS task metadata endpoint.
    :param aws_sts: AWS STS, for web identity.
    :raises ValueError: a URL is not ``http://`` or ``https://``.
    """

    gcp_metadata: str = "http://metadata.google.internal"
    azure_imds: str = "http://169.254.169.254"
    aws_ec2_metadata: str = "http://169.254.169.254"
    aws_ecs: str = "http://169.254.170.2"
    aws_sts: str = "https://sts.amazonaws.com"

    def __post_init__(self) -> None:
        for name in ("gcp_metadata", "azure_imds", "aws_ec2_metadata", "aws_ecs", "aws_sts"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"CredentialEndpoints.{name} must be a str, not {type(value)}")
            if not value.startswith(("http://", "https://")):
                raise ValueError(f"CredentialEndpoints.{name} must be an http(s) URL: {value!r}")

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None) -> CredentialEndpoints:
        """The default endpoints, with the GCE metadata host taken from ``GCE_METADATA_HOST``.

        :param environ: the variables to read (default: ``os.environ``).
        """
        env = os.environ if environ is None else environ
        host = env.get("GCE_METADATA_HOST", "").strip()
        return cls(gcp_metadata=f"http://{host}") if host else cls()


class OnDemandCredentials:
    """Obtains the credentials of on-demand KMS providers (``aws``, ``gcp``, ``azure``).

    :param aws_provider: called for ``aws`` instead of discovery; returns ``accessKeyId``,
        ``secretAccessKey`` and optionally ``sessionToken``. The async path runs it in a thread.
    :param endpoints: where the sources live (default: :meth:`CredentialEndpoints.from_environment`
        at each fetch).
    :param timeout: seconds each HTTP exchange may take in all (the specification's 10 by default).
    :raises TypeError: ``aws_provider`` is not callable or ``endpoints`` has the wrong type.
    :raises ValueError: ``timeout`` is not a positive number.
    """

    def __init__(
        self,
        aws_provider: Optional[AwsCredentialProvider] = None,
        endpoints: Optional[CredentialEndpoints] = None,
        timeout: float = 10.0,
    ) -> None:
        if aws_provider is not None and not callable(aws_provider):
            raise TypeError(f"aws_provider must be callable, not {type(aws_provider)}")
        if endpoints is not None and not isinstance(endpoints, CredentialEndpoints):
            raise TypeError(f"endpoints must be a CredentialEndpoints, not {type(endpoints)}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout)}")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self._aws_provider = aws_provider
        self._endpoints = endpoints
        self._timeout = float(timeout)

    def __repr__(self) -> str:
        provider = "custom" if self._aws_provider is not None else "discovery"
        return (
            f"OnDemandCredentials(aws={provider}, endpoints={self._endpoints!r}, "
            f"timeout={self._timeout})"
        )

    def fetch(self, providers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Obtain the settings of each provider in ``providers``.

        :param providers: provider names libmongocrypt asked for, e.g. ``("aws", "gcp")``.
        :returns: provider name -> settings for libmongocrypt, only for ``providers``.
        :raises CredentialsError: a provider is named or unsupported, or its source failed.
        :raises TypeError: ``providers`` is a single string or holds something else than strings.
        """
        names = _checked_providers(providers)
        endpoints = self._endpoints or CredentialEndpoints.from_environment()
        result: dict[str, dict[str, Any]] = {}
        with _SyncRunner(self._timeout) as runner:
            for name in names:
                if name == "aws" and self._aws_provider is not None:
                    result[name] = _call_aws_provider(self._aws_provider)
                else:
                    result[name] = runner.run(name, _flow(name, endpoints))
        return result

    async def fetch_async(self, providers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The same as :meth:`fetch`, without blocking the event loop.

        :param providers: provider names libmongocrypt asked for, e.g. ``("aws", "gcp")``.
        :returns: provider name -> settings for libmongocrypt, only for ``providers``.
        :raises CredentialsError: a provider is named or unsupported, or its source failed.
        :raises TypeError: ``providers`` is a single string or holds something else than strings.
        """
        names = _checked_providers(providers)
        endpoints = self._endpoints or CredentialEndpoints.from_environment()
        result: dict[str, dict[str, Any]] = {}
        async with _AsyncRunner(self._timeout) as runner:
            for name in names:
                if name == "aws" and self._aws_provider is not None:
                    result[name] = await _call_aws_provider_async(self._aws_provider)
                else:
                    result[name] = await runner.run(name, _flow(name, endpoints))
        return result


# -- providers and the custom AWS provider ---------------------------------------------------------


def _checked_providers(providers: Sequence[str]) -> list[str]:
    """The distinct provider names, in order; named and unsupported ones are refused."""
    if isinstance(providers, (str, bytes)):
        raise TypeError("providers must be a sequence of provider names, not a single string")
    names = list(dict.fromkeys(providers))
    if not all(isinstance(name, str) for name in names):
        raise TypeError("provider names must be strings")
    named = [name for name in names if ":" in name]
    if named:
        raise CredentialsError(
            f"named KMS providers never get automatic credentials: {', '.join(named)}; "
            "give their credentials in kms_providers"
        )
    unsupported = [name for name in names if name not in _SUPPORTED]
    if unsupported:
        raise CredentialsError(
            f"automatic credentials are not supported for KMS provider(s) "
            f"{', '.join(unsupported)} (only {', '.join(_SUPPORTED)})"
        )
    return names


def _call_aws_provider(provider: AwsCredentialProvider) -> dict[str, Any]:
    try:
        settings = provider()
    except CredentialsError:
        raise
    except Exception as exc:
        raise CredentialsError(
            f"could not obtain aws credentials: the custom aws credential provider raised "
            f"{type(exc).__name__} (see the chained exception)"
        ) from exc
    return _checked_provider_settings(settings)


async def _call_aws_provider_async(provider: AwsCredentialProvider) -> dict[str, Any]:
    try:
        settings = await asyncio.to_thread(provider)
    except CredentialsError:
        raise
    except Exception as exc:
        raise CredentialsError(
            f"could not obtain aws credentials: the custom aws credential provider raised "
            f"{type(exc).__name__} (see the chained exception)"
        ) from exc
    return _checked_provider_settings(settings)


def _checked_provider_settings(settings: object) -> dict[str, Any]:
    """The AWS settings a custom provider returned, validated (the message never shows values)."""
    prefix = "could not obtain aws credentials: the custom aws credential provider"
    if asyncio.iscoroutine(settings):
        settings.close()
        raise CredentialsError(f"{prefix} returned a coroutine; it must be a plain function")
    if not isinstance(settings, Mapping):
        raise CredentialsError(f"{prefix} returned {type(settings).__name__}, not a mapping")
    result: dict[str, Any] = {}
    for name in ("accessKeyId", "secretAccessKey"):
        value = settings.get(name)
        if not isinstance(value, str) or not value:
            raise CredentialsError(f"{prefix} returned no {name} (a non-empty string is required)")
        result[name] = value
    token = settings.get("sessionToken")
    if token is not None:
        if not isinstance(token, str):
            raise CredentialsError(f"{prefix} returned a sessionToken that is not a string")
        if token:
            result["sessionToken"] = token
    return result


# -- the steps a source takes: HTTP exchanges and file reads, run by a sync or an async runner -----


@dataclass(frozen=True)
class _HttpRequest:
    """One HTTP exchange; ``source`` names the service in messages (never secrets in ``url``)."""

    source: str
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    form: Optional[Mapping[str, str]] = field(default=None, repr=False)
    trust_env: bool = False


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class _ReadFile:
    """Read a local file named by the environment variable ``variable``."""

    variable: str
    path: str


_Step = Union[_HttpRequest, _ReadFile]
_T = TypeVar("_T")
#: A source: a generator that yields steps, receives their results and returns the settings.
_Flow = Generator[_Step, Any, _T]


class _Failure(Exception):
    """A source failed; the runner turns it into a CredentialsError naming the provider.

    :param detail: what failed (URL, status, redacted body).
    :param cause: the underlying exception, chained to the CredentialsError.
    """

    def __init__(self, detail: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.cause = cause


def _timed_out(request: _HttpRequest, timeout: float, cause: BaseException) -> _Failure:
    return _Failure(
        f"{request.source} at {request.url} did not reply in full within {timeout:g} s", cause
    )


def _exchange_limit(timeout: float) -> tuple[float, bool]:
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


def _budget_ran_out(request: _HttpRequest) -> MongoCryptTimeoutError:
    return MongoCryptTimeoutError(
        f"the operation's time budget ran out waiting for {request.source} at {request.url}"
    )


def _transport_failed(request: _HttpRequest, exc: BaseException) -> _Failure:
    return _Failure(
        f"request to {request.source} at {request.url} failed: {type(exc).__name__}: {exc}", exc
    )


def _read_failed(step: _ReadFile, exc: OSError) -> _Failure:
    return _Failure(
        f"could not read the file named by {step.variable} ({step.path}): "
        f"{exc.strerror or type(exc).__name__}",
        exc,
    )


class _Body:
    """Collects a reply body, refusing oversized ones."""

    def __init__(self, request: _HttpRequest) -> None:
        self._request = request
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > _MAX_BODY:
            raise _Failure(
                f"{self._request.source} at {self._request.url} sent a reply larger than "
                f"{_MAX_BODY} bytes"
            )

    def reply(self, status: int) -> _Reply:
        return _Reply(status, bytes(self._data))


class _SyncRunner:
    """Runs sources with blocking I/O; one HTTP client per proxy setting, closed at exit."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._clients: dict[bool, httpx.Client] = {}

    def __enter__(self) -> _SyncRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def run(self, provider: str, flow: _Flow[_T]) -> _T:
        """Drive ``flow`` to its result; a step's failure is thrown into the flow."""
        try:
            step = next(flow)
            while True:
                try:
                    outcome = self._perform(step)
                except _Failure as failure:
                    step = flow.throw(failure)
                else:
                    step = flow.send(outcome)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        except _Failure as failure:
            message = f"could not obtain {provider} credentials: {failure.detail}"
            raise CredentialsError(message) from failure.cause
        finally:
            flow.close()

    def _perform(self, step: _Step) -> Union[_Reply, bytes]:
        if isinstance(step, _ReadFile):
            try:
                with open(step.path, "rb") as file:
                    return file.read(_MAX_BODY)
            except OSError as exc:
                raise _read_failed(step, exc) from None
        return self._http(step)

    def _http(self, request: _HttpRequest) -> _Reply:
        client = self._clients.get(request.trust_env)
        if client is None:
            client = httpx.Client(timeout=self._timeout, trust_env=request.trust_env)
            self._clients[request.trust_env] = client
        # httpx limits each read, not the whole exchange: the deadline is checked between reads,
        # so a peer that stalls just before it is cut off by the per-read limit (one more timeout).
        limit, by_budget = _exchange_limit(self._timeout)
        deadline = time.monotonic() + limit
        body = _Body(request)
        try:
            with client.stream(
                request.method,
                request.url,
                headers=request.headers,
                data=request.form,
                timeout=limit,
            ) as response:
                for chunk in response.iter_bytes():
                    body.add(chunk)
                    if time.monotonic() > deadline:
                        break
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the reply took too long", request=response.request)
                return body.reply(response.status_code)
        except httpx.TimeoutException as exc:
            if by_budget:
                raise _budget_ran_out(request) from exc
            raise _timed_out(request, self._timeout, exc) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_failed(request, exc) from None


class _AsyncRunner:
    """Runs sources with asyncio; clients are built in a thread (loading CA files blocks)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._clients: dict[bool, httpx.AsyncClient] = {}

    async def __aenter__(self) -> _AsyncRunner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def run(self, provider: str, flow: _Flow[_T]) -> _T:
        """Drive ``flow`` to its result; a step's failure is thrown into the flow."""
        try:
            step = next(flow)
            while True:
                try:
                    outcome = await self._perform(step)
                except _Failure as failure:
                    step = flow.throw(failure)
                else:
                    step = flow.send(outcome)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        except _Failure as failure:
            message = f"could not obtain {provider} credentials: {failure.detail}"
            raise CredentialsError(message) from failure.cause
        finally:
            flow.close()

    async def _perform(self, step: _Step) -> Union[_Reply, bytes]:
        if isinstance(step, _ReadFile):
            try:
                return await asyncio.to_thread(_read_file, step.path)
            except OSError as exc:
                raise _read_failed(step, exc) from None
        return await self._http(step)

    async def _http(self, request: _HttpRequest) -> _Reply:
        client = self._clients.get(request.trust_env)
        if client is None:
            client = await asyncio.to_thread(
                httpx.AsyncClient, timeout=self._timeout, trust_env=request.trust_env
            )
            self._clients[request.trust_env] = client
        limit, by_budget = _exchange_limit(self._timeout)
        try:
            return await asyncio.wait_for(self._exchange(client, request), limit)
        except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
            if by_budget:
                raise _budget_ran_out(request) from exc
            raise _timed_out(request, self._timeout, exc) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_failed(request, exc) from None

    @staticmethod
    async def _exchange(client: httpx.AsyncClient, request: _HttpRequest) -> _Reply:
        body = _Body(request)
        async with client.stream(
            request.method, request.url, headers=request.headers, data=request.form
        ) as response:
            async for chunk in response.aiter_bytes():
                body.add(chunk)
            return body.reply(response.status_code)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(_MAX_BODY)


# -- reading replies ------------------------------------------------------------------------------


def _quoted_body(reply: _Reply) -> str:
    """The body for a message: decoded, secrets redacted, then truncated."""
    text = reply.body.decode("utf-8", "replace")
    text = redact(text)
    if len(text) > _BODY_IN_MESSAGE:
        text = f"{text[:_BODY_IN_MESSAGE]}... ({len(text) - _BODY_IN_MESSAGE} more characters)"
    return repr(text)


def _reply_failure(request: _HttpRequest, reply: _Reply, problem: str) -> _Failure:
    return _Failure(
        f"{request.source} at {request.url} {problem} "
        f"(HTTP {reply.status}, body {_quoted_body(reply)})"
    )


def _expect_ok(request: _HttpRequest, reply: _Reply) -> None:
    if reply.status != 200:
        raise _reply_failure(request, reply, "replied with an error")


def _json_object(request: _HttpRequest, reply: _Reply) -> dict[str, Any]:
    """The reply's JSON object; a non-200 status or a body that is not one fails."""
    _expect_ok(request, reply)
    try:
        document = json.loads(reply.body)
    except ValueError:
        raise _reply_failure(request, reply, "replied with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise _reply_failure(request, reply, "replied with JSON that is not an object")
    return document


def _required_str(
    request: _HttpRequest, reply: _Reply, document: Mapping[str, Any], name: str
) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _reply_failure(request, reply, f"replied without a string {name}")
    return value


def _aws_settings(
    request: _HttpRequest,
    reply: _Reply,
    document: Mapping[str, Any],
    token_field: str,
) -> dict[str, Any]:
    """AWS settings from a reply's ``AccessKeyId``, ``SecretAccessKey`` and ``token_field``."""
    settings: dict[str, Any] = {
        "accessKeyId": _required_str(request, reply, document, "AccessKeyId"),
        "secretAccessKey": _required_str(request, reply, document, "SecretAccessKey"),
    }
    token = document.get(token_field)
    if token is not None and not isinstance(token, str):
        raise _reply_failure(request, reply, f"replied with a {token_field} that is not a string")
    if token:
        settings["sessionToken"] = token
    return settings


# -- the sources ----------------------------------------------------------------------------------


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _flow(provider: str, endpoints: CredentialEndpoints) -> _Flow[dict[str, Any]]:
    if provider == "gcp":
        return _gcp(endpoints)
    if provider == "azure":
        return _azure(endpoints)
    return _aws(endpoints, os.environ)


def _gcp(endpoints: CredentialEndpoints) -> _Flow[dict[str, Any]]:
    request = _HttpRequest(
        "the GCE metadata server",
        "GET",
        _url(endpoints.gcp_metadata, _GCP_TOKEN_PATH),
        {"Metadata-Flavor": "Google"},
    )
    reply = yield request
    document = _json_object(request, reply)
    return {"accessToken": _required_str(request, reply, document, "access_token")}


class _TokenCache:
    """Access tokens by URL with their expiry on the monotonic clock; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"<_TokenCache of {len(self._entries)} token(s)>"

    def get(self, key: str, margin: float) -> Optional[str]:
        """The token for ``key`` if it expires more than ``margin`` seconds from now."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[1] - time.monotonic() > margin:
            return entry[0]
        return None

    def put(self, key: str, token: str, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = (token, expires_at)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_AZURE_TOKENS = _TokenCache()


def _azure(endpoints: CredentialEndpoints) -> _Flow[dict[str, Any]]:
    url = _url(endpoints.azure_imds, _AZURE_TOKEN_PATH)
    cached = _AZURE_TOKENS.get(url, _AZURE_EXPIRY_MARGIN)
    if cached is not None:
        return {"accessToken": cached}
    request = _HttpRequest(
        "Azure IMDS", "GET", url, {"Metadata": "true", "Accept": "application/json"}
    )
    started = time.monotonic()
    reply = yield request
    document = _json_object(request, reply)
    token = _required_str(request, reply, document, "access_token")
    expires_in = document.get("expires_in")
    if isinstance(expires_in, int) and not isinstance(expires_in, bool):
        expires_in = str(expires_in)
    if not isinstance(expires_in, str) or not re.fullmatch(r"[0-9]+", expires_in.strip()):
        raise _reply_failure(request, reply, "replied without a numeric expires_in")
    _AZURE_TOKENS.put(url, token, started + int(expires_in))
    return {"accessToken": token}


def _aws(endpoints: CredentialEndpoints, env: Mapping[str, str]) -> _Flow[dict[str, Any]]:
    """The authentication specification's discovery order, without URI credentials."""
    key_id = env.get("AWS_ACCESS_KEY_ID", "")
    secret = env.get("AWS_SECRET_ACCESS_KEY", "")
    if key_id and secret:
        settings = {"accessKeyId": key_id, "secretAccessKey": secret}
        token = env.get("AWS_SESSION_TOKEN", "")
        if token:
            settings["sessionToken"] = token
        return settings
    if key_id or secret:
        missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
        present = "AWS_ACCESS_KEY_ID" if key_id else "AWS_SECRET_ACCESS_KEY"
        raise _Failure(f"{present} is set but {missing} is not")
    tried = ["environment variables (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)"]

    token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE", "")
    if token_file:
        return (yield from _aws_web_identity(endpoints, env, token_file))
    tried.append("web identity (AWS_WEB_IDENTITY_TOKEN_FILE is not set)")

    relative_uri = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
    if relative_uri:
        if not relative_uri.startswith("/"):
            relative_uri = "/" + relative_uri
        request = _HttpRequest(
            "the ECS credentials endpoint", "GET", _url(endpoints.aws_ecs, "") + relative_uri
        )
        reply = yield request
        return _aws_settings(request, reply, _json_object(request, reply), "Token")
    tried.append("ECS (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not set)")

    try:
        return (yield from _aws_ec2(endpoints))
    except _Failure as failure:
        tried.append(f"EC2 instance metadata: {failure.detail}")
        raise _Failure("none found; tried " + "; ".join(tried), failure.cause) from None


def _aws_web_identity(
    endpoints: CredentialEndpoints, env: Mapping[str, str], token_file: str
) -> _Flow[dict[str, Any]]:
    role_arn = env.get("AWS_ROLE_ARN", "")
    if not role_arn:
        raise _Failure("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
    contents: bytes = yield _ReadFile("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
    web_token = contents.decode("utf-8", "replace").strip()
    if not web_token:
        raise _Failure(f"the web identity token file {token_file} is empty")
    session_name = env.get("AWS_ROLE_SESSION_NAME", "") or f"mongocrypt-{secrets.token_hex(8)}"
    # POST keeps the web identity token out of the URL (and so out of messages and proxy logs).
    request = _HttpRequest(
        "AWS STS (AssumeRoleWithWebIdentity)",
        "POST",
        _url(endpoints.aws_sts, "/"),
        {"Accept": "application/json"},
        form={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "WebIdentityToken": web_token,
        },
        trust_env=True,
    )
    reply = yield request
    _expect_ok(request, reply)
    if reply.body.lstrip().startswith(b"<"):
        credentials = _sts_xml_credentials(request, reply)
    else:
        document: Any = _json_object(request, reply)
        for name in (
            "AssumeRoleWithWebIdentityResponse",
            "AssumeRoleWithWebIdentityResult",
            "Credentials",
        ):
            document = document.get(name) if isinstance(document, dict) else None
        if not isinstance(document, dict):
            raise _reply_failure(request, reply, "replied without Credentials")
        credentials = document
    return _aws_settings(request, reply, credentials, "SessionToken")


def _sts_xml_credentials(request: _HttpRequest, reply: _Reply) -> dict[str, Any]:
    """The ``Credentials`` element of an STS XML reply, as local name -> text."""
    try:
        root = ElementTree.fromstring(reply.body)
    except ElementTree.ParseError:
        raise _reply_failure(request, reply, "replied with XML that does not parse") from None
    for element in root.iter():
        if element.tag.rpartition("}")[2] == "Credentials":
            return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in element}
    raise _reply_failure(request, reply, "replied without Credentials")


def _aws_ec2(endpoints: CredentialEndpoints) -> _Flow[dict[str, Any]]:
    """IMDSv2: a session token, the role name, then the role's credentials."""
    source = "the EC2 instance metadata service"
    token_request = _HttpRequest(
        source,
        "PUT",
        _url(endpoints.aws_ec2_metadata, "/latest/api/token"),
        {"X-aws-ec2-metadata-token-ttl-seconds": "30"},
    )
    reply = yield token_request
    _expect_ok(token_request, reply)
    session = reply.body.decode("utf-8", "replace").strip()
    if not session:
        raise _Failure(f"{source} at {token_request.url} replied with an empty session token")
    headers = {"X-aws-ec2-metadata-token": session}

    roles_request = _HttpRequest(
        source, "GET", _url(endpoints.aws_ec2_metadata, _EC2_ROLES_PATH), headers
    )
    reply = yield roles_request
    _expect_ok(roles_request, reply)
    roles = reply.body.decode("utf-8", "replace").split()
    if not roles:
        raise _reply_failure(roles_request, reply, "names no IAM role for the instance")

    credentials_request = _HttpRequest(
        source,
        "GET",
        _url(endpoints.aws_ec2_metadata, _EC2_ROLES_PATH + quote(roles[0], safe="")),
        headers,
    )
    reply = yield credentials_request
    return _aws_settings(
        credentials_request, reply, _json_object(credentials_request, reply), "Token"
    )
