"""Session fixtures for the real peers (loaded from tests/conftest.py as a pytest plugin).

Each peer starts on first use, on a free 127.0.0.1 port, and stops at the end of the session
(under ``MONGOCRYPT_PEER_PYTHON`` when set, else under this interpreter):
- ``mongodb_uri``: SecantusDB, or the server ``MONGODB_URI`` names;
- ``moto_kms``: moto's AWS KMS over TLS, with a key created for this run;
- ``kmip_endpoint``: PyKMIP over TLS 1.2, client certificate required;
- ``cloud_kms``: the project's AWS/Azure/GCP HTTPS mock with failpoints.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pymongo
import pymongo.errors
import pytest

from .certs import TlsFiles, generate
from .cloud_kms import CloudKmsMock
from .process import Peer, free_port, port_open

# The Python (and its bin/) the peer processes run under: this one, or the one
# MONGOCRYPT_PEER_PYTHON names (the emulated aarch64 run keeps its peers native and fast).
PEER_PYTHON = os.environ.get("MONGOCRYPT_PEER_PYTHON", sys.executable)
BIN = Path(PEER_PYTHON).parent


@pytest.fixture(scope="session")
def peers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("peers")


@pytest.fixture(scope="session")
def tls(peers_dir: Path) -> TlsFiles:
    return generate(peers_dir / "tls")


def start_secantusd(directory: Path, port: int, *flags: str) -> Peer:
    """A SecantusDB on 127.0.0.1:``port`` keeping its data and log under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "secantusd.toml"
    config.write_text("")  # an explicit empty config: no auto-discovery of the user's files
    return Peer(
        "SecantusDB",
        [
            str(BIN / "secantusd-py"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(directory / "secantus-data"),
            "--standalone",
            *flags,
        ],
        directory / "secantusd.log",
        ready=lambda: port_open(port),
    )


@pytest.fixture(scope="session")
def mongodb_uri(peers_dir: Path) -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    port = free_port()
    peer = start_secantusd(peers_dir, port)
    yield f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=10000"
    peer.stop()


@pytest.fixture(scope="session")
def auth_mongodb_uri(peers_dir: Path) -> Iterator[str]:
    """A SecantusDB started with --auth, and a URI that authenticates as its one (root) user:
    the user is created on a first start without auth, as SecantusDB documents."""
    directory = peers_dir / "secantus-auth"
    port = free_port()
    with_no_auth = start_secantusd(directory, port)
    try:
        with pymongo.MongoClient[Any](f"mongodb://127.0.0.1:{port}/") as client:
            client.admin.command("createUser", "spec-user", pwd="spec-pwd", roles=["root"])
    finally:
        with_no_auth.stop()
    peer = start_secantusd(directory, port, "--auth")
    yield f"mongodb://spec-user:spec-pwd@127.0.0.1:{port}/?authSource=admin"
    peer.stop()


def _takes_fail_points(uri: str) -> bool:
    with pymongo.MongoClient[Any](uri) as probe:
        try:
            probe.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        except pymongo.errors.OperationFailure as exc:
            if exc.code != 59:  # CommandNotFound
                raise
            return False
    return True


@pytest.fixture(scope="session")
def failpoint_uri(mongodb_uri: str, peers_dir: Path) -> Iterator[str]:
    """A server that takes ``configureFailPoint``: the session's if it does, else a SecantusDB of
    our own started with --enable-test-commands (the session's is started without it)."""
    if _takes_fail_points(mongodb_uri):
        yield mongodb_uri
        return
    port = free_port()
    peer = start_secantusd(peers_dir / "secantus-test-commands", port, "--enable-test-commands")
    try:
        uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=10000"
        assert _takes_fail_points(uri), "SecantusDB --enable-test-commands lacks configureFailPoint"
        yield uri
    finally:
        peer.stop()


@dataclass(frozen=True)
class MotoKms:
    endpoint: str  # host:port for masterKey.endpoint
    key_arn: str
    region: str = "us-east-1"


@pytest.fixture(scope="session")
def moto_kms(peers_dir: Path, tls: TlsFiles) -> Iterator[MotoKms]:
    import boto3

    port = free_port()
    context = ssl.create_default_context(cafile=str(tls.ca))

    def ready() -> bool:
        try:
            urllib.request.urlopen(
                f"https://127.0.0.1:{port}/moto-api/", context=context, timeout=1
            )
            return True
        except OSError:
            return False

    peer = Peer(
        "moto",
        [
            PEER_PYTHON,
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            str(tls.server_cert),
            "-k",
            str(tls.server_key),
        ],
        peers_dir / "moto.log",
        ready=ready,
    )
    kms = boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url=f"https://127.0.0.1:{port}",
        verify=str(tls.ca),
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
    )
    arn = kms.create_key(Description="mongocrypt tests")["KeyMetadata"]["Arn"]
    yield MotoKms(endpoint=f"127.0.0.1:{port}", key_arn=arn)
    peer.stop()


