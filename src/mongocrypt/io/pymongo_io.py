"""The engine's I/O over pymongo for mongocrypt's own API, sync and async, and the key vault's
rules (see :mod:`mongocrypt.io.key_vault`)."""

from mongocrypt.io.asynchronous.pymongo_io import AsyncPymongoIO
from mongocrypt.io.key_vault import (
    KEY_VAULT_CODEC_OPTIONS,
    KeyVaultOperation,
    key_vault_collection,
    key_vault_error,
)
from mongocrypt.io.synchronous.pymongo_io import PymongoIO

__all__ = [
    "KEY_VAULT_CODEC_OPTIONS",
    "AsyncPymongoIO",
    "KeyVaultOperation",
    "PymongoIO",
    "key_vault_collection",
    "key_vault_error",
]
