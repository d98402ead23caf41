"""The encrypters and the callback contract pymongo's asyncio encryption runs on.

pymongo builds :class:`AsyncAutoEncrypter` and :class:`AsyncExplicitEncrypter` with its own I/O
object, a subclass of :class:`AsyncMongoCryptCallback`. The encrypters wrap that object in an
:class:`AsyncRoutedIO`: pymongo keeps listCollections, mongocryptd and the key vault; mongocrypt
does the KMS requests (its transport: concurrent, per-provider TLS, proxies), on-demand
credentials, key-vault events and, when chosen, the embedded analyzer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Callable, Optional

import pymongo
from pymongo.errors import PyMongoError

from mongocrypt.auto_encryption import AutoEncryptionOpts, kms_connect_callback
from mongocrypt.credentials import OnDemandCredentials
from mongocrypt.dropin._analysis import (
    AnalyzerChoice,
    mongocryptd_error,
    restore_max_time,
    split_max_time,
)
from mongocrypt.dropin._shapes import data_key_options, encrypt_options
from mongocrypt.engine import AsyncAutoEncrypter as _EngineAutoEncrypter
from mongocrypt.engine import AsyncExplicitEncrypter as _EngineExplicitEncrypter
from mongocrypt.engine import AsyncMongoCryptCallback as _EngineCallback
from mongocrypt.engine import KmsContext, MongoCrypt, MongoCryptOptions
from mongocrypt.engine.binary import BufferLike
from mongocrypt.events import EventPublisher
from mongocrypt.io.key_vault import KeyVaultOperation
from mongocrypt.io.kms import AsyncKmsTransport

__all__ = [
    "AsyncAutoEncrypter",
    "AsyncExplicitEncrypter",
    "AsyncMongoCryptCallback",
    "AsyncRoutedIO",
]


class AsyncMongoCryptCallback(_EngineCallback):
    """The contract pymongo's I/O class implements, with on-demand credentials supplied here
    (pymongo's class cannot fetch them; pymongocrypt fetches them itself)."""

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        return await OnDemandCredentials().fetch_async(providers)


class AsyncRoutedIO(_EngineCallback):
    """pymongo's I/O object, with mongocrypt's KMS, credentials, events and analyzer.

    :param pymongo_io: pymongo's I/O object (its ``opts`` are the client's encryption options).
    """

    def __init__(self, pymongo_io: Any) -> None:
        self.inner = pymongo_io
        opts: Any = getattr(pymongo_io, "opts", None)
        self.opts = opts
        ours = isinstance(opts, AutoEncryptionOpts)
        self.events = opts.events if ours else EventPublisher()
        self.kms = AsyncKmsTransport(
            getattr(opts, "_kms_tls_options", None), kms_connect_callback(opts), self.events
        )
        self.credentials = OnDemandCredentials(opts.credential_providers if ours else None)
        #: the embedded analyzer's marker, when it is the analyzer (set by the auto encrypter)
        self.marker: Optional[Callable[[str, bytes], bytes]] = None
        self.analysis = AnalyzerChoice(opts)
        self.namespace = getattr(opts, "_key_vault_namespace", "")

    async def kms_request(self, kms_context: KmsContext) -> None:
        await self.kms.service([kms_context])

    async def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        await self.kms.service(kms_contexts)

    async def collection_info(self, database: str, filter: bytes) -> Any:
        return await self.inner.collection_info(database, filter)

    async def mark_command(self, database: str, cmd: bytes) -> Any:
        if self.marker is not None:
            return self.marker(database, cmd)
        # maxTimeMS must never reach mongocryptd (CSOT): the command's own is taken out and put
        # back in the marked command; pymongo would add one under a client timeoutMS, so the
        # command runs outside the operation's timeout. Reaching mongocryptd stays within it
        # when pymongo will not spawn one: selecting the server sends no command.
        command, max_time = split_max_time(bytes(cmd))
        try:
            mongocryptd = getattr(self.inner, "mongocryptd_client", None)
            if mongocryptd is not None and getattr(self.opts, "_mongocryptd_bypass_spawn", False):
                _selected = await mongocryptd.address  # selecting the server is the check
            with pymongo.timeout(None):
                reply = await self.inner.mark_command(database, command)
        except PyMongoError as exc:
            raise mongocryptd_error(exc) from exc
        return restore_max_time(reply, max_time)

    async def fetch_keys(self, filter: bytes) -> AsyncIterator[bytes]:
        with KeyVaultOperation(self.events, "find", self.namespace) as op:
            keys = [bytes(key) async for key in self.inner.fetch_keys(filter)]
            op.count = len(keys)
        for key in keys:
            yield key

    async def insert_data_key(self, data_key: bytes) -> Any:
        return await self.inner.insert_data_key(data_key)

    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        return self.inner.bson_encode(doc)  # type: ignore[no-any-return]

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        return await self.credentials.fetch_async(providers)

    async def close(self) -> None:
        self.kms.close()
        await self.inner.close()


def _routed(callback: Any) -> Any:
    """pymongo's I/O object (a subclass of the facade's contract) routed; any other as is."""
    return AsyncRoutedIO(callback) if isinstance(callback, AsyncMongoCryptCallback) else callback


class AsyncAutoEncrypter(_EngineAutoEncrypter):
    """pymongo's automatic encryption runs on this.

    :param callback: pymongo's I/O object (or any engine callback, used as it is).
    :param mongo_crypt_opts: the handle's options.
    """

    def __init__(self, callback: Any, mongo_crypt_opts: MongoCryptOptions) -> None:
        routed = _routed(callback)
        if isinstance(routed, AsyncRoutedIO):
            mongo_crypt_opts = routed.analysis.handle_options(mongo_crypt_opts)
        super().__init__(routed, mongo_crypt_opts)
        if isinstance(routed, AsyncRoutedIO):
            routed.marker = routed.analysis.choose(
                mongo_crypt_opts, self.mongocrypt.crypt_shared_lib_version
            )


class AsyncExplicitEncrypter:
    """pymongo's ``ClientEncryption`` runs on this: the engine's explicit encrypter, called with
    the arguments pymongocrypt's encrypter takes.

    :param callback: pymongo's I/O object (or any engine callback, used as it is).
    :param mongo_crypt_opts: the handle's options.
    """

    def __init__(self, callback: Any, mongo_crypt_opts: MongoCryptOptions) -> None:
        self.engine = _EngineExplicitEncrypter(_routed(callback), mongo_crypt_opts)

    @property
    def mongocrypt(self) -> MongoCrypt:
        """The libmongocrypt handle."""
        return self.engine.mongocrypt

    @property
    def callback(self) -> Any:
        """The I/O the operations run on (pymongo's, routed)."""
        return self.engine.callback

    async def create_data_key(
        self,
        kms_provider: str,
        master_key: Optional[Mapping[str, Any]] = None,
        key_alt_names: Optional[Sequence[str]] = None,
        key_material: Optional[bytes] = None,
    ) -> Any:
        """Create a data key, insert it in the key vault, and return its ``_id``."""
        opts = data_key_options(kms_provider, master_key, key_alt_names, key_material)
        return await self.engine.create_data_key(opts)

    async def rewrap_many_data_key(
        self,
        filter: Any,
        provider: Optional[str] = None,
        master_key: Optional[Mapping[str, Any]] = None,
    ) -> Optional[bytes]:
        """Re-encrypt the matching keys; BSON ``{"v": [keys]}``, or None when nothing matched."""
        return await self.engine.rewrap_many_data_key(filter, provider, master_key)

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
        """Encrypt BSON ``{"v": value}``; returns BSON ``{"v": ciphertext}``.

        ``text_opts`` is pymongo 4.16-4.17's name for ``string_opts``; give one or the other.
        """
        opts = encrypt_options(
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
        return await self.engine.encrypt(value, opts)

    async def decrypt(self, value: BufferLike) -> bytes:
        """Decrypt BSON ``{"v": ciphertext}``; returns BSON ``{"v": value}``."""
        return await self.engine.decrypt(value)

    def close(self) -> None:
        """Close the handle (pymongo closes its I/O object itself)."""
        self.engine.close()
