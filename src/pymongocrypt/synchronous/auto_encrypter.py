"""pymongocrypt.synchronous.auto_encrypter: the engine's AutoEncrypter, routed via mongocrypt."""

from __future__ import annotations

from typing import Any

from mongocrypt.auto_encryption import route_io
from mongocrypt.engine import AutoEncrypter as _EngineAutoEncrypter
from mongocrypt.engine import MongoCryptOptions

__all__ = ["AutoEncrypter"]


class AutoEncrypter(_EngineAutoEncrypter):
    """pymongo's I/O object keeps the commands; mongocrypt does KMS, credentials and analysis."""

    def __init__(self, callback: Any, mongo_crypt_opts: MongoCryptOptions) -> None:
        super().__init__(route_io(callback, is_async=False), mongo_crypt_opts)
