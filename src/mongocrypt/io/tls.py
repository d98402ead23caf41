"""TLS for KMS connections: per-provider options as the specification defines them.

Options are keyed by the full provider name (``"aws"``, ``"kmip:backup"``), spelled like
MongoDB's connection-string TLS options (case-insensitive): ``tlsCAFile``,
``tlsCertificateKeyFile``, ``tlsCertificateKeyFilePassword``, ``tlsDisableOCSPEndpointCheck``.
Options that weaken verification are refused, and so is turning TLS off: a KMS connection always
verifies the certificate chain and the KMS host name.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

__all__ = ["default_kms_context", "kms_ssl_contexts"]

_ALLOWED = {
    "tlscafile": "tlsCAFile",
    "tlscertificatekeyfile": "tlsCertificateKeyFile",
    "tlscertificatekeyfilepassword": "tlsCertificateKeyFilePassword",
    "tlsdisableocspendpointcheck": "tlsDisableOCSPEndpointCheck",
}
_INSECURE = {
    "tlsinsecure": "tlsInsecure",
    "tlsallowinvalidcertificates": "tlsAllowInvalidCertificates",
    "tlsallowinvalidhostnames": "tlsAllowInvalidHostnames",
    "tlsdisablecertificaterevocationcheck": "tlsDisableCertificateRevocationCheck",
}


def default_kms_context() -> ssl.SSLContext:
    """Verification against the system's CA store, for providers without TLS options."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


def _context(provider: str, options: Mapping[str, Any]) -> ssl.SSLContext:
    if not isinstance(options, Mapping):
        raise TypeError(
            f"kms_tls_options[{provider!r}] must be a mapping, not {type(options).__name__}"
        )
    settings: dict[str, Any] = {}
    for name, value in options.items():
        key = str(name).lower()
        if key in _INSECURE:
            option = _INSECURE[key]
            raise ValueError(
                f"Insecure TLS options prohibited: {option} in kms_tls_options[{provider!r}]"
            )
        if key in ("tls", "ssl"):
            if value is not True:
                raise ValueError(
                    f"TLS is required for KMS providers: kms_tls_options[{provider!r}]"
                )
            continue
        if key not in _ALLOWED:
            raise ValueError(f"unknown KMS TLS option {name!r} in kms_tls_options[{provider!r}]")
        settings[_ALLOWED[key]] = value
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.get("tlsCAFile"))
    certificate = settings.get("tlsCertificateKeyFile")
    if certificate is not None:
        context.load_cert_chain(certificate, password=settings.get("tlsCertificateKeyFilePassword"))
    # tlsDisableOCSPEndpointCheck is accepted (the spec forbids rejecting it); Python's ssl
    # module does no OCSP endpoint checks, so there is nothing to turn off.
    return context


def kms_ssl_contexts(
    tls_options: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, ssl.SSLContext]:
    """One SSL context per provider named in ``tls_options``.

    :raises ValueError: for insecure options ("Insecure TLS options prohibited"), for turning TLS
        off ("TLS is required"), or for an unknown option; the message names provider and option.
    :raises TypeError: if ``tls_options`` is not a mapping of mappings.
    """
    if tls_options is None:
        return {}
    if not isinstance(tls_options, Mapping):
        raise TypeError(f"kms_tls_options must be a mapping, not {type(tls_options).__name__}")
    return {provider: _context(provider, options) for provider, options in tls_options.items()}
