"""The engine's operations without I/O: step generators that the sync and async drivers run.

Each generator yields a :data:`Request` (the callback method to call and its arguments), receives
the callback's answer, and returns the operation's result. :func:`context_steps` drives one
context through its states:

========================  =====================================================================
state                     what is asked of the callback
========================  =====================================================================
NEED_MONGO_COLLINFO       ``collection_info(db, filter)``; every document returned is fed
(…_WITH_DB)               (same, on the database libmongocrypt names)
NEED_MONGO_MARKINGS       ``mark_command(db, command)``; the reply is fed
NEED_MONGO_KEYS           ``fetch_keys(filter)``; every key document is fed (when a key is
                          missing, ``key_vault_namespace()`` names the vault in the error)
NEED_KMS_CREDENTIALS      ``fetch_kms_credentials(names)``; the credentials are provided
NEED_KMS                  ``kms_requests(batch)`` until no request is left (retries included)
READY                     the finalized result is returned
DONE                      None is returned
ERROR                     the context's error is raised
========================  =====================================================================

The whole operations (:func:`data_key_steps`, :func:`rewrap_steps`...) build their context,
run it, and close it whatever happens; the drivers close an abandoned generator at once, so a
failed I/O call releases the context deterministically. Explicit encryption and decryption
begin with :func:`start_encrypt` and :func:`start_decrypt`, which finish in one native call when
the key is cached and otherwise hand back the steps left to run.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Optional, Union

import bson
from bson.binary import STANDARD
from bson.codec_options import CodecOptions

from mongocrypt import _log
from mongocrypt.engine._expression import check_range_expression, redact_expression
from mongocrypt.engine.binary import BufferLike
from mongocrypt.engine.context import MongoCryptContext, State
from mongocrypt.engine.handle import MongoCrypt
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions
from mongocrypt.errors import MongoCryptError

__all__ = [
    "CollectionInfos",
    "Request",
    "Started",
    "Steps",
    "auto_decrypt_steps",
    "auto_encrypt_steps",
    "context_steps",
    "data_key_steps",
    "no_credentials",
    "rewrap_steps",
    "start_decrypt",
    "start_encrypt",
]

#: What ``collection_info`` may return: one document, several, or none.
CollectionInfos = Union[BufferLike, Sequence[BufferLike], None]
#: One I/O request: the callback method to call and its arguments.
Request = tuple[str, tuple[Any, ...]]
#: An operation: yields requests, receives answers, returns the result.
Steps = Generator[Request, Any, Any]

#: libmongocrypt's message when a key it asked for was not in the key vault's reply.
_UNSATISFIED = "not all keys requested were satisfied"
#: Key ids decoded as uuid.UUID, to print and compare.
_UUIDS: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=STANDARD)
#: BSON element types of JavaScript code, without and with scope.
_CODE_TYPES = (0x0D, 0x0F)


def no_credentials(providers: Sequence[str]) -> MongoCryptError:
    """The error of a callback that cannot fetch on-demand credentials."""
    return MongoCryptError(
        f"KMS providers {', '.join(providers)} are configured for on-demand credentials, "
        "but this I/O object cannot fetch credentials"
    )


def _feed_all(ctx: MongoCryptContext, documents: CollectionInfos) -> None:
    """Feed every reply document (a single one, a sequence, or None), then finish the state."""
    if isinstance(documents, (bytes, bytearray, memoryview)):
        ctx.add_mongo_operation_result(documents)
    elif documents is not None:
        for document in documents:
            ctx.add_mongo_operation_result(document)
    ctx.complete_mongo_operation()


def _requested(filter: bytes) -> tuple[list[Any], list[str]]:
    """The key ids (as UUIDs) and alternate names a key filter of libmongocrypt asks for.

    libmongocrypt's filter is ``{"$or": [{"_id": {"$in": ids}}, {"keyAltNames": {"$in": names}}]}``.
    """
    wanted: dict[str, list[Any]] = {"_id": [], "keyAltNames": []}
    for clause in bson.decode(filter, codec_options=_UUIDS).get("$or", []):
        for name, condition in clause.items():
            if name in wanted and isinstance(condition, dict):
                wanted[name].extend(condition.get("$in", []))
    return wanted["_id"], wanted["keyAltNames"]


def _missing_keys(filter: bytes, keys: CollectionInfos, namespace: Optional[str]) -> str:
    """Which of the keys ``filter`` asked for are not among ``keys``, and where they were sought."""
    ids, names = _requested(filter)
    if isinstance(keys, (bytes, bytearray, memoryview)):
        keys = [keys]
    found_ids, found_names = set(), set()
    for key in keys or ():
        document = bson.decode(bytes(key), codec_options=_UUIDS)
        found_ids.add(document.get("_id"))
        found_names.update(document.get("keyAltNames", ()))
    missing = [f"id {key_id}" for key_id in ids if key_id not in found_ids]
    missing += [f"alternate name {n!r}" for n in names if n not in found_names]
    where = f"key vault {namespace}" if namespace else "the key vault"
    return f"Missing from {where}: {', '.join(missing) or 'a requested key'}."


def _auto_database(ctx: MongoCryptContext, need: str) -> str:
    if ctx.database is None:
        raise MongoCryptError(f"libmongocrypt asked for {need} outside auto encryption")
    return ctx.database


def context_steps(ctx: MongoCryptContext) -> Generator[Request, Any, Optional[bytes]]:
    """Drive ``ctx`` to its end: the result, or None when the operation yields nothing."""
    while True:
        state = ctx.state
        if state == State.NEED_MONGO_COLLINFO_WITH_DB:
            _feed_all(ctx, (yield "collection_info", (ctx.mongo_database, ctx.mongo_operation())))
        elif state == State.NEED_MONGO_COLLINFO:
            database = _auto_database(ctx, "collection info")
            _feed_all(ctx, (yield "collection_info", (database, ctx.mongo_operation())))
        elif state == State.NEED_MONGO_MARKINGS:
            database = _auto_database(ctx, "markings")
            command = ctx.mongo_operation()
            _log.marking(database, command)
            _feed_all(ctx, (yield "mark_command", (database, command)))
        elif state == State.NEED_MONGO_KEYS:
            filter = ctx.mongo_operation()
            if _log.ENGINE.isEnabledFor(logging.DEBUG):
                _log.key_fetch(*_requested(filter))
            keys = yield "fetch_keys", (filter,)
            try:
                _feed_all(ctx, keys)
            except MongoCryptError as exc:
                if _UNSATISFIED not in str(exc):
                    raise
                namespace = yield "key_vault_namespace", ()
                raise MongoCryptError(
                    f"{exc} {_missing_keys(filter, keys, namespace)}", exc.code
                ) from exc
        elif state == State.NEED_KMS_CREDENTIALS:
            credentials = yield "fetch_kms_credentials", (ctx.on_demand_providers,)
            ctx.provide_kms_providers(bson.encode(credentials))
        elif state == State.NEED_KMS:
            # A request that failed and may be retried comes back in the next batch.
            while batch := ctx.kms_contexts():
                if _log.ENGINE.isEnabledFor(logging.DEBUG):
                    for kms in batch:
                        _log.kms_request(kms.kms_provider, kms.endpoint, kms.attempt)
                yield "kms_requests", (batch,)
            ctx.complete_kms()
        elif state == State.READY:
            return ctx.finish()
        elif state == State.DONE:
            return None
        else:
            ctx.raise_error()


def _result_of(ctx: MongoCryptContext, operation: str) -> Generator[Request, Any, bytes]:
    """Run ``ctx``, close it, and insist on a result."""
    with ctx:
        result = yield from context_steps(ctx)
    if result is None:
        raise MongoCryptError(f"libmongocrypt finished {operation} without a result")
    return result


def data_key_steps(mongocrypt: MongoCrypt, opts: DataKeyOptions) -> Steps:
    """Create a data key and insert it in the key vault; returns the key's ``_id``."""
    key = yield from _result_of(mongocrypt.data_key_context(opts), "data key creation")
    return (yield "insert_data_key", (key,))


