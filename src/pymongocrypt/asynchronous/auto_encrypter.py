"""pymongocrypt.asynchronous.auto_encrypter."""

from mongocrypt.engine import AsyncAutoEncrypter

__all__ = ["AsyncAutoEncrypter"]
