"""One operation in progress inside libmongocrypt: a ``mongocrypt_ctx_t`` and its state."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Optional

import bson

from mongocrypt.engine.binary import BinaryView, BufferLike, new_out, read_out
from mongocrypt.engine.kms import KmsContext
from mongocrypt.engine.native import ffi, has_string_algorithm, lib, libmongocrypt_version
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions
from mongocrypt.engine.status import raise_status
from mongocrypt.errors import MongoCryptClosedError, MongoCryptError

__all__ = ["MongoCryptContext", "State"]


class State(enum.IntEnum):
    """What a context waits for next (``mongocrypt_ctx_state_t``)."""

    ERROR = lib.MONGOCRYPT_CTX_ERROR
    NEED_MONGO_COLLINFO = lib.MONGOCRYPT_CTX_NEED_MONGO_COLLINFO
    NEED_MONGO_COLLINFO_WITH_DB = lib.MONGOCRYPT_CTX_NEED_MONGO_COLLINFO_WITH_DB
    NEED_MONGO_MARKINGS = lib.MONGOCRYPT_CTX_NEED_MONGO_MARKINGS
    NEED_MONGO_KEYS = lib.MONGOCRYPT_CTX_NEED_MONGO_KEYS
    NEED_KMS = lib.MONGOCRYPT_CTX_NEED_KMS
    NEED_KMS_CREDENTIALS = lib.MONGOCRYPT_CTX_NEED_KMS_CREDENTIALS
    READY = lib.MONGOCRYPT_CTX_READY
    DONE = lib.MONGOCRYPT_CTX_DONE


class MongoCryptContext:
    """A context created by one of :class:`~mongocrypt.engine.handle.MongoCrypt`'s
    ``*_context`` methods; drive it with :func:`~mongocrypt.engine.state_machine.run_state_machine`.

    :param crypt: the owning handle's ``mongocrypt_t`` (kept alive while this context lives).
    :param database: the database an auto-encrypted command runs on, if any.
    :param on_demand_providers: KMS providers whose credentials are fetched when asked for.
    :param ctx: a native context to adopt (made by a one-call fast path, already wrapped in
        ``ffi.gc``) instead of a new one.
    """

    __slots__ = ("_crypt", "_ctx", "_kms_attempts", "database", "on_demand_providers")

    def __init__(
        self,
        crypt: Any,
        database: Optional[str] = None,
        on_demand_providers: tuple[str, ...] = (),
        ctx: Any = None,
    ) -> None:
        self._crypt = crypt
        if ctx is None:
            ctx = ffi.gc(lib.mongocrypt_py_ctx_new(crypt), lib.mongocrypt_py_ctx_destroy)
        self._ctx = ctx  # adopted contexts come already wrapped in ffi.gc
        self.database = database
        self.on_demand_providers = on_demand_providers
        self._kms_attempts: dict[int, int] = {}  # KMS request (by address) -> times handed out

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the native context now (idempotent)."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ffi.release(ctx)

    def __enter__(self) -> MongoCryptContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._ctx is None

    def check_open(self) -> None:
        """:raises MongoCryptClosedError: if the context was closed."""
        if self._ctx is None:
            raise MongoCryptClosedError("this encryption context is closed")

    @property
    def _live(self) -> Any:
        self.check_open()
        return self._ctx

    def _check(self, ok: bool) -> None:
        if not ok:
            raise_status(lib.mongocrypt_ctx_status, self._ctx)

    def raise_error(self) -> None:
        """Raise the error that put this context in the ``ERROR`` state."""
        raise_status(lib.mongocrypt_ctx_status, self._live)

    # -- options (before init) --------------------------------------------------------------

    def _set_binary(self, setter: Any, data: BufferLike) -> None:
        with BinaryView(data) as binary:
            self._check(setter(self._ctx, binary))

    def _set_string(self, setter: Any, value: str) -> None:
        self._check(setter(self._ctx, value.encode(), -1))

    def apply_explicit_options(self, opts: ExplicitEncryptOptions) -> None:
        """Set every option of an explicit encryption."""
        if opts.string_opts is not None and not has_string_algorithm:
            raise MongoCryptError(
                "string_opts need the String (text) algorithms, which the linked libmongocrypt "
                f"{libmongocrypt_version()} lacks; build mongocrypt against a newer one"
            )
        if opts.key_id is not None:
            self._set_binary(lib.mongocrypt_ctx_setopt_key_id, opts.key_id)
        if opts.key_alt_name is not None:
            self._set_binary(
                lib.mongocrypt_ctx_setopt_key_alt_name,
                bson.encode({"keyAltName": opts.key_alt_name}),
            )
        self._set_string(lib.mongocrypt_ctx_setopt_algorithm, opts.algorithm)
        if opts.query_type is not None:
            self._set_string(lib.mongocrypt_ctx_setopt_query_type, opts.query_type)
        if opts.contention_factor is not None:
            self._check(
                lib.mongocrypt_ctx_setopt_contention_factor(self._ctx, opts.contention_factor)
            )
        if opts.range_opts is not None:
            self._set_binary(lib.mongocrypt_ctx_setopt_algorithm_range, opts.range_opts)
        if opts.string_opts is not None:
            self._set_binary(lib.mongocrypt_ctx_setopt_algorithm_text, opts.string_opts)

    def apply_data_key_options(self, opts: DataKeyOptions) -> None:
        """Set the key encryption key, alternate names and key material of a new data key."""
        self.set_key_encryption_key(opts.kms_provider, opts.master_key)
        for name in opts.key_alt_names:
            self._set_binary(
                lib.mongocrypt_ctx_setopt_key_alt_name, bson.encode({"keyAltName": name})
            )
        if opts.key_material is not None:
            self._set_binary(
                lib.mongocrypt_ctx_setopt_key_material,
                bson.encode({"keyMaterial": bson.Binary(bytes(opts.key_material))}),
            )

    def set_key_encryption_key(
        self, provider: str, master_key: Optional[Mapping[str, Any]]
    ) -> None:
        """Set the key encryption key a rewrap moves keys to."""
        document = {"provider": provider, **(master_key or {})}
        self._set_binary(lib.mongocrypt_ctx_setopt_key_encryption_key, bson.encode(document))

    # -- initialisers -----------------------------------------------------------------------

    def init_encrypt(self, database: str, command: BufferLike) -> None:
        with BinaryView(command) as binary:
            self._check(lib.mongocrypt_ctx_encrypt_init(self._ctx, database.encode(), -1, binary))

    def init_decrypt(self, document: BufferLike) -> None:
        self._set_binary(lib.mongocrypt_ctx_decrypt_init, document)

    def init_explicit_encrypt(self, value: BufferLike, is_expression: bool) -> None:
        init = (
            lib.mongocrypt_ctx_explicit_encrypt_expression_init
            if is_expression
            else lib.mongocrypt_ctx_explicit_encrypt_init
        )
        self._set_binary(init, value)

    def init_explicit_decrypt(self, value: BufferLike) -> None:
        self._set_binary(lib.mongocrypt_ctx_explicit_decrypt_init, value)

    def init_data_key(self) -> None:
        self._check(lib.mongocrypt_ctx_datakey_init(self._ctx))

    def init_rewrap_many_data_key(self, filter: BufferLike) -> None:
        self._set_binary(lib.mongocrypt_ctx_rewrap_many_datakey_init, filter)

    # -- the state machine ------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state."""
        return State(lib.mongocrypt_ctx_state(self._live))

    @property
    def mongo_database(self) -> str:
        """The database to run listCollections on (``NEED_MONGO_COLLINFO_WITH_DB``)."""
        raw = lib.mongocrypt_ctx_mongo_db(self._live)
        if raw == ffi.NULL:
            self.raise_error()
        return str(ffi.string(raw).decode())

    def mongo_operation(self) -> bytes:
        """The filter or command for the current ``NEED_MONGO_*`` state, as BSON."""
        out = new_out()
        self._check(lib.mongocrypt_ctx_mongo_op(self._live, out))
        return read_out(out)

    def add_mongo_operation_result(self, document: BufferLike) -> None:
        """Feed one reply document (a collection info, a marking reply, a key)."""
        with BinaryView(document) as binary:
            self._check(lib.mongocrypt_ctx_mongo_feed(self._live, binary))

    def complete_mongo_operation(self) -> None:
        """Say that every reply document has been fed."""
        self._check(lib.mongocrypt_ctx_mongo_done(self._live))

    def provide_kms_providers(self, providers: BufferLike) -> None:
        """Give the credentials asked for in ``NEED_KMS_CREDENTIALS`` (BSON)."""
        with BinaryView(providers) as binary:
            self._check(lib.mongocrypt_ctx_provide_kms_providers(self._live, binary))

    def kms_contexts(self) -> list[KmsContext]:
        """The KMS requests waiting now, collected before any is serviced (so they may be
        serviced concurrently). A request whose attempt failed but may be retried is waiting
        again afterwards; call until the list is empty, then :meth:`complete_kms`."""
        ctx = self._live
        requests: list[KmsContext] = []
        while True:
            kms = lib.mongocrypt_ctx_next_kms_ctx(ctx)
            if kms == ffi.NULL:
                return requests
            key = int(ffi.cast("uintptr_t", kms))
            attempt = self._kms_attempts[key] = self._kms_attempts.get(key, 0) + 1
            requests.append(KmsContext(kms, self, attempt))

    def complete_kms(self) -> None:
        """Say that every KMS request is done."""
        self._check(lib.mongocrypt_ctx_kms_done(self._live))

    def finish(self) -> bytes:
        """The result in the ``READY`` state, copied out of the context."""
        out = new_out()
        self._check(lib.mongocrypt_ctx_finalize(self._live, out))
        return read_out(out)
