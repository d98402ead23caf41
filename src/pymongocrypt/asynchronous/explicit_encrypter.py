"""pymongocrypt.asynchronous.explicit_encrypter: the async twin of the synchronous module."""

from __future__ import annotations

from typing import Any

from mongocrypt.auto_encryption import route_io
from mongocrypt.engine import AsyncExplicitEncrypter as _EngineExplicitEncrypter
from mongocrypt.engine import MongoCryptOptions

__all__ = ["AsyncExplicitEncrypter"]


class AsyncExplicitEncrypter(_EngineExplicitEncrypter):
    """pymongo's AsyncClientEncryption runs on this."""

    def __init__(self, callback: Any, mongo_crypt_opts: MongoCryptOptions) -> None:
        super().__init__(route_io(callback, is_async=True), mongo_crypt_opts)
