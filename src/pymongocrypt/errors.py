"""pymongocrypt.errors: the error pymongo catches (``.code`` and libmongocrypt's message)."""

from mongocrypt.errors import MongoCryptError

__all__ = ["MongoCryptError"]
