"""Certificates generated at test time: one CA signing a server and a client certificate
(usable for both TLS roles), an unrelated CA for "wrong CA" tests, and server certificates that
must be refused (expired; valid but for another host name).

The server certificate names localhost and 127.0.0.1, and also the public KMS hosts the
specification's tests use, so a test can send those hosts' traffic to a local emulator (through a
``kms_connect_callback``) while TLS still verifies the real name.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate that signed server and client
    server_cert: Path
    server_key: Path
    server_pem: Path  # certificate + key in one file (PyKMIP, pymongo's tlsCertificateKeyFile)
    client_pem: Path  # certificate + key in one file
    other_ca: Path  # a CA that signed nothing here
    expired_cert: Path  # signed by ``ca``, for localhost, but expired
    expired_key: Path
    wrong_host_cert: Path  # signed by ``ca``, valid, but for another host name
    wrong_host_key: Path


#: Public KMS hosts the server certificate also names (see the module docstring).
KMS_HOSTS = [
    "*.amazonaws.com",
    "kms.us-east-1.amazonaws.com",
    "kms.us-east-2.amazonaws.com",
    "*.vault.azure.net",
    "login.microsoftonline.com",
    "oauth2.googleapis.com",
    "cloudkms.googleapis.com",
]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...] = ("localhost",),
    ip: bool = True,
    expired: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        now -= datetime.timedelta(days=30)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    if ip:
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def generate(directory: Path) -> TlsFiles:
    """Write a fresh CA, server and client certificates under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("mongocrypt test CA")
    other, _ = _ca("unrelated test CA")
    server, server_key = _leaf("localhost", ca, ca_key, ("localhost", *KMS_HOSTS))
    client, client_key = _leaf("mongocrypt test client", ca, ca_key)
    expired, expired_key = _leaf("localhost", ca, ca_key, expired=True)
    wrong_host, wrong_host_key = _leaf(
        "wrong.host.invalid", ca, ca_key, ("wrong.host.invalid",), ip=False
    )

    def pem(certificate: x509.Certificate) -> bytes:
        return certificate.public_bytes(serialization.Encoding.PEM)

    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        server_pem=directory / "server.pem",
        client_pem=directory / "client.pem",
        other_ca=directory / "other-ca.pem",
        expired_cert=directory / "expired.crt",
        expired_key=directory / "expired.key",
        wrong_host_cert=directory / "wrong-host.crt",
        wrong_host_key=directory / "wrong-host.key",
    )
    files.ca.write_bytes(pem(ca))
    files.other_ca.write_bytes(pem(other))
    files.server_cert.write_bytes(pem(server))
    files.server_key.write_bytes(_pem_key(server_key))
    files.server_pem.write_bytes(pem(server) + _pem_key(server_key))
    files.client_pem.write_bytes(pem(client) + _pem_key(client_key))
    files.expired_cert.write_bytes(pem(expired))
    files.expired_key.write_bytes(_pem_key(expired_key))
    files.wrong_host_cert.write_bytes(pem(wrong_host))
    files.wrong_host_key.write_bytes(_pem_key(wrong_host_key))
    return files
