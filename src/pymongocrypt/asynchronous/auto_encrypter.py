"""pymongocrypt.asynchronous.auto_encrypter: the async twin of the synchronous module."""

from __future__ import annotations

from typing import Any

from mongocrypt.auto_encryption import route_io
from mongocrypt.engine import AsyncAutoEncrypter as _EngineAutoEncrypter
from mongocrypt.engine import MongoCryptOptions

__all__ = ["AsyncAutoEncrypter"]


class AsyncAutoEncrypter(_EngineAutoEncrypter):
    """pymongo's async I/O object keeps the commands; mongocrypt does KMS, credentials, analysis."""

    def __init__(self, callback: Any, mongo_crypt_opts: MongoCryptOptions) -> None:
        super().__init__(route_io(callback, is_async=True), mongo_crypt_opts)
