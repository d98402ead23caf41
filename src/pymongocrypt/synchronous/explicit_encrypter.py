"""pymongocrypt.synchronous.explicit_encrypter."""

from pymongocrypt._adapters import ExplicitEncrypter

__all__ = ["ExplicitEncrypter"]
