"""On-demand KMS credentials against small local HTTP servers playing each credential source.

One threaded server per test answers every source (their paths differ) with replies the test
configures, and records what it received. Nothing in httpx is mocked.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs

import pytest

from helpers.peers.http_fake import FakeServer, Reply
from mongocrypt.credentials import CredentialEndpoints, OnDemandCredentials, _azure
from mongocrypt.errors import CredentialsError

GCP_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
AZURE_PATH = "/metadata/identity/oauth2/token"
EC2_TOKEN_PATH = "/latest/api/token"
EC2_ROLES_PATH = "/latest/meta-data/iam/security-credentials/"
ECS_PATH = "/v2/credentials/0f2c-task"

ISOLATED_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "GCE_METADATA_HOST",
    # STS requests honour proxy variables; the local fake STS must not be sent to a proxy.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

# Secret values the servers hand out; no error message may contain them.
SECRET_KEY = "wJalrXUtnFEMI-secret-key"
SESSION_TOKEN = "FwoGZXIvYXdzE-session-token"
ACCESS_KEY = "ASIA-access-key-id"
AZURE_TOKEN = "magic-cookie"
GCP_TOKEN = "ya29.gcp-access-token"
WEB_IDENTITY_TOKEN = "eyJhbGciOi-web-identity"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the machine's AWS/GCE variables or another test's cached Azure token."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _azure.TOKENS.clear()
    yield
    _azure.TOKENS.clear()


def endpoints_for(server: FakeServer) -> CredentialEndpoints:
    url = server.url
    return CredentialEndpoints(
        gcp_metadata=url, azure_imds=url, aws_ec2_metadata=url, aws_ecs=url, aws_sts=url
    )


def on_demand(server: FakeServer, **options: Any) -> OnDemandCredentials:
    return OnDemandCredentials(endpoints=endpoints_for(server), **options)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_no_secrets(text: str) -> None:
    for secret in (SECRET_KEY, SESSION_TOKEN, ACCESS_KEY, AZURE_TOKEN, GCP_TOKEN):
        assert secret not in text
    assert WEB_IDENTITY_TOKEN not in text


def aws_json(token_field: str = "Token", **overrides: Any) -> dict[str, Any]:
    document = {
        "Code": "Success",
        "AccessKeyId": ACCESS_KEY,
        "SecretAccessKey": SECRET_KEY,
        token_field: SESSION_TOKEN,
        "Expiration": "2030-01-01T00:00:00Z",
    }
    document.update(overrides)
    return {name: value for name, value in document.items() if value is not None}


AWS_SETTINGS = {
    "accessKeyId": ACCESS_KEY,
    "secretAccessKey": SECRET_KEY,
    "sessionToken": SESSION_TOKEN,
}


# -- providers ------------------------------------------------------------------------------------


@pytest.mark.requirement("CSE-CRED-11", "CSE-KMS-07")
def test_named_provider_is_refused_before_any_request(server: FakeServer) -> None:
    with pytest.raises(CredentialsError, match=r"named KMS providers.*aws:backup") as raised:
        on_demand(server).fetch(("gcp", "aws:backup"))
    assert "gcp," not in str(raised.value)
    assert server.received == []


def test_unsupported_provider_is_refused(server: FakeServer) -> None:
    with pytest.raises(CredentialsError, match=r"not supported for KMS provider.*kmip"):
        on_demand(server).fetch(["kmip"])


def test_a_single_string_is_not_a_provider_list(server: FakeServer) -> None:
    with pytest.raises(TypeError, match="sequence of provider names"):
        on_demand(server).fetch("aws")
    with pytest.raises(TypeError, match="must be strings"):
        on_demand(server).fetch([b"aws"])  # type: ignore[list-item]  # a wrong type on purpose


@pytest.mark.requirement("CSE-CRED-03")
def test_only_requested_providers_are_fetched(server: FakeServer) -> None:
    server.route("GET", GCP_PATH, {"access_token": GCP_TOKEN})
    server.route("GET", AZURE_PATH, {"access_token": AZURE_TOKEN, "expires_in": "3600"})
    assert on_demand(server).fetch(("gcp",)) == {"gcp": {"accessToken": GCP_TOKEN}}
    assert [request.path for request in server.received] == [GCP_PATH]
    assert on_demand(server).fetch(()) == {}


def test_all_three_providers(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    server.route("GET", GCP_PATH, {"access_token": GCP_TOKEN})
    server.route("GET", AZURE_PATH, {"access_token": AZURE_TOKEN, "expires_in": "3600"})
    result = on_demand(server).fetch(("aws", "gcp", "azure"))
    assert result == {
        "aws": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY},
        "gcp": {"accessToken": GCP_TOKEN},
        "azure": {"accessToken": AZURE_TOKEN},
    }


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        OnDemandCredentials(timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        OnDemandCredentials(timeout=float("inf"))
    with pytest.raises(TypeError, match="aws_provider"):
        OnDemandCredentials(aws_provider="key")  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(ValueError, match="aws_sts"):
        CredentialEndpoints(aws_sts="sts.amazonaws.com")


def test_default_endpoints_and_gce_metadata_host() -> None:
    assert CredentialEndpoints.from_environment({}) == CredentialEndpoints()
    assert CredentialEndpoints().gcp_metadata == "http://metadata.google.internal"
    assert CredentialEndpoints().azure_imds == "http://169.254.169.254"
    moved = CredentialEndpoints.from_environment({"GCE_METADATA_HOST": "10.0.0.7:8080"})
    assert moved.gcp_metadata == "http://10.0.0.7:8080"
    assert moved.azure_imds == CredentialEndpoints().azure_imds


# -- gcp ------------------------------------------------------------------------------------------


@pytest.mark.requirement("CSE-CRED-05")
def test_gcp_token_and_request(server: FakeServer) -> None:
    server.route("GET", GCP_PATH, {"access_token": GCP_TOKEN, "expires_in": 3599})
    assert on_demand(server).fetch(["gcp"]) == {"gcp": {"accessToken": GCP_TOKEN}}
    (request,) = server.received
    assert (request.method, request.target) == ("GET", GCP_PATH)
    assert request.headers["metadata-flavor"] == "Google"


def test_gcp_host_from_environment(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", server.url.removeprefix("http://"))
    server.route("GET", GCP_PATH, {"access_token": GCP_TOKEN})
    assert OnDemandCredentials().fetch(["gcp"]) == {"gcp": {"accessToken": GCP_TOKEN}}


@pytest.mark.requirement("CSE-CRED-05")
@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (403, "service account has no scopes", "replied with an error"),
        (200, "<html>captive portal</html>", "not JSON"),
        (200, {"token_type": "Bearer"}, "without a string access_token"),
        (200, ["unexpected"], "not an object"),
    ],
)
def test_gcp_failures_quote_the_reply(
    server: FakeServer, status: int, body: Any, problem: str
) -> None:
    server.route("GET", GCP_PATH, body, status=status)
    with pytest.raises(CredentialsError) as raised:
        on_demand(server).fetch(["gcp"])
    message = str(raised.value)
    assert message.startswith("could not obtain gcp credentials: ")
    assert f"{server.url}{GCP_PATH}" in message
    assert problem in message
    assert f"HTTP {status}" in message
    if isinstance(body, str):
        assert body in message
    assert_no_secrets(message)


def test_gcp_connection_refused_is_chained() -> None:
    creds = OnDemandCredentials(endpoints=CredentialEndpoints(gcp_metadata=closed_port_url()))
    with pytest.raises(CredentialsError, match="ConnectError") as raised:
        creds.fetch(["gcp"])
    assert type(raised.value.__cause__).__name__ == "ConnectError"


# -- azure (prose test 18) ------------------------------------------------------------------------


def azure_success() -> dict[str, str]:
    return {
        "access_token": AZURE_TOKEN,
        "expires_in": "70",
        "resource": "https://vault.azure.net",
        "token_type": "Bearer",
    }


@pytest.mark.requirement("CSE-CRED-06", "CSE-CRED-08")
def test_prose_18_azure_imds_case_1_success(server: FakeServer) -> None:
    server.route("GET", AZURE_PATH, azure_success())
    assert on_demand(server).fetch(["azure"]) == {"azure": {"accessToken": AZURE_TOKEN}}
    (request,) = server.received
    assert request.method == "GET"
    assert request.headers["metadata"] == "true"
    assert request.headers["accept"] == "application/json"
    assert "resource=https%3A%2F%2Fvault.azure.net%2F" in request.target
    assert request.query == {
        "api-version": ["2018-02-01"],
        "resource": ["https://vault.azure.net/"],
    }


@pytest.mark.requirement("CSE-CRED-07")
@pytest.mark.parametrize(
    ("status", "body", "problem", "quoted"),
    [
        (200, "{}", "without a string access_token", "{}"),
        (200, '{"access_token": "magic', "not JSON", '{"access_token": "<redacted>"'),
        (404, "Identity not found", "replied with an error", "Identity not found"),
        (500, "IMDS internal failure", "replied with an error", "IMDS internal failure"),
    ],
    ids=["empty-json", "bad-json", "404", "500"],
)
def test_prose_18_azure_imds_cases_2_to_5_failures(
    server: FakeServer, status: int, body: str, problem: str, quoted: str
) -> None:
    server.route("GET", AZURE_PATH, body, status=status)
    with pytest.raises(CredentialsError) as raised:
        on_demand(server).fetch(["azure"])
    message = str(raised.value)
    assert message.startswith("could not obtain azure credentials: Azure IMDS at ")
    assert f"{server.url}{AZURE_PATH}?api-version=2018-02-01" in message
    assert problem in message
    assert f"HTTP {status}" in message
    assert quoted in message
    assert "magic" not in message


@pytest.mark.requirement("CSE-CRED-07")
@pytest.mark.parametrize("expires_in", [None, "soon", "-5", 12.5])
def test_azure_bad_expiry_is_an_error_without_the_token(
    server: FakeServer, expires_in: Any
) -> None:
    document: dict[str, Any] = {"access_token": AZURE_TOKEN}
    if expires_in is not None:
        document["expires_in"] = expires_in
    server.route("GET", AZURE_PATH, document)
    with pytest.raises(CredentialsError, match="numeric expires_in") as raised:
        on_demand(server).fetch(["azure"])
    assert '"access_token": "<redacted>"' in str(raised.value)
    assert_no_secrets(str(raised.value))


@pytest.mark.requirement("CSE-CRED-07")
@pytest.mark.parametrize(
    "reply", [Reply(delay=5.0), Reply(body=b"{", dribble=0.05)], ids=["stalled", "dribbling"]
)
def test_prose_18_azure_imds_case_6_slow_response(server: FakeServer, reply: Reply) -> None:
    server.routes[("GET", AZURE_PATH)] = reply
    started = time.monotonic()
    with pytest.raises(CredentialsError, match=r"did not reply in full within 0\.5 s") as raised:
        on_demand(server, timeout=0.5).fetch(["azure"])
    assert time.monotonic() - started < 1.5
    assert raised.value.__cause__ is not None


@pytest.mark.requirement("CSE-CACHE-03", "CSE-CRED-06")
def test_azure_token_is_cached(server: FakeServer) -> None:
    server.route("GET", AZURE_PATH, azure_success())  # 70 s: more than a minute left
    creds = on_demand(server)
    assert (
        creds.fetch(["azure"]) == creds.fetch(["azure"]) == {"azure": {"accessToken": AZURE_TOKEN}}
    )
    assert len(server.received) == 1
    # Another OnDemandCredentials with the same IMDS shares the process-wide cache.
    assert on_demand(server).fetch(["azure"]) == {"azure": {"accessToken": AZURE_TOKEN}}
    assert len(server.received) == 1
    assert AZURE_TOKEN not in repr(_azure.TOKENS)


@pytest.mark.requirement("CSE-CRED-06")
def test_azure_token_expiring_within_a_minute_is_refreshed(server: FakeServer) -> None:
    server.route("GET", AZURE_PATH, {**azure_success(), "expires_in": "45"})
    creds = on_demand(server)
    creds.fetch(["azure"])
    server.route(
        "GET", AZURE_PATH, {**azure_success(), "access_token": "fresh", "expires_in": "45"}
    )
    assert creds.fetch(["azure"]) == {"azure": {"accessToken": "fresh"}}
    assert len(server.received) == 2


def test_azure_failure_is_not_cached(server: FakeServer) -> None:
    server.route("GET", AZURE_PATH, "busy", status=500)
    with pytest.raises(CredentialsError):
        on_demand(server).fetch(["azure"])
    server.route("GET", AZURE_PATH, azure_success())
    assert on_demand(server).fetch(["azure"]) == {"azure": {"accessToken": AZURE_TOKEN}}


def test_long_bodies_are_truncated(server: FakeServer) -> None:
    server.route("GET", AZURE_PATH, "x" * 5000, status=503)
    with pytest.raises(CredentialsError, match=r"\.\.\. \(4000 more characters\)") as raised:
        on_demand(server).fetch(["azure"])
    assert len(str(raised.value)) < 1300


# -- aws: custom provider -------------------------------------------------------------------------


@pytest.mark.requirement("CSE-CRED-09")
def test_custom_aws_provider_replaces_discovery(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-environment")
    calls = []

    def provider() -> Mapping[str, Any]:
        calls.append(1)
        return {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "extra": "dropped"}

    creds = on_demand(server, aws_provider=provider)
    assert creds.fetch(["aws"]) == {
        "aws": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}
    }
    assert calls == [1]
    assert server.received == []
    assert "custom" in repr(creds)
    assert_no_secrets(repr(creds))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({}, "no accessKeyId"),
        ({"accessKeyId": ACCESS_KEY}, "no secretAccessKey"),
        ({"accessKeyId": 7, "secretAccessKey": SECRET_KEY}, "no accessKeyId"),
        ({"accessKeyId": ACCESS_KEY, "secretAccessKey": ""}, "no secretAccessKey"),
        (
            {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": 5},
            "sessionToken that is not a string",
        ),
        ((ACCESS_KEY, SECRET_KEY), "returned tuple, not a mapping"),
    ],
)
def test_bad_custom_aws_provider_result(settings: Any, problem: str) -> None:
    creds = OnDemandCredentials(aws_provider=lambda: settings)
    with pytest.raises(CredentialsError, match="custom aws credential provider") as raised:
        creds.fetch(["aws"])
    assert problem in str(raised.value)
    assert_no_secrets(str(raised.value))


def test_custom_aws_provider_exception_is_chained() -> None:
    def provider() -> Mapping[str, Any]:
        raise RuntimeError(f"vault sealed {SECRET_KEY}")

    with pytest.raises(CredentialsError, match="raised RuntimeError") as raised:
        OnDemandCredentials(aws_provider=provider).fetch(["aws"])
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert_no_secrets(str(raised.value))


def test_async_function_as_custom_provider_is_refused() -> None:
    async def provider() -> Mapping[str, Any]:
        return {}

    creds = OnDemandCredentials(aws_provider=provider)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(CredentialsError, match="returned a coroutine"):
        creds.fetch(["aws"])


# -- aws: discovery -------------------------------------------------------------------------------


@pytest.mark.requirement("CSE-CRED-04")
def test_aws_environment_variables(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert on_demand(server).fetch(["aws"]) == {
        "aws": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}
    }
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ECS_PATH)  # not reached
    assert on_demand(server).fetch(["aws"]) == {"aws": AWS_SETTINGS}
    assert server.received == []


def test_aws_half_set_environment_is_an_error(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    with pytest.raises(CredentialsError, match="AWS_SECRET_ACCESS_KEY is not") as raised:
        on_demand(server).fetch(["aws"])
    assert_no_secrets(str(raised.value))
    assert server.received == []


@pytest.mark.requirement("CSE-CRED-04")
def test_aws_ecs(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ECS_PATH)
    server.route("GET", ECS_PATH, aws_json(RoleArn="arn:aws:iam::1:role/task"))
    assert on_demand(server).fetch(["aws"]) == {"aws": AWS_SETTINGS}
    assert [(r.method, r.target) for r in server.received] == [("GET", ECS_PATH)]


def test_aws_ecs_failure_quotes_the_reply(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ECS_PATH)
    server.route("GET", ECS_PATH, "task role unavailable", status=500)
    with pytest.raises(CredentialsError) as raised:
        on_demand(server).fetch(["aws"])
    message = str(raised.value)
    assert f"ECS credentials endpoint at {server.url}{ECS_PATH}" in message
    assert "HTTP 500" in message
    assert "task role unavailable" in message
    # A configured source that fails is reported as such; EC2 is not tried.
    assert [r.path for r in server.received] == [ECS_PATH]


def test_aws_partial_reply_never_shows_secrets(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ECS_PATH)
    server.route("GET", ECS_PATH, aws_json(AccessKeyId=None))
    with pytest.raises(CredentialsError, match="without a string AccessKeyId") as raised:
        on_demand(server).fetch(["aws"])
    assert '"SecretAccessKey": "<redacted>"' in str(raised.value)
    assert '"Expiration": "2030-01-01T00:00:00Z"' in str(raised.value)
    assert_no_secrets(str(raised.value))


def route_ec2(server: FakeServer, role: str = "web-role") -> None:
    server.route("PUT", EC2_TOKEN_PATH, "imds-session-token")
    server.route("GET", EC2_ROLES_PATH, f"{role}\n")
    server.route("GET", EC2_ROLES_PATH + role, aws_json())


@pytest.mark.requirement("CSE-CRED-04")
def test_aws_ec2_imdsv2(server: FakeServer) -> None:
    route_ec2(server)
    assert on_demand(server).fetch(["aws"]) == {"aws": AWS_SETTINGS}
    token, roles, role = server.received
    assert (token.method, token.path) == ("PUT", EC2_TOKEN_PATH)
    assert token.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "30"
    assert (roles.method, roles.path) == ("GET", EC2_ROLES_PATH)
    assert (role.method, role.path) == ("GET", EC2_ROLES_PATH + "web-role")
    for request in (roles, role):
        assert request.headers["x-aws-ec2-metadata-token"] == "imds-session-token"


def test_aws_ec2_without_a_role(server: FakeServer) -> None:
    server.route("PUT", EC2_TOKEN_PATH, "imds-session-token")
    server.route("GET", EC2_ROLES_PATH, "")
    with pytest.raises(CredentialsError, match="names no IAM role"):
        on_demand(server).fetch(["aws"])


def test_aws_nothing_found_lists_what_was_tried() -> None:
    endpoints = CredentialEndpoints(aws_ec2_metadata=closed_port_url())
    with pytest.raises(CredentialsError) as raised:
        OnDemandCredentials(endpoints=endpoints).fetch(["aws"])
    message = str(raised.value)
    assert message.startswith("could not obtain aws credentials: none found; tried ")
    for source in ("AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "ECS", "EC2"):
        assert source in message
    assert endpoints.aws_ec2_metadata in message
    assert type(raised.value.__cause__).__name__ == "ConnectError"


def test_aws_nothing_found_quotes_the_ec2_reply(server: FakeServer) -> None:
    with pytest.raises(CredentialsError, match=r"none found; tried .*HTTP 404.*no route"):
        on_demand(server).fetch(["aws"])


def web_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, session_name: Optional[str] = "mc-test"
) -> None:
    token_file = tmp_path / "web-identity-token"
    token_file.write_text(WEB_IDENTITY_TOKEN + "\n")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web")
    if session_name is not None:
        monkeypatch.setenv("AWS_ROLE_SESSION_NAME", session_name)


def sts_json() -> dict[str, Any]:
    result = {"Credentials": aws_json("SessionToken"), "SubjectFromWebIdentityToken": "user"}
    return {"AssumeRoleWithWebIdentityResponse": {"AssumeRoleWithWebIdentityResult": result}}


STS_XML = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>{SESSION_TOKEN}</SessionToken>
      <SecretAccessKey>{SECRET_KEY}</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>{ACCESS_KEY}</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"""


