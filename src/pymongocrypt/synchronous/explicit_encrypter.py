"""pymongocrypt.synchronous.explicit_encrypter: mongocrypt's drop-in ExplicitEncrypter."""

from mongocrypt.dropin.synchronous import ExplicitEncrypter

__all__ = ["ExplicitEncrypter"]
