"""pymongocrypt, as provided by mongocrypt: the import surface pymongo loads for client-side
encryption, mapped onto mongocrypt's engine. Re-exports and thin adapters only.

With mongocrypt installed (and the real pymongocrypt not), pymongo's ``MongoClient(
auto_encryption_opts=...)``, ``ClientEncryption`` and their async variants run on mongocrypt.
"""

from mongocrypt._conflicts import check_no_real_pymongocrypt
from mongocrypt.engine import libmongocrypt_version
from pymongocrypt import _identity

check_no_real_pymongocrypt()
_identity.register()

#: The pymongocrypt API level this facade implements (what pymongo's version check sees).
__version__ = _identity.API_VERSION

__all__ = ["__version__", "libmongocrypt_version"]