def rewrap_steps(
    mongocrypt: MongoCrypt,
    filter: Union[BufferLike, Mapping[str, Any]],
    provider: Optional[str],
    master_key: Optional[Mapping[str, Any]],
) -> Steps:
    """Re-encrypt the matching keys: BSON ``{"v": [keys]}``, or None when nothing matched."""
    encoded = filter if isinstance(filter, (bytes, bytearray, memoryview)) else bson.encode(filter)
    with mongocrypt.rewrap_many_data_key_context(encoded, provider, master_key) as ctx:
        return (yield from context_steps(ctx))


#: An explicit operation begun: its result when one native call finished it, else the steps left.
Started = tuple[Optional[bytes], Optional[Steps]]


def start_encrypt(
    mongocrypt: MongoCrypt, value: BufferLike, opts: ExplicitEncryptOptions
) -> Started:
    """Begin encrypting BSON ``{"v": value}`` (the result is BSON ``{"v": ciphertext}``).

    When ``opts`` allow it and the key is cached, one native call does it all, with no I/O and
    no generator to drive: ``(result, None)``. Otherwise ``(None, steps)``.
    """
    _refuse_code_with_nul(value)
    if opts.is_expression:
        return None, _expression_steps(mongocrypt, value, opts)
    if opts.fast and type(value) is bytes and value:
        result, ctx = mongocrypt.explicit_fast(value, opts)
        if ctx is None:
            return result, None
    else:
        ctx = mongocrypt.explicit_encryption_context(value, opts)
    return None, _result_of(ctx, "encryption")


def _expression_steps(
    mongocrypt: MongoCrypt, value: BufferLike, opts: ExplicitEncryptOptions
) -> Steps:
    check_range_expression(bytes(value))
    try:
        ctx = mongocrypt.explicit_encryption_context(value, opts)
        return (yield from _result_of(ctx, "encryption"))
    except MongoCryptError as exc:
        if type(exc) is not MongoCryptError:  # not libmongocrypt's refusal: no quote
            raise
        raise redact_expression(exc) from None  # the original quotes the bounds


def start_decrypt(mongocrypt: MongoCrypt, value: BufferLike) -> Started:
    """Begin decrypting BSON ``{"v": ciphertext}`` (the result is BSON ``{"v": value}``), as
    :func:`start_encrypt` does."""
    if type(value) is bytes and value:
        result, ctx = mongocrypt.explicit_fast(value)
        if ctx is None:
            return result, None
    else:
        ctx = mongocrypt.explicit_decryption_context(value)
    return None, _result_of(ctx, "decryption")


def auto_encrypt_steps(mongocrypt: MongoCrypt, database: str, cmd: BufferLike) -> Steps:
    """The command (BSON) to send instead of ``cmd``."""
    ctx = mongocrypt.encryption_context(database, cmd)
    return (yield from _result_of(ctx, "command encryption"))


def auto_decrypt_steps(mongocrypt: MongoCrypt, response: BufferLike) -> Steps:
    """The reply (BSON) with every encrypted value decrypted."""
    ctx = mongocrypt.decryption_context(response)
    return (yield from _result_of(ctx, "reply decryption"))


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
