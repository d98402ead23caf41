"""pymongocrypt.asynchronous.explicit_encrypter."""

from pymongocrypt._adapters import AsyncExplicitEncrypter

__all__ = ["AsyncExplicitEncrypter"]
