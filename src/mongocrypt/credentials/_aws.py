"""The ``aws`` source: environment variables, web identity, ECS, then EC2 instance metadata.

Also the checks on what a user's custom AWS credential provider returns.
"""

from __future__ import annotations

import asyncio
import secrets
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any, Callable
from urllib.parse import quote

from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._steps import (
    Failure,
    Flow,
    HttpRequest,
    ReadFile,
    Reply,
    expect_ok,
    json_object,
    reply_failure,
    required_str,
    url,
)
from mongocrypt.errors import CredentialsError

#: A user-supplied function returning AWS settings: ``accessKeyId``, ``secretAccessKey`` and,
#: optionally, ``sessionToken`` (all strings).
AwsCredentialProvider = Callable[[], Mapping[str, Any]]

_EC2_ROLES_PATH = "/latest/meta-data/iam/security-credentials/"
_PROVIDER = "could not obtain aws credentials: the custom aws credential provider"


def provider_failed(exc: Exception) -> CredentialsError:
    """The error for a custom provider that raised ``exc`` (chain ``exc`` to it)."""
    return CredentialsError(f"{_PROVIDER} raised {type(exc).__name__} (see the chained exception)")


def checked_provider_settings(settings: object) -> dict[str, Any]:
    """The AWS settings a custom provider returned, validated (the message never shows values)."""
    if asyncio.iscoroutine(settings):
        settings.close()
        raise CredentialsError(f"{_PROVIDER} returned a coroutine; it must be a plain function")
    if not isinstance(settings, Mapping):
        raise CredentialsError(f"{_PROVIDER} returned {type(settings).__name__}, not a mapping")
    result: dict[str, Any] = {}
    for name in ("accessKeyId", "secretAccessKey"):
        value = settings.get(name)
        if not isinstance(value, str) or not value:
            raise CredentialsError(
                f"{_PROVIDER} returned no {name} (a non-empty string is required)"
            )
        result[name] = value
    token = settings.get("sessionToken")
    if token is not None:
        if not isinstance(token, str):
            raise CredentialsError(f"{_PROVIDER} returned a sessionToken that is not a string")
        if token:
            result["sessionToken"] = token
    return result


def aws_source(endpoints: CredentialEndpoints, env: Mapping[str, str]) -> Flow[dict[str, Any]]:
    """The authentication specification's discovery order, without URI credentials."""
    key_id = env.get("AWS_ACCESS_KEY_ID", "")
    secret = env.get("AWS_SECRET_ACCESS_KEY", "")
    if key_id and secret:
        settings = {"accessKeyId": key_id, "secretAccessKey": secret}
        token = env.get("AWS_SESSION_TOKEN", "")
        if token:
            settings["sessionToken"] = token
        return settings
    if key_id or secret:
        missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
        present = "AWS_ACCESS_KEY_ID" if key_id else "AWS_SECRET_ACCESS_KEY"
        raise Failure(f"{present} is set but {missing} is not")
    tried = ["environment variables (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)"]

    token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE", "")
    if token_file:
        return (yield from _web_identity(endpoints, env, token_file))
    tried.append("web identity (AWS_WEB_IDENTITY_TOKEN_FILE is not set)")

    relative_uri = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
    if relative_uri:
        if not relative_uri.startswith("/"):
            relative_uri = "/" + relative_uri
        request = HttpRequest(
            "the ECS credentials endpoint", "GET", url(endpoints.aws_ecs, "") + relative_uri
        )
        reply = yield request
        return _settings(request, reply, json_object(request, reply), "Token")
    tried.append("ECS (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not set)")

    try:
        return (yield from _ec2(endpoints))
    except Failure as failure:
        tried.append(f"EC2 instance metadata: {failure.detail}")
        raise Failure("none found; tried " + "; ".join(tried), failure.cause) from None


