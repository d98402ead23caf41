"""pymongocrypt.asynchronous.explicit_encrypter: mongocrypt's drop-in AsyncExplicitEncrypter."""

from mongocrypt.dropin.asynchronous import AsyncExplicitEncrypter

__all__ = ["AsyncExplicitEncrypter"]
