"""pymongocrypt.synchronous.auto_encrypter."""

from mongocrypt.engine import AutoEncrypter

__all__ = ["AutoEncrypter"]
