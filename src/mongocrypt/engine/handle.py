"""The libmongocrypt handle (``mongocrypt_t``): configured once, shared by every operation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional

from mongocrypt.engine.binary import BinaryView, BufferLike
from mongocrypt.engine.context import MongoCryptContext
from mongocrypt.engine.native import crypto_hooks_wanted, crypto_in_use, ffi, lib
from mongocrypt.engine.options import DataKeyOptions, ExplicitEncryptOptions, MongoCryptOptions
from mongocrypt.engine.status import raise_status
from mongocrypt.errors import MongoCryptClosedError, MongoCryptError

__all__ = ["MongoCrypt"]

#: Bytes an explicit ciphertext may add to its value, beyond which the fast path hands the result
#: back in its context (a Deterministic or Random 20 B value grows by ~100, an Indexed one ~350).
_CIPHERTEXT_OVERHEAD = 512
#: The same for a Range ciphertext, which carries a token set per edge (an int over 0..1e6 with
#: sparsity 1 grows by ~3 KiB).
_RANGE_CIPHERTEXT_OVERHEAD = 8192

#: Explicit operations the fast path does without releasing the GIL (csrc/gil.c): decryption and
#: Deterministic or Random encryption of values under this size take a few microseconds, less than
#: handing the GIL to another thread and back costs. Indexed and Range encryption, and larger
#: values, release it so that other threads run meanwhile (docs/performance.md has the figures).
_SHORT_VALUE_BYTES = 1024
_SHORT_ALGORITHMS = frozenset(
    {"AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic", "AEAD_AES_256_CBC_HMAC_SHA_512-Random"}
)

#: ffi.new without zeroing, for the fast path's result buffer: the C side writes every byte that is
#: read back (io.state always, io.len and the result when done).
_new_unzeroed = ffi.new_allocator(should_clear_after_alloc=False)

#: Algorithm and query type names as C strings, encoded once each (a handful of distinct values).
_C_STRINGS: dict[str, bytes] = {}


def _c_string(name: str) -> bytes:
    encoded = _C_STRINGS.get(name)
    if encoded is None:
        encoded = _C_STRINGS[name] = name.encode()
    return encoded


#: How the fast path runs one kind of operation: the native arguments before the value, the
#: room a result may need beyond the value's size, and whether a short value keeps the GIL.
_Plan = tuple[tuple[object, ...], int, bool]

#: The plan of every decryption.
_DECRYPT_PLAN: _Plan = ((1, ffi.NULL, 0, ffi.NULL, 0, 0, ffi.NULL, ffi.NULL, 0), 0, True)


def _encrypt_plan(opts: ExplicitEncryptOptions) -> _Plan:
    """The plan of an encryption as ``opts`` say: built once per options object (they are
    frozen) and kept on it, as plain values (no query type and no Range options are passed as
    empty strings)."""
    plan: Optional[_Plan] = opts.__dict__.get("_fast_plan")
    if plan is None:
        assert opts.key_id is not None  # opts.fast
        args = (
            0,
            opts.key_id,
            len(opts.key_id),
            _c_string(opts.algorithm),
            opts.contention_factor is not None,
            opts.contention_factor or 0,
            b"" if opts.query_type is None else _c_string(opts.query_type),
            b"" if opts.range_opts is None else bytes(opts.range_opts),
            0 if opts.range_opts is None else len(opts.range_opts),
        )
        room = _CIPHERTEXT_OVERHEAD if opts.range_opts is None else _RANGE_CIPHERTEXT_OVERHEAD
        plan = (args, room, opts.algorithm in _SHORT_ALGORITHMS)
        opts.__dict__["_fast_plan"] = plan  # frozen: not through setattr
    return plan


#: One DEBUG line per handle: which cryptography it uses.
LOGGER = logging.getLogger("mongocrypt.engine")


class MongoCrypt:
    """A configured libmongocrypt handle and the factory of its operation contexts.

    Safe to share between threads: libmongocrypt guards its key and schema caches; each context
    belongs to one caller. Close it (or use it as a context manager) to release it at once.

    The hot cryptographic primitives run in mongocrypt's own hooks on OpenSSL
    (bindings/csrc/hooks.c) unless ``MONGOCRYPT_CRYPTO_HOOKS=0`` is in the environment when the
    handle is created; :attr:`crypto_hooks` says which.

    :param options: the handle's configuration.
    :raises MongoCryptError: if libmongocrypt rejects the configuration (its message verbatim),
        or crypt_shared is required and did not load.
    :raises ValueError: if ``MONGOCRYPT_CRYPTO_HOOKS`` is neither ``0`` nor ``1``.
    """

    __slots__ = ("_crypt", "crypto_hooks", "options")

    def __init__(self, options: MongoCryptOptions) -> None:
        if not isinstance(options, MongoCryptOptions):
            raise TypeError(f"options must be MongoCryptOptions, not {type(options).__name__}")
        self.options = options
        #: Whether this handle uses mongocrypt's crypto hooks (else libmongocrypt's own crypto).
        self.crypto_hooks = crypto_hooks_wanted()
        self._crypt: Any = ffi.gc(lib.mongocrypt_py_new(), lib.mongocrypt_py_destroy)
        try:
            self._configure(options)
        except BaseException:
            self.close()
            raise

    def _check(self, ok: bool) -> None:
        if not ok:
            raise_status(lib.mongocrypt_status, self._crypt)

    def _set_binary(self, setter: Any, data: BufferLike) -> None:
        with BinaryView(data) as binary:
            self._check(setter(self._crypt, binary))

    def _configure(self, opts: MongoCryptOptions) -> None:
        crypt = self._crypt
        self._check(lib.mongocrypt_py_setopt_log_handler(crypt))
        if self.crypto_hooks:
            self._check(lib.mongocrypt_py_setopt_crypto_hooks(crypt))
        LOGGER.debug("libmongocrypt handle: %s", crypto_in_use(self.crypto_hooks))
        self._set_binary(lib.mongocrypt_setopt_kms_providers, opts.kms_providers_bson)
        if opts.schema_map is not None:
            self._set_binary(lib.mongocrypt_setopt_schema_map, opts.schema_map)
        if opts.encrypted_fields_map is not None:
            self._set_binary(
                lib.mongocrypt_setopt_encrypted_field_config_map, opts.encrypted_fields_map
            )
        if opts.bypass_query_analysis:
            lib.mongocrypt_setopt_bypass_query_analysis(crypt)
        for path in opts.crypt_shared_lib_search_paths:
            lib.mongocrypt_setopt_append_crypt_shared_lib_search_path(crypt, path.encode())
        if opts.crypt_shared_lib_path is not None:
            lib.mongocrypt_setopt_set_crypt_shared_lib_path_override(
                crypt, opts.crypt_shared_lib_path.encode()
            )
        if opts.on_demand_providers:
            lib.mongocrypt_setopt_use_need_kms_credentials_state(crypt)
        lib.mongocrypt_setopt_use_need_mongo_collinfo_with_db_state(crypt)
        self._check(lib.mongocrypt_setopt_use_range_v2(crypt))
        self._check(lib.mongocrypt_setopt_retry_kms(crypt, True))
        if opts.key_expiration_ms is not None:
            self._check(lib.mongocrypt_setopt_key_expiration(crypt, opts.key_expiration_ms))
        if opts.enable_multiple_collinfo:
            self._check(lib.mongocrypt_setopt_enable_multiple_collinfo(crypt))
        self._check(lib.mongocrypt_init(crypt))
        if opts.crypt_shared_lib_required and self.crypt_shared_lib_version is None:
            raise MongoCryptError(
                "crypt_shared_lib_required is set but the crypt_shared library was not loaded "
                f"(path override: {opts.crypt_shared_lib_path!r}, "
                f"search paths: {list(opts.crypt_shared_lib_search_paths)!r})"
            )

    @property
    def _live(self) -> Any:
        if self._crypt is None:
            raise MongoCryptClosedError("this MongoCrypt handle is closed")
        return self._crypt

    @property
    def crypt_shared_lib_version(self) -> Optional[str]:
        """The loaded crypt_shared library's version string, or None when none is loaded."""
        raw = lib.mongocrypt_crypt_shared_lib_version_string(self._live, ffi.NULL)
        return None if raw == ffi.NULL else str(ffi.string(raw).decode())

    def close(self) -> None:
        """Drop the handle (idempotent). Contexts still open keep the native handle alive
        until they close, so closing never frees memory a context uses."""
        self._crypt = None

    def __enter__(self) -> MongoCrypt:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _context(self, database: Optional[str] = None) -> MongoCryptContext:
        return MongoCryptContext(self._live, database, self.options.on_demand_providers)

    def _initialised(self, ctx: MongoCryptContext, init: Any, *args: Any) -> MongoCryptContext:
        """Run ``init`` (configuring and initialising ``ctx``); close ``ctx`` if it fails."""
        try:
            init(*args)
        except BaseException:
            ctx.close()
            raise
        return ctx

    # -- one factory per operation ----------------------------------------------------------

    def encryption_context(self, database: str, command: BufferLike) -> MongoCryptContext:
        """Automatic encryption of ``command`` (BSON) run on ``database``."""
        if not isinstance(database, str):
            raise TypeError(f"database must be a str, not {type(database).__name__}")
        ctx = self._context(database)
        return self._initialised(ctx, ctx.init_encrypt, database, command)

    def decryption_context(self, document: BufferLike) -> MongoCryptContext:
        """Automatic decryption of a server reply (BSON)."""
        ctx = self._context()
        return self._initialised(ctx, ctx.init_decrypt, document)

    def explicit_encryption_context(
        self, value: BufferLike, opts: ExplicitEncryptOptions
    ) -> MongoCryptContext:
        """Explicit encryption of ``{"v": value}`` (BSON) as ``opts`` say."""
        ctx = self._context()

        def init() -> None:
            ctx.apply_explicit_options(opts)
            ctx.init_explicit_encrypt(value, opts.is_expression)

        return self._initialised(ctx, init)

    def explicit_decryption_context(self, value: BufferLike) -> MongoCryptContext:
        """Explicit decryption of ``{"v": ciphertext}`` (BSON)."""
        ctx = self._context()
        return self._initialised(ctx, ctx.init_explicit_decrypt, value)

    def explicit_fast(
        self, value: bytes, opts: Optional[ExplicitEncryptOptions] = None
    ) -> tuple[Optional[bytes], Optional[MongoCryptContext]]:
        """Explicit encryption as ``opts`` say (``opts.fast`` must be true), or decryption without
        ``opts``, in one native call: ``(result, None)`` when the key was cached, else
        ``(None, context)`` to drive.

        :raises MongoCryptError: as libmongocrypt reports it.
        """
        # One allocation with room for the result, so the C side can copy it out and destroy the
        # context itself: a decrypted {"v": x} is shorter than its ciphertext; a ciphertext adds
        # at most a few hundred bytes, a Range one a few KiB (a result that does not fit comes
        # back in the context).
        args, room, may_keep_gil = _DECRYPT_PLAN if opts is None else _encrypt_plan(opts)
        size = len(value)
        capacity = size + room
        io = _new_unzeroed("mongocrypt_py_explicit_t *", {"result": capacity})
        # A short operation keeps the GIL: releasing it costs more than it gives (csrc/gil.c).
        if may_keep_gil and size < _SHORT_VALUE_BYTES:
            call = lib.mongocrypt_py_explicit_gil_held
        else:
            call = lib.mongocrypt_py_explicit
        native = call(self._live, *args, value, size, io, capacity)
        if native == ffi.NULL:
            if io.state == lib.MONGOCRYPT_CTX_DONE:  # copied into io.result; no context left
                return ffi.unpack(io.result, io.len), None
            raise MemoryError("libmongocrypt could not allocate a context")
        # Owned like every other context: the ffi.gc safety net at once, released right away.
        owned = ffi.gc(native, lib.mongocrypt_py_ctx_destroy)
        if io.state == lib.MONGOCRYPT_CTX_DONE:
            try:
                return ffi.unpack(ffi.cast("char *", io.ctx_result), io.len), None
            finally:
                ffi.release(owned)
        ctx = MongoCryptContext(self._crypt, None, self.options.on_demand_providers, owned)
        if io.state == lib.MONGOCRYPT_CTX_ERROR:
            try:
                ctx.raise_error()
            finally:
                ctx.close()
        return None, ctx

    def data_key_context(self, opts: DataKeyOptions) -> MongoCryptContext:
        """Creation of one data key; the result is the key document to insert."""
        ctx = self._context()

        def init() -> None:
            ctx.apply_data_key_options(opts)
            ctx.init_data_key()

        return self._initialised(ctx, init)

    def rewrap_many_data_key_context(
        self,
        filter: BufferLike,
        provider: Optional[str] = None,
        master_key: Optional[Mapping[str, Any]] = None,
    ) -> MongoCryptContext:
        """Re-encryption of the keys matching ``filter`` (BSON), under ``provider``'s
        ``master_key`` or, when no provider is given, each key's current one."""
        if master_key is not None and provider is None:
            raise ValueError("a provider must be given when master_key is given")
        ctx = self._context()

        def init() -> None:
            if provider is not None:
                ctx.set_key_encryption_key(provider, master_key)
            ctx.init_rewrap_many_data_key(filter)

        return self._initialised(ctx, init)
