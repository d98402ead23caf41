"""mongocrypt: MongoDB client-side field level and Queryable Encryption, on native libmongocrypt.

The public API: :class:`ClientEncryption` / :class:`AsyncClientEncryption` (explicit encryption
and key management), :class:`AutoEncryptionOpts` (automatic encryption on pymongo's clients),
their option types, errors and events. ``mongocrypt.engine`` is the layer
pymongo's own encryption runs on (through the ``pymongocrypt`` package this distribution provides).
"""

import logging
from typing import TYPE_CHECKING, Any

from mongocrypt._conflicts import check_no_real_pymongocrypt

check_no_real_pymongocrypt()
# A library logs; the application decides where to (no "last resort" printing to stderr).
logging.getLogger("mongocrypt").addHandler(logging.NullHandler())

from mongocrypt._version import __version__  # noqa: E402
from mongocrypt.client_encryption import AsyncClientEncryption, ClientEncryption  # noqa: E402
from mongocrypt.engine import (  # noqa: E402
    has_kms_in_place_retry,
    has_string_algorithm,
    is_crypto_available,
    libmongocrypt_version,
)
from mongocrypt.errors import (  # noqa: E402
    CredentialsError,
    EncryptedCollectionError,
    KeyVaultError,
    MongoCryptClosedError,
    MongoCryptError,
    MongoCryptKmsError,
    MongoCryptTimeoutError,
    QueryAnalysisError,
)
from mongocrypt.options import (  # noqa: E402
    Algorithm,
    DataKeyOpts,
    EncryptOpts,
    QueryType,
    RangeOpts,
    RewrapManyDataKeyOpts,
    RewrapManyDataKeyResult,
    StringOpts,
)

if TYPE_CHECKING:
    from mongocrypt.auto_encryption import AutoEncryptionOpts


def __getattr__(name: str) -> Any:
    """``AutoEncryptionOpts`` on first use: its module subclasses pymongo's, and pymongo may be
    importing us (``pymongocrypt``) from inside ``pymongo.encryption_options`` itself, before
    that module defines the class; an import here would fail and pymongo would report
    pymongocrypt missing."""
    if name == "AutoEncryptionOpts":
        from mongocrypt.auto_encryption import AutoEncryptionOpts

        return AutoEncryptionOpts
    raise AttributeError(f"module 'mongocrypt' has no attribute {name!r}")


__all__ = [
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