@pytest.fixture(scope="session")
def kmip_endpoint(peers_dir: Path, tls: TlsFiles) -> Iterator[str]:
    port = free_port()
    policies = peers_dir / "kmip-policies"
    policies.mkdir()
    config = peers_dir / "pykmip.conf"
    config.write_text(
        "[server]\n"
        "hostname=127.0.0.1\n"
        f"port={port}\n"
        f"certificate_path={tls.server_pem}\n"
        f"key_path={tls.server_key}\n"
        f"ca_path={tls.ca}\n"
        "auth_suite=TLS1.2\n"
        f"policy_path={policies}\n"
        "enable_tls_client_auth=True\n"
        f"database_path={peers_dir / 'pykmip.db'}\n"
    )
    peer = Peer(
        "PyKMIP",
        [str(BIN / "pykmip-server"), "-f", str(config), "-l", str(peers_dir / "pykmip.log")],
        peers_dir / "pykmip.out",
        ready=lambda: port_open(port),
        timeout=60,
    )
    yield f"localhost:{port}"
    peer.stop(grace=15)


@pytest.fixture(scope="session")
def cloud_kms(tls: TlsFiles) -> Iterator[CloudKmsMock]:
    mock = CloudKmsMock(tls)
    yield mock
    mock.close()


@dataclass(frozen=True)
class KmsSetup:
    """What a pymongo user configures for every provider, pointed at this session's peers."""

    providers: dict[str, dict[str, object]]  # kms_providers
    tls_options: dict[str, dict[str, str]]  # kms_tls_options
    master_keys: dict[str, Optional[dict[str, str]]]  # provider -> master_key for create_data_key


@pytest.fixture(scope="session")
def kms_setup(
    tls: TlsFiles, moto_kms: MotoKms, kmip_endpoint: str, cloud_kms: CloudKmsMock
) -> KmsSetup:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    gcp_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    mock = cloud_kms.endpoint
    ca = {"tlsCAFile": str(tls.ca)}
    return KmsSetup(
        providers={
            "local": {"key": os.urandom(96)},
            "local:second": {"key": os.urandom(96)},
            "aws": {"accessKeyId": "moto", "secretAccessKey": "moto"},
            "aws:mock": {"accessKeyId": "mock", "secretAccessKey": "mock"},
            "azure": {
                "tenantId": "tenant",
                "clientId": "client",
                "clientSecret": "azure-secret",
                "identityPlatformEndpoint": mock,
            },
            "gcp": {
                "email": "svc@project.iam.gserviceaccount.com",
                "privateKey": gcp_key,
                "endpoint": mock,
            },
            "kmip": {"endpoint": kmip_endpoint},
        },
        tls_options={
            "aws": ca,
            "aws:mock": ca,
            "azure": ca,
            "gcp": ca,
            "kmip": {**ca, "tlsCertificateKeyFile": str(tls.client_pem)},
        },
        master_keys={
            "local": None,
            "local:second": None,
            "aws": {
                "region": moto_kms.region,
                "key": moto_kms.key_arn,
                "endpoint": moto_kms.endpoint,
            },
            "aws:mock": {
                "region": "us-east-1",
                "endpoint": mock,
                "key": "arn:aws:kms:us-east-1:123456789012:key/mock-key",
            },
            "azure": {"keyVaultEndpoint": mock, "keyName": "mock-key"},
            "gcp": {
                "projectId": "project",
                "location": "global",
                "keyRing": "ring",
                "keyName": "mock-key",
                "endpoint": mock,
            },
            "kmip": {},
        },
    )


