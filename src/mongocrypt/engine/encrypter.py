"""Whole operations on one handle: what pymongo calls through pymongocrypt's encrypters.

:class:`AutoEncrypter` serves a ``MongoClient`` with automatic encryption;
:class:`ExplicitEncrypter` serves a ``ClientEncryption``. Each owns a
:class:`~mongocrypt.engine.handle.MongoCrypt` and an I/O callback; the async variants take an
:class:`AsyncMongoCryptCallback` and share everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import bson

from mongocrypt.engine.binary import BufferLike
from mongocrypt.engine.context import MongoCryptContext
from mongocrypt.engine.handle import MongoCrypt
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions, MongoCryptOptions
from mongocrypt.engine.state_machine import (
    AsyncMongoCryptCallback,
    MongoCryptCallback,
    run_state_machine,
    run_state_machine_async,
)
from mongocrypt.errors import MongoCryptError

__all__ = ["AsyncAutoEncrypter", "AsyncExplicitEncrypter", "AutoEncrypter", "ExplicitEncrypter"]


_INT64 = -(2**63)  # the range of libmongocrypt's int64 options: [_INT64, -_INT64)


def _result(result: Optional[bytes], operation: str) -> bytes:
    if result is None:
        raise MongoCryptError(f"libmongocrypt finished {operation} without a result")
    return result


class _ExplicitContexts:
    """Building the contexts of explicit operations (shared by the sync and async encrypters)."""

    mongocrypt: MongoCrypt

    def _data_key_context(
        self,
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]],
        key_alt_names: Optional[Sequence[str]],
        key_material: Optional[bytes],
    ) -> MongoCryptContext:
        opts = DataKeyOptions(kms_provider, master_key, tuple(key_alt_names or ()), key_material)
        return self.mongocrypt.data_key_context(opts)

    def _rewrap_context(
        self, filter: Any, provider: Optional[str], master_key: Optional[Mapping[str, Any]]
    ) -> MongoCryptContext:
        encoded = (
            filter if isinstance(filter, (bytes, bytearray, memoryview)) else bson.encode(filter)
        )
        return self.mongocrypt.rewrap_many_data_key_context(encoded, provider, master_key)

    def _encrypt_context(
        self,
        value: BufferLike,
        algorithm: str,
        key_id: Optional[bytes],
        key_alt_name: Optional[str],
        query_type: Optional[str],
        contention_factor: Optional[int],
        range_opts: Optional[bytes],
        is_expression: bool,
        string_opts: Optional[bytes],
        text_opts: Optional[bytes],
    ) -> MongoCryptContext:
        if string_opts is not None and text_opts is not None:
            raise ValueError(
                "pass the String algorithm's options as string_opts or text_opts, not both"
            )
        if string_opts is None:
            string_opts = text_opts
        opts = ExplicitEncryptOptions(
            algorithm,
            None if key_id is None else bytes(key_id),
            key_alt_name,
            query_type,
            contention_factor,
            range_opts,
            string_opts,
            is_expression,
        )
        return self.mongocrypt.explicit_encryption_context(value, opts)

    def _start_encrypt(
        self,
        value: BufferLike,
        algorithm: str,
        key_id: Optional[bytes],
        key_alt_name: Optional[str],
        query_type: Optional[str],
        contention_factor: Optional[int],
        range_opts: Optional[bytes],
        is_expression: bool,
        string_opts: Optional[bytes],
        text_opts: Optional[bytes],
    ) -> tuple[Optional[bytes], Optional[MongoCryptContext]]:
        """The result at once (one native call, key cached), or a context to drive."""
        _refuse_code_with_nul(value)
        if (
            type(value) is bytes
            and value
            and isinstance(key_id, bytes)
            and len(key_id) == 16
            and isinstance(algorithm, str)
            and key_alt_name is None
            and (query_type is None or isinstance(query_type, str))
            and (
                contention_factor is None
                or (type(contention_factor) is int and _INT64 <= contention_factor < -_INT64)
            )
            and range_opts is None
            and not is_expression
            and string_opts is None
            and text_opts is None
        ):
            return self.mongocrypt.explicit_fast(
                value, bytes(key_id), algorithm, contention_factor, query_type
            )
        context = self._encrypt_context(
            value,
            algorithm,
            key_id,
            key_alt_name,
            query_type,
            contention_factor,
            range_opts,
            is_expression,
            string_opts,
            text_opts,
        )
        return None, context

    def _start_decrypt(
        self, value: BufferLike
    ) -> tuple[Optional[bytes], Optional[MongoCryptContext]]:
        if type(value) is bytes and value:
            return self.mongocrypt.explicit_fast(value)
        return None, self.mongocrypt.explicit_decryption_context(value)


#: BSON element types of JavaScript code, without and with scope.
_CODE_TYPES = (0x0D, 0x0F)


def _refuse_code_with_nul(value: BufferLike) -> None:
    """Refuse ``{"v": Code}`` whose code holds a NUL: libmongocrypt would cut it there."""
    view = value if type(value) is bytes else memoryview(value)  # no view on the hot path
    if len(view) < 5 or view[4] not in _CODE_TYPES:
        return
    data = bytes(view)
    start = data.find(b"\x00", 5) + 1 + (4 if data[4] == 0x0F else 0)
    length = int.from_bytes(data[start : start + 4], "little")
    if b"\x00" in data[start + 4 : start + 3 + length]:
        raise ValueError(
            "JavaScript code containing a NUL character cannot be encrypted: libmongocrypt "
            "would truncate it at the NUL"
        )


class ExplicitEncrypter(_ExplicitContexts):
    """Explicit encryption, decryption and key management over a synchronous callback.

    :param callback: the I/O (key vault and KMS).
    :param mongo_crypt_opts: the handle's options.
    """

    def __init__(self, callback: MongoCryptCallback, mongo_crypt_opts: MongoCryptOptions) -> None:
        self.callback = callback
        self.mongocrypt = MongoCrypt(mongo_crypt_opts)

    def create_data_key(
        self,
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]] = None,
        key_alt_names: Optional[Sequence[str]] = None,
        key_material: Optional[bytes] = None,
    ) -> Any:
        """Create a data key, insert it in the key vault, and return its ``_id``."""
        with self._data_key_context(kms_provider, master_key, key_alt_names, key_material) as ctx:
            key = _result(run_state_machine(ctx, self.callback), "data key creation")
        return self.callback.insert_data_key(key)

    def rewrap_many_data_key(
        self,
        filter: Any,
        provider: Optional[str] = None,
        master_key: Optional[Mapping[str, Any]] = None,
    ) -> Optional[bytes]:
        """Re-encrypt the matching keys; BSON ``{"v": [keys]}``, or None when nothing matched."""
        with self._rewrap_context(filter, provider, master_key) as ctx:
            return run_state_machine(ctx, self.callback)

    def encrypt(
        self,
        value: BufferLike,
        algorithm: str,
        key_id: Optional[bytes] = None,
        key_alt_name: Optional[str] = None,
        query_type: Optional[str] = None,
        contention_factor: Optional[int] = None,
        range_opts: Optional[bytes] = None,
        is_expression: bool = False,
        string_opts: Optional[bytes] = None,
        text_opts: Optional[bytes] = None,
    ) -> bytes:
        """Encrypt BSON ``{"v": value}``; returns BSON ``{"v": ciphertext}``.

        ``text_opts`` is the name pymongo 4.16-4.17 give ``string_opts`` (4.18-4.19 pick the name
        from this signature, 4.20 always send ``string_opts``); pass one or the other.
        """
        result, ctx = self._start_encrypt(
            value,
            algorithm,
            key_id,
            key_alt_name,
            query_type,
            contention_factor,
            range_opts,
            is_expression,
            string_opts,
            text_opts,
        )
        if ctx is None:
            return result  # type: ignore[return-value]
        with ctx:
            return _result(run_state_machine(ctx, self.callback), "encryption")

    def decrypt(self, value: BufferLike) -> bytes:
        """Decrypt BSON ``{"v": ciphertext}``; returns BSON ``{"v": value}``."""
        result, ctx = self._start_decrypt(value)
        if ctx is None:
            return result  # type: ignore[return-value]
        with ctx:
            return _result(run_state_machine(ctx, self.callback), "decryption")

    def close(self) -> None:
        """Close the handle and the callback."""
        self.mongocrypt.close()
        self.callback.close()


class AsyncExplicitEncrypter(_ExplicitContexts):
    """:class:`ExplicitEncrypter` over an :class:`AsyncMongoCryptCallback`."""

    def __init__(
        self, callback: AsyncMongoCryptCallback, mongo_crypt_opts: MongoCryptOptions
    ) -> None:
        self.callback = callback
        self.mongocrypt = MongoCrypt(mongo_crypt_opts)

    async def create_data_key(
        self,
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]] = None,
        key_alt_names: Optional[Sequence[str]] = None,
        key_material: Optional[bytes] = None,
    ) -> Any:
        with self._data_key_context(kms_provider, master_key, key_alt_names, key_material) as ctx:
            key = _result(await run_state_machine_async(ctx, self.callback), "data key creation")
        return await self.callback.insert_data_key(key)

    async def rewrap_many_data_key(
        self,
        filter: Any,
        provider: Optional[str] = None,
        master_key: Optional[Mapping[str, Any]] = None,
    ) -> Optional[bytes]:
        with self._rewrap_context(filter, provider, master_key) as ctx:
            return await run_state_machine_async(ctx, self.callback)

    async def encrypt(
        self,
        value: BufferLike,
        algorithm: str,
        key_id: Optional[bytes] = None,
        key_alt_name: Optional[str] = None,
        query_type: Optional[str] = None,
        contention_factor: Optional[int] = None,
        range_opts: Optional[bytes] = None,
        is_expression: bool = False,
        string_opts: Optional[bytes] = None,
        text_opts: Optional[bytes] = None,
    ) -> bytes:
        result, ctx = self._start_encrypt(
            value,
            algorithm,
            key_id,
            key_alt_name,
            query_type,
            contention_factor,
            range_opts,
            is_expression,
            string_opts,
            text_opts,
        )
        if ctx is None:
            return result  # type: ignore[return-value]
        with ctx:
            return _result(await run_state_machine_async(ctx, self.callback), "encryption")

    async def decrypt(self, value: BufferLike) -> bytes:
        result, ctx = self._start_decrypt(value)
        if ctx is None:
            return result  # type: ignore[return-value]
        with ctx:
            return _result(await run_state_machine_async(ctx, self.callback), "decryption")

    def close(self) -> None:
        """Close the handle. Not a coroutine, and the callback is left to its owner: pymongo's
        ``AsyncClientEncryption`` awaits its I/O's ``close()`` itself, then calls this unawaited."""
        self.mongocrypt.close()


