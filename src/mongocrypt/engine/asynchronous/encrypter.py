"""Whole operations on one handle, run against a callback.

:class:`AsyncAutoEncrypter` serves a client with automatic encryption;
:class:`AsyncExplicitEncrypter` serves a ``ClientEncryption``. Each owns a
:class:`~mongocrypt.engine.handle.MongoCrypt` and a callback, and runs the operations of
:mod:`mongocrypt.engine.steps` against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Union

from mongocrypt.engine.asynchronous.state_machine import AsyncMongoCryptCallback, run_steps_async
from mongocrypt.engine.binary import BufferLike
from mongocrypt.engine.handle import MongoCrypt
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions, MongoCryptOptions
from mongocrypt.engine.steps import (
    auto_decrypt_steps,
    auto_encrypt_steps,
    data_key_steps,
    rewrap_steps,
    start_decrypt,
    start_encrypt,
)

__all__ = ["AsyncAutoEncrypter", "AsyncExplicitEncrypter"]


class _AsyncEncrypter:
    """A libmongocrypt handle and the callback its operations run on.

    :param callback: the I/O the operations need.
    :param mongo_crypt_opts: the handle's options.
    """

    def __init__(
        self, callback: AsyncMongoCryptCallback, mongo_crypt_opts: MongoCryptOptions
    ) -> None:
        self.callback = callback
        self.mongocrypt = MongoCrypt(mongo_crypt_opts)


class AsyncExplicitEncrypter(_AsyncEncrypter):
    """Explicit encryption, decryption and key management (the callback: key vault and KMS)."""

    async def create_data_key(self, opts: DataKeyOptions) -> Any:
        """Create a data key, insert it in the key vault, and return its ``_id``."""
        return await run_steps_async(data_key_steps(self.mongocrypt, opts), self.callback)

    async def rewrap_many_data_key(
        self,
        filter: Union[BufferLike, Mapping[str, Any]],
        provider: Optional[str] = None,
        master_key: Optional[Mapping[str, Any]] = None,
    ) -> Optional[bytes]:
        """Re-encrypt the matching keys; BSON ``{"v": [keys]}``, or None when nothing matched."""
        steps = rewrap_steps(self.mongocrypt, filter, provider, master_key)
        result: Optional[bytes] = await run_steps_async(steps, self.callback)
        return result

    async def encrypt(self, value: BufferLike, opts: ExplicitEncryptOptions) -> bytes:
        """Encrypt BSON ``{"v": value}``; returns BSON ``{"v": ciphertext}``."""
        result, steps = start_encrypt(self.mongocrypt, value, opts)
        if steps is None:  # finished in one native call
            assert result is not None
            return result
        finished: bytes = await run_steps_async(steps, self.callback)
        return finished

    async def decrypt(self, value: BufferLike) -> bytes:
        """Decrypt BSON ``{"v": ciphertext}``; returns BSON ``{"v": value}``."""
        result, steps = start_decrypt(self.mongocrypt, value)
        if steps is None:  # finished in one native call
            assert result is not None
            return result
        finished: bytes = await run_steps_async(steps, self.callback)
        return finished

    def close(self) -> None:
        """Close the handle; the callback is its owner's to close (pymongo closes its I/O first,
        then calls this without awaiting)."""
        self.mongocrypt.close()


class AsyncAutoEncrypter(_AsyncEncrypter):
    """Automatic encryption of commands and decryption of replies (the callback:
    listCollections, query analysis, key vault and KMS)."""

    async def encrypt(self, database: str, cmd: BufferLike) -> bytes:
        """The command (BSON) to send instead of ``cmd``."""
        steps = auto_encrypt_steps(self.mongocrypt, database, cmd)
        result: bytes = await run_steps_async(steps, self.callback)
        return result

    async def decrypt(self, response: BufferLike) -> bytes:
        """The reply (BSON) with every encrypted value decrypted."""
        steps = auto_decrypt_steps(self.mongocrypt, response)
        result: bytes = await run_steps_async(steps, self.callback)
        return result

    async def close(self) -> None:
        """Close the handle and the callback (pymongo leaves the callback to the encrypter)."""
        self.mongocrypt.close()
        await self.callback.close()
