"""pymongocrypt.asynchronous.auto_encrypter: mongocrypt's drop-in AsyncAutoEncrypter."""

from mongocrypt.dropin.asynchronous import AsyncAutoEncrypter

__all__ = ["AsyncAutoEncrypter"]