class AutoEncrypter:
    """Automatic encryption of commands and decryption of replies over a synchronous callback."""

    def __init__(self, callback: MongoCryptCallback, mongo_crypt_opts: MongoCryptOptions) -> None:
        self.callback = callback
        self.mongocrypt = MongoCrypt(mongo_crypt_opts)

    def encrypt(self, database: str, cmd: BufferLike) -> bytes:
        """The command (BSON) to send instead of ``cmd``."""
        with self.mongocrypt.encryption_context(database, cmd) as ctx:
            return _result(run_state_machine(ctx, self.callback), "command encryption")

    def decrypt(self, response: BufferLike) -> bytes:
        """The reply (BSON) with every encrypted value decrypted."""
        with self.mongocrypt.decryption_context(response) as ctx:
            return _result(run_state_machine(ctx, self.callback), "reply decryption")

    def close(self) -> None:
        self.mongocrypt.close()
        self.callback.close()


class AsyncAutoEncrypter:
    """:class:`AutoEncrypter` over an :class:`AsyncMongoCryptCallback`."""

    def __init__(
        self, callback: AsyncMongoCryptCallback, mongo_crypt_opts: MongoCryptOptions
    ) -> None:
        self.callback = callback
        self.mongocrypt = MongoCrypt(mongo_crypt_opts)

    async def encrypt(self, database: str, cmd: BufferLike) -> bytes:
        with self.mongocrypt.encryption_context(database, cmd) as ctx:
            return _result(await run_state_machine_async(ctx, self.callback), "command encryption")

    async def decrypt(self, response: BufferLike) -> bytes:
        with self.mongocrypt.decryption_context(response) as ctx:
            return _result(await run_state_machine_async(ctx, self.callback), "reply decryption")

    async def close(self) -> None:
        self.mongocrypt.close()
        await self.callback.close()
