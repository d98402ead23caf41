/* Compiled into the extension after mongocrypt.h. build_ffi.py defines MONGOCRYPT_PY_HAS_* from
 * the header it builds against, so one binding serves every supported libmongocrypt: a function the
 * library lacks gets a stub that fails, and Python checks the flag before ever calling it. */

#if !MONGOCRYPT_PY_HAS_ALGORITHM_TEXT
static bool mongocrypt_ctx_setopt_algorithm_text(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *opts) {
    (void)ctx;
    (void)opts;
    return false;
}
#endif

#if !MONGOCRYPT_PY_HAS_FEED_WITH_RETRY
/* Older libraries cannot ask for an in-place retry; feeding is all they do. */
static bool mongocrypt_kms_ctx_feed_with_retry(mongocrypt_kms_ctx_t *kms, mongocrypt_binary_t *bytes, bool *should_retry) {
    *should_retry = false;
    return mongocrypt_kms_ctx_feed(kms, bytes);
}
#endif

static const char *mongocrypt_py_build_version(void) {
    return MONGOCRYPT_PY_BUILD_VERSION;
}

/* Live-object counters, so tests can prove every handle and context is released on every path.
 * The engine creates and destroys through these wrappers; atomics keep them exact across threads. */
static long mongocrypt_py_live_handles_count = 0;
static long mongocrypt_py_live_contexts_count = 0;

static mongocrypt_t *mongocrypt_py_new(void) {
    __atomic_add_fetch(&mongocrypt_py_live_handles_count, 1, __ATOMIC_RELAXED);
    return mongocrypt_new();
}

static void mongocrypt_py_destroy(mongocrypt_t *crypt) {
    __atomic_sub_fetch(&mongocrypt_py_live_handles_count, 1, __ATOMIC_RELAXED);
    mongocrypt_destroy(crypt);
}

static mongocrypt_ctx_t *mongocrypt_py_ctx_new(mongocrypt_t *crypt) {
    __atomic_add_fetch(&mongocrypt_py_live_contexts_count, 1, __ATOMIC_RELAXED);
    return mongocrypt_ctx_new(crypt);
}

static void mongocrypt_py_ctx_destroy(mongocrypt_ctx_t *ctx) {
    __atomic_sub_fetch(&mongocrypt_py_live_contexts_count, 1, __ATOMIC_RELAXED);
    mongocrypt_ctx_destroy(ctx);
}

static long mongocrypt_py_live_handles(void) {
    return __atomic_load_n(&mongocrypt_py_live_handles_count, __ATOMIC_RELAXED);
}

static long mongocrypt_py_live_contexts(void) {
    return __atomic_load_n(&mongocrypt_py_live_contexts_count, __ATOMIC_RELAXED);
}

/* The common explicit operations in one native call (and one GIL release): create the context,
 * set it up, initialise it and, when it is READY at once (its key is cached), finalise it into
 * *out and report MONGOCRYPT_CTX_DONE. Any other state is left for the Python state machine, which
 * adopts the returned context; on MONGOCRYPT_CTX_ERROR the context holds the status. Encryption
 * takes a 16-byte key id, an algorithm name, and optionally a contention factor and a query type
 * (NULL: none); decryption takes none of them. NULL means no memory. */
static mongocrypt_ctx_t *mongocrypt_py_explicit(mongocrypt_t *crypt, int decrypt,
                                                const char *key_id, uint32_t key_id_len,
                                                const char *algorithm, int has_contention,
                                                int64_t contention, const char *query_type,
                                                const char *value, uint32_t value_len,
                                                mongocrypt_binary_t *out, int *state) {
    mongocrypt_binary_t in = {(void *)value, value_len};
    mongocrypt_ctx_t *ctx = mongocrypt_py_ctx_new(crypt);
    bool ok;
    if (!ctx) {
        return NULL;
    }
    if (decrypt) {
        ok = mongocrypt_ctx_explicit_decrypt_init(ctx, &in);
    } else {
        mongocrypt_binary_t id = {(void *)key_id, key_id_len};
        ok = mongocrypt_ctx_setopt_key_id(ctx, &id)
             && mongocrypt_ctx_setopt_algorithm(ctx, algorithm, -1)
             && (!has_contention || mongocrypt_ctx_setopt_contention_factor(ctx, contention))
             && (!query_type || mongocrypt_ctx_setopt_query_type(ctx, query_type, -1))
             && mongocrypt_ctx_explicit_encrypt_init(ctx, &in);
    }
    *state = ok ? (int)mongocrypt_ctx_state(ctx) : (int)MONGOCRYPT_CTX_ERROR;
    if (*state == MONGOCRYPT_CTX_READY) {
        *state = mongocrypt_ctx_finalize(ctx, out) ? (int)MONGOCRYPT_CTX_DONE
                                                   : (int)MONGOCRYPT_CTX_ERROR;
    }
    return ctx;
}
