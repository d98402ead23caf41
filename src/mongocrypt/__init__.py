"""mongocrypt: MongoDB client-side field level and Queryable Encryption, on native libmongocrypt."""

from mongocrypt._conflicts import check_no_real_pymongocrypt
from mongocrypt._version import __version__
from mongocrypt.engine import (
    has_kms_in_place_retry,
    has_string_algorithm,
    is_crypto_available,
    libmongocrypt_version,
)
from mongocrypt.errors import MongoCryptClosedError, MongoCryptError, MongoCryptKmsError

check_no_real_pymongocrypt()

__all__ = [
    "MongoCryptClosedError",
    "MongoCryptError",
    "MongoCryptKmsError",
    "__version__",
    "has_kms_in_place_retry",
    "has_string_algorithm",
    "is_crypto_available",
    "libmongocrypt_version",
]
