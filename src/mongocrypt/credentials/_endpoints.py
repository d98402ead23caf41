"""Where the automatic credential sources live (the public :class:`CredentialEndpoints`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional


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
