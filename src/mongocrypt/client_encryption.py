"""``ClientEncryption`` and ``AsyncClientEncryption``: the specification's explicit encryption and
key management API, on mongocrypt's own I/O.

``AsyncClientEncryption`` is written in :mod:`mongocrypt.asynchronous.client_encryption`;
``ClientEncryption`` is generated from it (:mod:`mongocrypt.synchronous.client_encryption`).
"""

from mongocrypt.asynchronous.client_encryption import AsyncClientEncryption
from mongocrypt.synchronous.client_encryption import ClientEncryption

__all__ = ["AsyncClientEncryption", "ClientEncryption"]
