"""The public import surface is pinned, so it cannot drift by accident."""

from __future__ import annotations

from typing import Any

import pytest

import mongocrypt
import mongocrypt.engine
import mongocrypt.errors

pytestmark = pytest.mark.smoke


def test_top_level_surface() -> None:
    assert sorted(mongocrypt.__all__) == sorted(
        [
            "Algorithm",
            "AsyncClientEncryption",
            "AutoEncryptionOpts",
            "ClientEncryption",
            "CredentialsError",
            "DataKeyOpts",
            "EncryptOpts",
            "EncryptedCollectionError",
            "KeyVaultError",
            "MongoCryptClosedError",
            "MongoCryptError",
            "MongoCryptKmsError",
            "MongoCryptTimeoutError",
            "QueryAnalysisError",
            "QueryType",
            "RangeOpts",
            "RewrapManyDataKeyOpts",
            "RewrapManyDataKeyResult",
            "StringOpts",
            "__version__",
            "has_kms_in_place_retry",
            "has_string_algorithm",
            "is_crypto_available",
            "libmongocrypt_version",
        ]
    )
    for name in mongocrypt.__all__:
        assert hasattr(mongocrypt, name), name


def test_engine_surface() -> None:
    assert sorted(mongocrypt.engine.__all__) == sorted(
        [
            "LOGGER",
            "AsyncAutoEncrypter",
            "AsyncExplicitEncrypter",
            "AsyncMongoCryptCallback",
            "AutoEncrypter",
            "DataKeyOptions",
            "ExplicitEncrypter",
            "ExplicitEncryptOptions",
            "KmsContext",
            "MongoCrypt",
            "MongoCryptCallback",
            "MongoCryptContext",
            "MongoCryptOptions",
            "State",
            "has_kms_in_place_retry",
            "has_string_algorithm",
            "is_crypto_available",
            "libmongocrypt_version",
            "run_state_machine",
            "run_state_machine_async",
        ]
    )
    for name in mongocrypt.engine.__all__:
        assert hasattr(mongocrypt.engine, name), name


def test_errors_surface() -> None:
    assert sorted(mongocrypt.errors.__all__) == [
        "CredentialsError",
        "EncryptedCollectionError",
        "KeyVaultError",
        "MongoCryptClosedError",
        "MongoCryptError",
        "MongoCryptKmsError",
        "MongoCryptTimeoutError",
        "QueryAnalysisError",
        "redact",
    ]


def test_package_is_typed() -> None:
    from importlib import resources

    assert resources.files("mongocrypt").joinpath("py.typed").is_file()


@pytest.mark.requirement("CSE-API-03")
def test_option_names_are_python_keywords_in_snake_case() -> None:
    """The specification's camelCase option names become snake_case keyword parameters."""
    import inspect
    import re

    from mongocrypt.auto_encryption import AutoEncryptionOpts

    options: list[Any] = [
        mongocrypt.ClientEncryption.__init__,
        AutoEncryptionOpts.__init__,
        mongocrypt.DataKeyOpts,
        mongocrypt.EncryptOpts,
        mongocrypt.RangeOpts,
        mongocrypt.RewrapManyDataKeyOpts,
    ]
    names = [name for o in options for name in inspect.signature(o).parameters if name != "self"]
    assert {"kms_providers", "key_vault_namespace", "key_alt_names", "contention_factor"} <= set(
        names
    )
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names), names
