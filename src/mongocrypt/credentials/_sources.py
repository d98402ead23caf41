"""Which providers get automatic credentials, and the source that serves each."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mongocrypt.credentials._aws import aws_source
from mongocrypt.credentials._azure import azure_source
from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._gcp import gcp_source
from mongocrypt.credentials._steps import Flow
from mongocrypt.errors import CredentialsError

SUPPORTED = ("aws", "gcp", "azure")


def checked_providers(providers: Sequence[str]) -> list[str]:
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
    unsupported = [name for name in names if name not in SUPPORTED]
    if unsupported:
        raise CredentialsError(
            f"automatic credentials are not supported for KMS provider(s) "
            f"{', '.join(unsupported)} (only {', '.join(SUPPORTED)})"
        )
    return names


def source(provider: str, endpoints: CredentialEndpoints) -> Flow[dict[str, Any]]:
    """The source of a supported provider's settings (``aws`` reads ``os.environ``)."""
    if provider == "gcp":
        return gcp_source(endpoints)
    if provider == "azure":
        return azure_source(endpoints)
    return aws_source(endpoints, os.environ)
