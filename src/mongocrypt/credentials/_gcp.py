"""The ``gcp`` source: the default service account's access token from the GCE metadata server."""

from __future__ import annotations

from typing import Any

from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._steps import Flow, HttpRequest, json_object, required_str, url

_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


def gcp_source(endpoints: CredentialEndpoints) -> Flow[dict[str, Any]]:
    request = HttpRequest(
        "the GCE metadata server",
        "GET",
        url(endpoints.gcp_metadata, _TOKEN_PATH),
        {"Metadata-Flavor": "Google"},
    )
    reply = yield request
    document = json_object(request, reply)
    return {"accessToken": required_str(request, reply, document, "access_token")}