def _settings(
    request: HttpRequest, reply: Reply, document: Mapping[str, Any], token_field: str
) -> dict[str, Any]:
    """AWS settings from a reply's ``AccessKeyId``, ``SecretAccessKey`` and ``token_field``."""
    settings: dict[str, Any] = {
        "accessKeyId": required_str(request, reply, document, "AccessKeyId"),
        "secretAccessKey": required_str(request, reply, document, "SecretAccessKey"),
    }
    token = document.get(token_field)
    if token is not None and not isinstance(token, str):
        raise reply_failure(request, reply, f"replied with a {token_field} that is not a string")
    if token:
        settings["sessionToken"] = token
    return settings


def _web_identity(
    endpoints: CredentialEndpoints, env: Mapping[str, str], token_file: str
) -> Flow[dict[str, Any]]:
    role_arn = env.get("AWS_ROLE_ARN", "")
    if not role_arn:
        raise Failure("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
    contents: bytes = yield ReadFile("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
    web_token = contents.decode("utf-8", "replace").strip()
    if not web_token:
        raise Failure(f"the web identity token file {token_file} is empty")
    session_name = env.get("AWS_ROLE_SESSION_NAME", "") or f"mongocrypt-{secrets.token_hex(8)}"
    # POST keeps the web identity token out of the URL (and so out of messages and proxy logs).
    request = HttpRequest(
        "AWS STS (AssumeRoleWithWebIdentity)",
        "POST",
        url(endpoints.aws_sts, "/"),
        {"Accept": "application/json"},
        form={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "WebIdentityToken": web_token,
        },
        trust_env=True,
    )
    reply = yield request
    expect_ok(request, reply)
    if reply.body.lstrip().startswith(b"<"):
        credentials = _sts_xml_credentials(request, reply)
    else:
        document: Any = json_object(request, reply)
        for name in (
            "AssumeRoleWithWebIdentityResponse",
            "AssumeRoleWithWebIdentityResult",
            "Credentials",
        ):
            document = document.get(name) if isinstance(document, dict) else None
        if not isinstance(document, dict):
            raise reply_failure(request, reply, "replied without Credentials")
        credentials = document
    return _settings(request, reply, credentials, "SessionToken")


def _sts_xml_credentials(request: HttpRequest, reply: Reply) -> dict[str, Any]:
    """The ``Credentials`` element of an STS XML reply, as local name -> text."""
    try:
        root = ElementTree.fromstring(reply.body)
    except ElementTree.ParseError:
        raise reply_failure(request, reply, "replied with XML that does not parse") from None
    for element in root.iter():
        if element.tag.rpartition("}")[2] == "Credentials":
            return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in element}
    raise reply_failure(request, reply, "replied without Credentials")


def _ec2(endpoints: CredentialEndpoints) -> Flow[dict[str, Any]]:
    """IMDSv2: a session token, the role name, then the role's credentials."""
    source = "the EC2 instance metadata service"
    token_request = HttpRequest(
        source,
        "PUT",
        url(endpoints.aws_ec2_metadata, "/latest/api/token"),
        {"X-aws-ec2-metadata-token-ttl-seconds": "30"},
    )
    reply = yield token_request
    expect_ok(token_request, reply)
    session = reply.body.decode("utf-8", "replace").strip()
    if not session:
        raise Failure(f"{source} at {token_request.url} replied with an empty session token")
    headers = {"X-aws-ec2-metadata-token": session}

    roles_request = HttpRequest(
        source, "GET", url(endpoints.aws_ec2_metadata, _EC2_ROLES_PATH), headers
    )
    reply = yield roles_request
    expect_ok(roles_request, reply)
    roles = reply.body.decode("utf-8", "replace").split()
    if not roles:
        raise reply_failure(roles_request, reply, "names no IAM role for the instance")

    credentials_request = HttpRequest(
        source,
        "GET",
        url(endpoints.aws_ec2_metadata, _EC2_ROLES_PATH + quote(roles[0], safe="")),
        headers,
    )
    reply = yield credentials_request
    return _settings(credentials_request, reply, json_object(credentials_request, reply), "Token")
