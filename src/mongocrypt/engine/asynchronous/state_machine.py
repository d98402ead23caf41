"""The callback contract and the driver that runs step generators against it.

The contract is the one pymongo already implements for pymongocrypt (``_EncryptionIO``), so
pymongo's own I/O classes plug in unchanged; what each state asks for is in
:mod:`mongocrypt.engine.steps`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any, Optional

from mongocrypt.engine.binary import BufferLike
from mongocrypt.engine.context import MongoCryptContext
from mongocrypt.engine.kms import KmsContext
from mongocrypt.engine.steps import CollectionInfos, Steps, context_steps, no_credentials

__all__ = ["AsyncMongoCryptCallback", "run_state_machine_async", "run_steps_async"]


class AsyncMongoCryptCallback(abc.ABC):
    """The I/O a context needs (pymongo's ``_EncryptionIO`` implements it)."""

    @abc.abstractmethod
    async def kms_request(self, kms_context: KmsContext) -> None:
        """Send ``kms_context.message`` to its endpoint and feed the reply until complete."""

    @abc.abstractmethod
    async def collection_info(self, database: str, filter: bytes) -> CollectionInfos:
        """listCollections on ``database`` with ``filter``: every result as BSON (or None)."""

    @abc.abstractmethod
    async def mark_command(self, database: str, cmd: bytes) -> BufferLike:
        """Run the marking command (mongocryptd, or an embedded analyzer) and return the reply."""

    @abc.abstractmethod
    def fetch_keys(self, filter: bytes) -> AsyncIterable[BufferLike]:
        """The key documents matching ``filter`` in the key vault."""

    @abc.abstractmethod
    async def insert_data_key(self, data_key: bytes) -> Any:
        """Insert a new key document into the key vault; return its ``_id``."""

    @abc.abstractmethod
    def bson_encode(self, doc: Mapping[str, Any]) -> bytes:
        """Encode a document to BSON."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the I/O resources."""

    async def kms_requests(self, kms_contexts: Sequence[KmsContext]) -> None:
        """Service one round of KMS requests; override to run them concurrently."""
        for kms_context in kms_contexts:
            await self.kms_request(kms_context)

    async def fetch_kms_credentials(self, providers: Sequence[str]) -> Mapping[str, Any]:
        """Credentials for the on-demand ``providers`` (name -> settings)."""
        raise no_credentials(providers)


async def run_steps_async(steps: Steps, callback: AsyncMongoCryptCallback) -> Any:
    """Perform each request of ``steps`` on ``callback``; return the operation's result.

    The generator is closed on the way out, so an I/O error releases its context at once.
    """
    answer = None
    try:
        while True:
            try:
                method, args = steps.send(answer)
            except StopIteration as done:
                return done.value
            if method == "fetch_keys":  # an iterable of key documents, read in full
                answer = [key async for key in callback.fetch_keys(*args)]
            elif method == "key_vault_namespace":  # for an error message; pymongo's I/O has none
                answer = getattr(callback, "namespace", None)
            else:
                answer = await getattr(callback, method)(*args)
    finally:
        steps.close()


async def run_state_machine_async(
    ctx: MongoCryptContext, callback: AsyncMongoCryptCallback
) -> Optional[bytes]:
    """Drive ``ctx`` to its end; return the result (None when the operation yields nothing).

    :raises MongoCryptError: when libmongocrypt fails the operation; I/O errors propagate as is.
    """
    result: Optional[bytes] = await run_steps_async(context_steps(ctx), callback)
    return result
