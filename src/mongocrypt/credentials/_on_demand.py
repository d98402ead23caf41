"""The public :class:`OnDemandCredentials`: checks its arguments and hands fetches to a runner."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional

from mongocrypt.credentials import _async_runner, _sync_runner
from mongocrypt.credentials._aws import AwsCredentialProvider
from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._sources import checked_providers


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
        names, endpoints = self._checked(providers)
        return _sync_runner.fetch(names, endpoints, self._aws_provider, self._timeout)

    async def fetch_async(self, providers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """:meth:`fetch` without blocking the event loop (``aws_provider`` runs in a thread).

        :param providers: provider names libmongocrypt asked for, e.g. ``("aws", "gcp")``.
        :returns: what :meth:`fetch` returns.
        :raises CredentialsError: where :meth:`fetch` does.
        :raises TypeError: where :meth:`fetch` does.
        """
        names, endpoints = self._checked(providers)
        return await _async_runner.fetch_async(names, endpoints, self._aws_provider, self._timeout)

    def _checked(self, providers: Sequence[str]) -> tuple[list[str], CredentialEndpoints]:
        """The distinct provider names (refusing the others) and the endpoints of this fetch."""
        names = checked_providers(providers)
        return names, self._endpoints or CredentialEndpoints.from_environment()
