"""Drive a context through its states by calling an I/O object (sync and async).

The I/O contract is the one pymongo already implements for pymongocrypt (``_EncryptionIO``), so
pymongo's own I/O classes plug in unchanged:

========================  =====================================================================
state                     what the state machine does
========================  =====================================================================
NEED_MONGO_COLLINFO       ``collection_info(db, filter)``; feed every document returned
(…_WITH_DB)               (same, on the database libmongocrypt names)
NEED_MONGO_MARKINGS       ``mark_command(db, command)``; feed the reply
NEED_MONGO_KEYS           ``fetch_keys(filter)``; feed every key document
NEED_KMS_CREDENTIALS      ``fetch_kms_credentials(names)``; provide the credentials
NEED_KMS                  ``kms_requests(batch)`` until no request is left (retries included)
READY                     return the finalized result
DONE                      return None
ERROR                     raise the context's error
========================  =====================================================================
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, Optional, Union

import bson

from mongocrypt.engine.binary import BufferLike
from mongocrypt.engine.context import MongoCryptContext, State
from mongocrypt.engine.kms import KmsContext
from mongocrypt.errors import MongoCryptError

__all__ = [
    "AsyncMongoCryptCallback",
    "MongoCryptCallback",
    "run_state_machine",
    "run_state_machine_async",
]

CollectionInfos = Union[BufferLike, Sequence[BufferLike], None]


def _no_credentials(providers: Sequence[str]) -> MongoCryptError:
    return MongoCryptError(
        f"KMS providers {', '.join(providers)} are configured for on-demand credentials, "
        "but this I/O object cannot fetch credentials"
    )


class MongoCryptCallback(abc.ABC):
    """The I/O a context needs, done synchronously (pymongo's ``_EncryptionIO`` is one)."""

    @abc.abstractmethod
    def kms_request(self, kms_context: KmsContext) -> None:
        """Send ``kms_context.message`` to its endpoint and feed the reply until complete."""

    @abc.abstractmethod
    def collection_info(self, database: str, filter: bytes) -> CollectionInfos:
        """listCollections on ``database`` with ``filter``: every result as BSON (or None)."""

    @abc.abstractmethod
    def mark_command(self, database: str, cmd: bytes) -> BufferLike:
        """Run the marking command (mongocryptd, or an embedded analyzer) and return the reply."""

    @abc.abstractmethod
    def fetch_keys(self, filter: bytes) -> Iterable[BufferLike]:
        """Find the key documents matching ``filter`` in the key vault."""

    @abc.abstractmethod
    def insert_data_key(self, data_key: bytes) -> Any:
        """Insert a new key document into the key vault; return its ``_id``."""

    @abc.abstractmethod
    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        """Encode a document to BSON."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the I/O resources."""

    def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        """Service one round of KMS requests; override to run them concurrently."""
        for kms_context in kms_contexts:
            self.kms_request(kms_context)

    def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        """Credentials for the on-demand ``providers`` (name -> settings)."""
        raise _no_credentials(providers)


class AsyncMongoCryptCallback(abc.ABC):
    """The same contract as :class:`MongoCryptCallback`, with coroutines for the I/O."""

    @abc.abstractmethod
    async def kms_request(self, kms_context: KmsContext) -> None: ...

    @abc.abstractmethod
    async def collection_info(self, database: str, filter: bytes) -> CollectionInfos: ...

    @abc.abstractmethod
    async def mark_command(self, database: str, cmd: bytes) -> BufferLike: ...

    @abc.abstractmethod
    def fetch_keys(self, filter: bytes) -> AsyncIterable[BufferLike]:
        """An async generator of the key documents matching ``filter``."""

    @abc.abstractmethod
    async def insert_data_key(self, data_key: bytes) -> Any: ...

    @abc.abstractmethod
    def bson_encode(self, doc: Mapping[str, Any]) -> bytes: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        """Service one round of KMS requests; override to run them concurrently."""
        for kms_context in kms_contexts:
            await self.kms_request(kms_context)

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        """Credentials for the on-demand ``providers`` (name -> settings)."""
        raise _no_credentials(providers)


def _feed_collection_infos(ctx: MongoCryptContext, infos: CollectionInfos) -> None:
    if infos is None:
        pass
    elif isinstance(infos, (bytes, bytearray, memoryview)):
        ctx.add_mongo_operation_result(infos)
    else:
        for info in infos:
            ctx.add_mongo_operation_result(info)
    ctx.complete_mongo_operation()


def _collinfo_database(ctx: MongoCryptContext, state: State) -> str:
    if state == State.NEED_MONGO_COLLINFO_WITH_DB:
        return ctx.mongo_database
    if ctx.database is None:
        raise MongoCryptError("libmongocrypt asked for collection info outside auto encryption")
    return ctx.database


def _marking_database(ctx: MongoCryptContext) -> str:
    if ctx.database is None:
        raise MongoCryptError("libmongocrypt asked for markings outside auto encryption")
    return ctx.database


def run_state_machine(ctx: MongoCryptContext, callback: MongoCryptCallback) -> Optional[bytes]:
    """Drive ``ctx`` to its end; return the result (None when the operation yields nothing).

    :raises MongoCryptError: when libmongocrypt fails the operation; I/O errors propagate as is.
    """
    while True:
        state = ctx.state
        if state in (State.NEED_MONGO_COLLINFO, State.NEED_MONGO_COLLINFO_WITH_DB):
            database = _collinfo_database(ctx, state)
            _feed_collection_infos(ctx, callback.collection_info(database, ctx.mongo_operation()))
        elif state == State.NEED_MONGO_MARKINGS:
            reply = callback.mark_command(_marking_database(ctx), ctx.mongo_operation())
            ctx.add_mongo_operation_result(reply)
            ctx.complete_mongo_operation()
        elif state == State.NEED_MONGO_KEYS:
            for key in callback.fetch_keys(ctx.mongo_operation()):
                ctx.add_mongo_operation_result(key)
            ctx.complete_mongo_operation()
        elif state == State.NEED_KMS_CREDENTIALS:
            credentials = callback.fetch_kms_credentials(ctx.on_demand_providers)
            ctx.provide_kms_providers(bson.encode(credentials))
        elif state == State.NEED_KMS:
            # A request that failed and may be retried comes back in the next batch.
            while batch := ctx.kms_contexts():
                callback.kms_requests(batch)
            ctx.complete_kms()
        elif state == State.READY:
            return ctx.finish()
        elif state == State.DONE:
            return None
        else:
            ctx.raise_error()


async def run_state_machine_async(
    ctx: MongoCryptContext, callback: AsyncMongoCryptCallback
) -> Optional[bytes]:
    """The coroutine twin of :func:`run_state_machine`."""
    while True:
        state = ctx.state
        if state in (State.NEED_MONGO_COLLINFO, State.NEED_MONGO_COLLINFO_WITH_DB):
            database = _collinfo_database(ctx, state)
            infos = await callback.collection_info(database, ctx.mongo_operation())
            _feed_collection_infos(ctx, infos)
        elif state == State.NEED_MONGO_MARKINGS:
            reply = await callback.mark_command(_marking_database(ctx), ctx.mongo_operation())
            ctx.add_mongo_operation_result(reply)
            ctx.complete_mongo_operation()
        elif state == State.NEED_MONGO_KEYS:
            async for key in callback.fetch_keys(ctx.mongo_operation()):
                ctx.add_mongo_operation_result(key)
            ctx.complete_mongo_operation()
        elif state == State.NEED_KMS_CREDENTIALS:
            credentials = await callback.fetch_kms_credentials(ctx.on_demand_providers)
            ctx.provide_kms_providers(bson.encode(credentials))
        elif state == State.NEED_KMS:
            while batch := ctx.kms_contexts():
                await callback.kms_requests(batch)
            ctx.complete_kms()
        elif state == State.READY:
            return ctx.finish()
        elif state == State.DONE:
            return None
        else:
            ctx.raise_error()
