"""The asynchronous credential runner: it performs the steps of the sources, provider by provider.

Written once as asyncio code, from which tools/gen_sync.py derives the blocking runner: the
blocking calls (a custom AWS provider, reading a file, building an HTTP client, which loads CA
files) go through asyncio's ``to_thread`` in the one and are direct calls in the other.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional, Union

import httpx

from mongocrypt import _log
from mongocrypt.credentials._aws import (
    AwsCredentialProvider,
    checked_provider_settings,
    provider_failed,
)
from mongocrypt.credentials._bound import bounded_async
from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._sources import source
from mongocrypt.credentials._steps import (
    Body,
    Failure,
    Flow,
    HttpRequest,
    Reply,
    Step,
    T,
    budget_ran_out,
    exchange_limit,
    read_file,
    step_source,
    timed_out,
    transport_failed,
)
from mongocrypt.errors import CredentialsError


async def fetch_async(
    names: list[str],
    endpoints: CredentialEndpoints,
    aws_provider: Optional[AwsCredentialProvider],
    timeout: float,
) -> dict[str, dict[str, Any]]:
    """The settings of each provider in ``names`` (checked supported names, without repeats)."""
    result: dict[str, dict[str, Any]] = {}
    async with AsyncRunner(timeout) as runner:
        for name in names:
            if name == "aws" and aws_provider is not None:
                result[name] = await call_aws_provider_async(aws_provider)
                _log.credentials_fetched(name, "the custom credential provider")
            else:
                result[name] = await runner.run(name, source(name, endpoints))
    return result


async def call_aws_provider_async(provider: AwsCredentialProvider) -> dict[str, Any]:
    try:
        settings = await asyncio.to_thread(provider)
    except CredentialsError:
        raise
    except Exception as exc:
        raise provider_failed(exc) from exc
    return checked_provider_settings(settings)


class AsyncRunner:
    """Runs sources; one HTTP client per proxy setting, closed at exit."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._clients: dict[bool, httpx.AsyncClient] = {}

    async def __aenter__(self) -> AsyncRunner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def run(self, provider: str, flow: Flow[T]) -> T:
        """Drive ``flow`` to its result; a step's failure is thrown into the flow."""
        sources: list[str] = []
        try:
            step = next(flow)
            while True:
                sources.append(step_source(step))
                try:
                    outcome = await self._perform(step)
                except Failure as failure:
                    step = flow.throw(failure)
                else:
                    step = flow.send(outcome)
        except StopIteration as stop:
            result: T = stop.value
            _log.credentials_fetched(provider, ", then ".join(sources) or "the environment")
            return result
        except Failure as failure:
            message = f"could not obtain {provider} credentials: {failure.detail}"
            raise CredentialsError(message) from failure.cause
        finally:
            flow.close()

    async def _perform(self, step: Step) -> Union[Reply, bytes]:
        if isinstance(step, HttpRequest):
            return await self._http(step)
        return await asyncio.to_thread(read_file, step)

    async def _http(self, request: HttpRequest) -> Reply:
        trust_env = request.trust_env
        client = self._clients.get(trust_env)
        if client is None:
            client = await asyncio.to_thread(httpx.AsyncClient, trust_env=trust_env)
            self._clients[trust_env] = client
        limit, by_budget = exchange_limit(self._timeout)
        try:
            return await bounded_async(self._exchange(client, request, limit), limit)
        except httpx.TimeoutException as exc:
            if by_budget:
                raise budget_ran_out(request) from exc
            raise timed_out(request, self._timeout, exc) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise transport_failed(request, exc) from None

    @staticmethod
    async def _exchange(client: httpx.AsyncClient, request: HttpRequest, limit: float) -> Reply:
        # httpx limits each read, not the whole exchange: the deadline is checked between reads,
        # so a peer that stalls just before it is cut off by the per-read limit (see _bound).
        deadline = time.monotonic() + limit
        body = Body(request)
        async with client.stream(
            request.method, request.url, headers=request.headers, data=request.form, timeout=limit
        ) as response:
            async for chunk in response.aiter_bytes():
                body.add(chunk)
                if time.monotonic() > deadline:
                    break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the reply took too long", request=response.request)
            return body.reply(response.status_code)
