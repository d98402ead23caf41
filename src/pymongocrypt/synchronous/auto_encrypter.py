"""pymongocrypt.synchronous.auto_encrypter: mongocrypt's drop-in AutoEncrypter."""

from mongocrypt.dropin.synchronous import AutoEncrypter

__all__ = ["AutoEncrypter"]