@pytest.mark.requirement("CSE-CRED-04")
@pytest.mark.parametrize("reply", [sts_json(), STS_XML], ids=["json", "xml"])
def test_aws_web_identity(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reply: Any
) -> None:
    web_identity(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ECS_PATH)  # not reached
    server.route("POST", "/", reply)
    assert on_demand(server).fetch(["aws"]) == {"aws": AWS_SETTINGS}
    (request,) = server.received
    assert request.target == "/"  # the web identity token travels in the body only
    assert request.headers["accept"] == "application/json"
    assert parse_qs(request.body.decode()) == {
        "Action": ["AssumeRoleWithWebIdentity"],
        "Version": ["2011-06-15"],
        "RoleArn": ["arn:aws:iam::123456789012:role/web"],
        "RoleSessionName": ["mc-test"],
        "WebIdentityToken": [WEB_IDENTITY_TOKEN],
    }


def test_aws_web_identity_generates_a_session_name(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    web_identity(monkeypatch, tmp_path, session_name=None)
    server.route("POST", "/", sts_json())
    on_demand(server).fetch(["aws"])
    (name,) = parse_qs(server.received[0].body.decode())["RoleSessionName"]
    assert name.startswith("mongocrypt-")


def test_aws_web_identity_sts_error(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    web_identity(monkeypatch, tmp_path)
    error = "<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>"
    server.route("POST", "/", error, status=400)
    with pytest.raises(CredentialsError, match=r"HTTP 400.*InvalidIdentityToken") as raised:
        on_demand(server).fetch(["aws"])
    assert "AWS STS (AssumeRoleWithWebIdentity)" in str(raised.value)
    assert_no_secrets(str(raised.value))


def test_aws_web_identity_partial_xml_never_shows_secrets(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    web_identity(monkeypatch, tmp_path)
    server.route("POST", "/", STS_XML.replace(f"<AccessKeyId>{ACCESS_KEY}</AccessKeyId>", ""))
    with pytest.raises(CredentialsError, match="without a string AccessKeyId") as raised:
        on_demand(server).fetch(["aws"])
    assert "<SecretAccessKey><redacted>" in str(raised.value)
    assert_no_secrets(str(raised.value))


def test_aws_web_identity_misconfigured(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "absent"))
    with pytest.raises(CredentialsError, match="AWS_ROLE_ARN is not"):
        on_demand(server).fetch(["aws"])
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web")
    with pytest.raises(CredentialsError, match=r"file named by AWS_WEB_IDENTITY_TOKEN_FILE \("):
        on_demand(server).fetch(["aws"])
    assert server.received == []


# -- async ----------------------------------------------------------------------------------------


def test_async_gcp_and_azure(server: FakeServer) -> None:
    server.route("GET", GCP_PATH, {"access_token": GCP_TOKEN})
    server.route("GET", AZURE_PATH, azure_success())
    result = asyncio.run(on_demand(server).fetch_async(["gcp", "azure"]))
    assert result == {"gcp": {"accessToken": GCP_TOKEN}, "azure": {"accessToken": AZURE_TOKEN}}
    assert {request.path for request in server.received} == {GCP_PATH, AZURE_PATH}
    assert asyncio.run(on_demand(server).fetch_async(["azure"])) == {
        "azure": {"accessToken": AZURE_TOKEN}
    }
    assert len(server.received) == 2  # the cache served the second azure fetch


def test_async_aws_discovery(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    web_identity(monkeypatch, tmp_path)
    server.route("POST", "/", sts_json())
    assert asyncio.run(on_demand(server).fetch_async(["aws"])) == {"aws": AWS_SETTINGS}


def test_async_failures(server: FakeServer) -> None:
    server.route("GET", GCP_PATH, "no service account", status=404)
    with pytest.raises(CredentialsError, match=r"gcp.*HTTP 404.*no service account"):
        asyncio.run(on_demand(server).fetch_async(["gcp"]))
    with pytest.raises(CredentialsError, match="named KMS providers"):
        asyncio.run(on_demand(server).fetch_async(["azure:vm"]))


async def measure_loop_ticks(coroutine: Any) -> tuple[Any, int]:
    """Run ``coroutine`` while another task ticks every 10 ms; return its result and the ticks."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        return await coroutine, ticks
    finally:
        done.set()
        await task


def test_async_custom_aws_provider_runs_off_the_loop() -> None:
    def slow_provider() -> Mapping[str, Any]:
        time.sleep(0.3)  # a blocking SDK call
        return {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}

    creds = OnDemandCredentials(aws_provider=slow_provider)
    result, ticks = asyncio.run(measure_loop_ticks(creds.fetch_async(["aws"])))
    assert result == {"aws": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}}
    assert ticks >= 10


def test_async_custom_aws_provider_errors() -> None:
    creds = OnDemandCredentials(aws_provider=lambda: {"accessKeyId": ACCESS_KEY})
    with pytest.raises(CredentialsError, match="no secretAccessKey"):
        asyncio.run(creds.fetch_async(["aws"]))


def test_async_http_does_not_block_the_loop(server: FakeServer) -> None:
    server.route("GET", GCP_PATH, {"access_token": GCP_TOKEN}, delay=0.3)
    result, ticks = asyncio.run(measure_loop_ticks(on_demand(server).fetch_async(["gcp"])))
    assert result == {"gcp": {"accessToken": GCP_TOKEN}}
    assert ticks >= 10


@pytest.mark.parametrize(
    "reply", [Reply(delay=5.0), Reply(body=b"{", dribble=0.05)], ids=["stalled", "dribbling"]
)
def test_async_azure_slow_response_times_out(server: FakeServer, reply: Reply) -> None:
    server.routes[("GET", AZURE_PATH)] = reply
    started = time.monotonic()
    with pytest.raises(CredentialsError, match=r"did not reply in full within 0\.5 s") as raised:
        asyncio.run(on_demand(server, timeout=0.5).fetch_async(["azure"]))
    assert time.monotonic() - started < 1.5
    assert raised.value.__cause__ is not None


@pytest.mark.parametrize(("kind", "limits"), [("sync", 2), ("async", 1)])
def test_reply_that_dribbles_then_stalls_is_bounded(
    server: FakeServer, kind: str, limits: int
) -> None:
    """The deadline is checked between reads, so a read that starts just before it (here at about
    0.9 of the 1 s limit) is ended by its own 1 s limit; asyncio can interrupt that read, so the
    async path ends at the limit itself."""
    server.routes[("GET", AZURE_PATH)] = Reply(body=b"{", dribble=0.05, dribble_for=0.9)
    creds = on_demand(server, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(CredentialsError, match=r"did not reply in full within 1 s"):
        if kind == "sync":
            creds.fetch(["azure"])
        else:
            asyncio.run(creds.fetch_async(["azure"]))
    assert time.monotonic() - started < limits + 0.4
