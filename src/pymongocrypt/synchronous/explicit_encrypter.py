"""pymongocrypt.synchronous.explicit_encrypter: the engine's ExplicitEncrypter, with pymongo's key
vault I/O and mongocrypt's KMS transport and credentials."""

from __future__ import annotations

from typing import Any

from mongocrypt.auto_encryption import route_io
from mongocrypt.engine import ExplicitEncrypter as _EngineExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions

__all__ = ["ExplicitEncrypter"]


class ExplicitEncrypter(_EngineExplicitEncrypter):
    """pymongo's ClientEncryption runs on this."""

    def __init__(self, callback: Any, mongo_crypt_opts: MongoCryptOptions) -> None:
        super().__init__(route_io(callback, is_async=False), mongo_crypt_opts)
