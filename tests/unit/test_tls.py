"""io/tls.py: per-provider KMS TLS options, refused options, and contexts that really verify."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from cryptography.hazmat.primitives import serialization

from helpers.peers.certs import TlsFiles
from mongocrypt.io.tls import default_kms_context, kms_ssl_contexts


def test_no_options_means_no_contexts() -> None:
    assert kms_ssl_contexts(None) == {}
    assert kms_ssl_contexts({}) == {}


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ([("aws", {})], TypeError, "kms_tls_options must be a mapping, not list"),
        ({"aws": "tlsCAFile=x"}, TypeError, r"kms_tls_options\['aws'\] must be a mapping, not str"),
        (
            {"kmip:backup": {"TLSINSECURE": True}},
            ValueError,
            r"Insecure TLS options prohibited: tlsInsecure in kms_tls_options\['kmip:backup'\]",
        ),
        (
            {"aws": {"tlsAllowInvalidCertificates": False}},
            ValueError,
            "prohibited: tlsAllowInvalidCertificates",
        ),
        ({"aws": {"tlsAllowInvalidHostnames": True}}, ValueError, "tlsAllowInvalidHostnames"),
        (
            {"aws": {"tlsDisableCertificateRevocationCheck": True}},
            ValueError,
            "tlsDisableCertificateRevocationCheck",
        ),
        ({"gcp": {"tls": False}}, ValueError, r"TLS is required.*\['gcp'\]"),
        ({"gcp": {"ssl": "true"}}, ValueError, "TLS is required"),
        ({"azure": {"tlsCAFiel": "ca.pem"}}, ValueError, "unknown KMS TLS option 'tlsCAFiel'"),
    ],
)
def test_refused_options_name_provider_and_option(options: Any, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        kms_ssl_contexts(options)


def test_every_context_verifies_chain_and_host_name(tls: TlsFiles) -> None:
    contexts = kms_ssl_contexts(
        {
            "aws": {"TLS": True, "tlsDisableOCSPEndpointCheck": True},
            "kmip": {"tlsCAFile": str(tls.ca), "tlsCertificateKeyFile": str(tls.client_pem)},
        }
    )
    assert sorted(contexts) == ["aws", "kmip"]
    for context in [*contexts.values(), default_kms_context()]:
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname


@pytest.fixture
def tls_server(tls: TlsFiles) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that requires a client certificate signed by the test CA."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca))
    server.load_cert_chain(tls.server_cert, tls.server_key)
    server.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                with server.wrap_socket(client, server_side=True) as conn:
                    conn.sendall(b"hello")
            except (OSError, ssl.SSLError):
                client.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


def handshake(context: ssl.SSLContext, port: int) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        return conn.recv(5)


def test_ca_file_and_client_certificate_are_used(tls: TlsFiles, tls_server: int) -> None:
    options = {"tlsCAFile": str(tls.ca), "tlsCertificateKeyFile": str(tls.client_pem)}
    assert handshake(kms_ssl_contexts({"kmip": options})["kmip"], tls_server) == b"hello"


def test_a_server_signed_by_another_ca_is_refused(tls: TlsFiles, tls_server: int) -> None:
    options = {"tlsCAFile": str(tls.other_ca), "tlsCertificateKeyFile": str(tls.client_pem)}
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(kms_ssl_contexts({"kmip": options})["kmip"], tls_server)


def test_the_key_file_password_decrypts_the_key(tls: TlsFiles, tmp_path: Path) -> None:
    pem = tls.client_pem.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"open sesame"),
    )
    end = b"-----END CERTIFICATE-----\n"
    certificate = pem[: pem.index(end) + len(end)]  # the file holds the certificate, then the key
    path = tmp_path / "client-encrypted.pem"
    path.write_bytes(certificate + encrypted)
    options = {"tlsCertificateKeyFile": str(path), "tlsCertificateKeyFilePassword": "open sesame"}
    assert kms_ssl_contexts({"kmip": options})["kmip"].verify_mode == ssl.CERT_REQUIRED
    options["tlsCertificateKeyFilePassword"] = "wrong"
    with pytest.raises(ssl.SSLError):
        kms_ssl_contexts({"kmip": options})


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