class RedirectToPeers:
    """A ``kms_connect_callback`` that sends the public KMS hosts the specification's tests name
    to the local emulators: cloud hosts to the cloud mock, ``localhost:5698`` (the spec's KMIP
    server) to PyKMIP. TLS still verifies the public name: the test server certificate lists
    those names. Other hosts are connected to directly (so ``doesnotexist.invalid`` fails as it
    should). Every call is recorded in ``calls``.
    """

    CLOUD_SUFFIXES = (
        ".amazonaws.com",
        ".vault.azure.net",
        "login.microsoftonline.com",
        "oauth2.googleapis.com",
        "cloudkms.googleapis.com",
    )

    def __init__(self, cloud_port: int, kmip_port: int) -> None:
        self.cloud_port = cloud_port
        self.kmip_port = kmip_port
        self.calls: list[tuple[str, int]] = []

    def target(self, host: str, port: int) -> tuple[str, int]:
        if host.endswith(self.CLOUD_SUFFIXES):
            return "127.0.0.1", self.cloud_port
        if host == "localhost" and port == 5698:
            return "127.0.0.1", self.kmip_port
        return host, port

    def __call__(self, context: Any) -> socket.socket:
        self.calls.append((context.host, context.port))
        return socket.create_connection(self.target(context.host, context.port), context.timeout)


@pytest.fixture
def redirect_kms(cloud_kms: CloudKmsMock, kmip_endpoint: str) -> RedirectToPeers:
    return RedirectToPeers(cloud_kms.port, int(kmip_endpoint.rsplit(":", 1)[1]))


@pytest.fixture(scope="session")
def spec_kms_providers(kms_setup: KmsSetup) -> dict[str, dict[str, Any]]:
    """The providers of the specification's tests, as placeholders are filled here: cloud
    credentials for the emulators (no endpoints: the public hosts are redirected), the spec's
    local master key, and the spec's KMIP endpoint (redirected to PyKMIP)."""
    import base64

    local = base64.b64decode(
        "Mng0NCt4ZHVUYUJCa1kxNkVyNUR1QURhZ2h2UzR2d2RrZzh0cFBwM3R6NmdWMDFBMUN3YkQ5aXRRMkhGRGdQV09w"
        "OGVNYUMxT2k3NjZKelhaQmRCZGJkTXVyZG9uSjFk"
    )
    gcp = dict(kms_setup.providers["gcp"])
    gcp.pop("endpoint")
    azure = dict(kms_setup.providers["azure"])
    azure.pop("identityPlatformEndpoint")
    aws = {"accessKeyId": "emulated", "secretAccessKey": "emulated"}
    providers: dict[str, dict[str, Any]] = {
        "aws": aws,
        "azure": azure,
        "gcp": gcp,
        "kmip": {"endpoint": "localhost:5698"},
        "local": {"key": local},
    }
    for name in ("name1", "name2"):
        for kind, settings in list(providers.items())[:5]:
            providers[f"{kind}:{name}"] = settings
    return providers


@pytest.fixture(scope="session")
def spec_kms_tls_options(
    tls: TlsFiles, spec_kms_providers: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """The test CA for every provider, and the client certificate for KMIP ones."""
    return {
        name: {
            "tlsCAFile": str(tls.ca),
            **({"tlsCertificateKeyFile": str(tls.client_pem)} if name.startswith("kmip") else {}),
        }
        for name in spec_kms_providers
    }


@pytest.fixture(scope="session")
def expired_kms(tls: TlsFiles) -> Iterator[CloudKmsMock]:
    """A KMS mock presenting an expired certificate (signed by the test CA)."""
    mock = CloudKmsMock(tls, tls.expired_cert, tls.expired_key)
    yield mock
    mock.close()


@pytest.fixture(scope="session")
def wrong_host_kms(tls: TlsFiles) -> Iterator[CloudKmsMock]:
    """A KMS mock presenting a valid certificate for another host name."""
    mock = CloudKmsMock(tls, tls.wrong_host_cert, tls.wrong_host_key)
    yield mock
    mock.close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    import threading

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for sock in accepted:
        sock.close()
