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
from collections.abc import AsyncIterable, Generator, Iterable, Mapping, Sequence
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


def _feed_all(ctx: MongoCryptContext, documents: CollectionInfos) -> None:
    """Feed every reply document (a single one, a sequence, or None), then finish the state."""
    if isinstance(documents, (bytes, bytearray, memoryview)):
        ctx.add_mongo_operation_result(documents)
    elif documents is not None:
        for document in documents:
            ctx.add_mongo_operation_result(document)
    ctx.complete_mongo_operation()


def _auto_database(ctx: MongoCryptContext, need: str) -> str:
    if ctx.database is None:
        raise MongoCryptError(f"libmongocrypt asked for {need} outside auto encryption")
    return ctx.database


#: One I/O request of the state machine: the callback method to call and its arguments.
Request = tuple[str, tuple[Any, ...]]


def _steps(ctx: MongoCryptContext) -> Generator[Request, Any, Optional[bytes]]:
    """The state machine without I/O: yields what to ask the callback, receives its answer.

    The sync and async drivers below only perform the calls, so both follow one logic.
    """
    while True:
        state = ctx.state
        if state == State.NEED_MONGO_COLLINFO_WITH_DB:
            _feed_all(ctx, (yield "collection_info", (ctx.mongo_database, ctx.mongo_operation())))
        elif state == State.NEED_MONGO_COLLINFO:
            database = _auto_database(ctx, "collection info")
            _feed_all(ctx, (yield "collection_info", (database, ctx.mongo_operation())))
        elif state == State.NEED_MONGO_MARKINGS:
            database = _auto_database(ctx, "markings")
            _feed_all(ctx, (yield "mark_command", (database, ctx.mongo_operation())))
        elif state == State.NEED_MONGO_KEYS:
            _feed_all(ctx, (yield "fetch_keys", (ctx.mongo_operation(),)))
        elif state == State.NEED_KMS_CREDENTIALS:
            credentials = yield "fetch_kms_credentials", (ctx.on_demand_providers,)
            ctx.provide_kms_providers(bson.encode(credentials))
        elif state == State.NEED_KMS:
            # A request that failed and may be retried comes back in the next batch.
            while batch := ctx.kms_contexts():
                yield "kms_requests", (batch,)
            ctx.complete_kms()
        elif state == State.READY:
            return ctx.finish()
        elif state == State.DONE:
            return None
        else:
            ctx.raise_error()


def run_state_machine(ctx: MongoCryptContext, callback: MongoCryptCallback) -> Optional[bytes]:
    """Drive ``ctx`` to its end; return the result (None when the operation yields nothing).

    :raises MongoCryptError: when libmongocrypt fails the operation; I/O errors propagate as is.
    """
    steps = _steps(ctx)
    answer = None
    while True:
        try:
            method, args = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        answer = getattr(callback, method)(*args)
        if method == "fetch_keys":
            answer = list(answer)


async def run_state_machine_async(
    ctx: MongoCryptContext, callback: AsyncMongoCryptCallback
) -> Optional[bytes]:
    """The coroutine twin of :func:`run_state_machine`."""
    steps = _steps(ctx)
    answer = None
    while True:
        try:
            method, args = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if method == "fetch_keys":  # an async generator, not a coroutine
            answer = [key async for key in callback.fetch_keys(*args)]
        else:
            answer = await getattr(callback, method)(*args)
