"""pymongocrypt, as provided by mongocrypt: the import surface pymongo loads for client-side
encryption, re-exported from :mod:`mongocrypt.dropin` and :mod:`mongocrypt.engine`.

With mongocrypt installed (and the real pymongocrypt not), pymongo's ``MongoClient(
auto_encryption_opts=...)``, ``ClientEncryption`` and their async variants run on mongocrypt.
Importing it registers the ``pymongocrypt`` distribution pymongo's version check looks for.
"""

from mongocrypt.dropin._identity import API_VERSION as __version__
from mongocrypt.dropin._identity import register_facade as _register
from mongocrypt.engine import libmongocrypt_version

_register()

__all__ = ["__version__", "libmongocrypt_version"]
