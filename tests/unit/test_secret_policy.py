"""The one secret-name policy (mongocrypt._secrets) and each place that applies it: the message
redaction of errors.redact, the command line's scrubbing of its settings, and the reprs of
options carrying key material."""

from __future__ import annotations

import base64
import os
from typing import Callable, Optional

import pytest

from mongocrypt import DataKeyOpts
from mongocrypt._secrets import REDACTED, is_secret_name, shown
from mongocrypt.cli._settings import Settings
from mongocrypt.engine import DataKeyOptions
from mongocrypt.errors import redact

SECRET_NAMES = [
    "key",  # a local provider's master key
    "privateKey",  # GCP
    "secretAccessKey",
    "accessKeyId",
    "sessionToken",
    "clientSecret",
    "accessToken",
    "access_token",
    "tlsCertificateKeyFilePassword",
    "key_material",
    "Plaintext",  # AWS Decrypt reply
    "plaintext",  # GCP
    "value",  # Azure unwrapKey reply
    "X-Amz-Signature",
]
PUBLIC_NAMES = ["region", "keyId", "keyName", "keyVaultEndpoint", "masterKey", "email", "kid"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_hidden_everywhere(name: str) -> None:
    assert is_secret_name(name) and is_secret_name(name.upper())
    secret = "s3cr3t-" + os.urandom(6).hex()
    for quoted in (f'{{"{name}": "{secret}"}}', f"<{name}>{secret}</{name}>"):
        message = redact(f"KMS reply: {quoted}")
        assert secret not in message and REDACTED in message
    settings = Settings(kms_providers={"p": {name: secret}}, kms_tls_options={"p": {name: secret}})
    assert secret in settings.secrets()
    assert shown(name, secret) == REDACTED
    assert shown(name, None) == "None"


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_other_names_are_shown(name: str) -> None:
    assert not is_secret_name(name)
    message = redact(f'KMS reply: {{"{name}": "visible-text"}}')
    assert "visible-text" in message and REDACTED not in message
    settings = Settings(kms_providers={"p": {name: "visible-text"}})
    assert settings.secrets() == []
    assert shown(name, "visible-text") == "'visible-text'"


def test_the_command_line_scrubs_a_local_key_in_the_forms_a_message_shows() -> None:
    key = os.urandom(96)
    found = Settings(kms_providers={"local": {"key": key}}).secrets()
    assert base64.b64encode(key).decode() in found and key.hex() in found


@pytest.mark.parametrize(
    "options",
    [
        lambda material: DataKeyOpts(key_material=material),
        lambda material: DataKeyOptions("local", key_material=material),
    ],
    ids=["DataKeyOpts", "DataKeyOptions"],
)
def test_reprs_hide_key_material(options: Callable[[Optional[bytes]], object]) -> None:
    material = os.urandom(96)
    text = repr(options(material))
    assert f"key_material={REDACTED}" in text
    assert material.hex() not in text and repr(material) not in text
    assert "key_material=None" in repr(options(None))
