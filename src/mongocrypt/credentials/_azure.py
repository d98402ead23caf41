"""The ``azure`` source: a managed-identity token for Key Vault from Azure IMDS, cached."""

from __future__ import annotations

import re
import time
from typing import Any

from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._steps import (
    Flow,
    HttpRequest,
    json_object,
    reply_failure,
    required_str,
    url,
)
from mongocrypt.credentials._token_cache import TokenCache

#: A cached token is reused only while it expires more than this many seconds from now.
EXPIRY_MARGIN = 60.0
_TOKEN_PATH = (
    "/metadata/identity/oauth2/token"
    "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net%2F"
)
#: The process-wide cache, keyed by the IMDS token URL.
TOKENS = TokenCache()


def azure_source(endpoints: CredentialEndpoints) -> Flow[dict[str, Any]]:
    token_url = url(endpoints.azure_imds, _TOKEN_PATH)
    cached = TOKENS.get(token_url, EXPIRY_MARGIN)
    if cached is not None:
        return {"accessToken": cached}
    request = HttpRequest(
        "Azure IMDS", "GET", token_url, {"Metadata": "true", "Accept": "application/json"}
    )
    started = time.monotonic()  # the expiry counts from just before the request
    reply = yield request
    document = json_object(request, reply)
    token = required_str(request, reply, document, "access_token")
    expires_in = document.get("expires_in")
    if isinstance(expires_in, int) and not isinstance(expires_in, bool):
        expires_in = str(expires_in)
    if not isinstance(expires_in, str) or not re.fullmatch(r"[0-9]+", expires_in.strip()):
        raise reply_failure(request, reply, "replied without a numeric expires_in")
    TOKENS.put(token_url, token, started + int(expires_in))
    return {"accessToken": token}
