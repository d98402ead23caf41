"""mongocrypt.io.tls: the SSL contexts of KMS connections."""

from __future__ import annotations

import ssl
from typing import Any, Optional

import pytest

from mongocrypt.io.tls import default_kms_context, kms_ssl_contexts


@pytest.mark.requirement("CSE-TLS-07", "CSE-TLS-08")
@pytest.mark.parametrize(
    "options",
    [None, {}, {"tlsDisableOCSPEndpointCheck": True}, {"tlsDisableOCSPEndpointCheck": False}],
    ids=["no-options", "empty", "ocsp-check-off", "ocsp-check-on"],
)
def test_kms_contexts_keep_the_default_revocation_checks(options: Optional[dict[str, Any]]) -> None:
    """Whatever the options, certificates are verified as Python verifies them by default: no
    revocation (CRL) check switched on or off, hostnames checked."""
    reference = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context = (
        default_kms_context() if options is None else kms_ssl_contexts({"aws": options})["aws"]
    )
    assert context.verify_flags == reference.verify_flags
    assert not context.verify_flags & (ssl.VERIFY_CRL_CHECK_LEAF | ssl.VERIFY_CRL_CHECK_CHAIN)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
