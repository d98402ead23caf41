"""pymongocrypt.synchronous.explicit_encrypter."""

from mongocrypt.engine import ExplicitEncrypter

__all__ = ["ExplicitEncrypter"]
