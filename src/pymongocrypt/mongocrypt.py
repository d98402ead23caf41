"""pymongocrypt.mongocrypt: the handle options and the KMS request object."""

from mongocrypt.engine import KmsContext as MongoCryptKmsContext
from mongocrypt.engine import MongoCrypt, MongoCryptContext, MongoCryptOptions

__all__ = ["MongoCrypt", "MongoCryptContext", "MongoCryptKmsContext", "MongoCryptOptions"]
