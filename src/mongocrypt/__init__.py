"""mongocrypt: MongoDB client-side field level and Queryable Encryption, on native libmongocrypt.

The public API: :class:`ClientEncryption` / :class:`AsyncClientEncryption` (explicit encryption
and key management), :class:`AutoEncryptionOpts` (automatic encryption on pymongo's clients),
their option types, errors and events. ``mongocrypt.engine`` is the layer
pymongo's own encryption runs on (through the ``pymongocrypt`` package this distribution provides).
"""

import logging

from mongocrypt._conflicts import check_no_real_pymongocrypt

check_no_real_pymongocrypt()
# A library logs; the application decides where to (no "last resort" printing to stderr).
logging.getLogger("mongocrypt").addHandler(logging.NullHandler())

from mongocrypt._version import __version__  # noqa: E402
from mongocrypt.auto_encryption import AutoEncryptionOpts  # noqa: E402
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
