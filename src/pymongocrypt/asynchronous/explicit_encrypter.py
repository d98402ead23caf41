"""pymongocrypt.asynchronous.explicit_encrypter."""

from mongocrypt.engine import AsyncExplicitEncrypter

__all__ = ["AsyncExplicitEncrypter"]
