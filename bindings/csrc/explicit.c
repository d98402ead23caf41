/* The explicit fast path: a whole explicit encryption or decryption in one native call.
 *
 * Why: through the general path an explicit operation is six to eight cffi calls (create, one
 * setopt per option, init, state, finalize, destroy), each a GIL release and re-acquire plus
 * argument conversion; for small values that overhead is most of the operation's time. When the
 * data key is already cached, which is the steady state, this does all of it in one call.
 * docs/performance.md has the figures.
 *
 * It covers the options of a value encrypted by key id (algorithm, contention factor, query type,
 * Range options); the engine decides when it applies and otherwise uses the general path (a key
 * by alternate name, String options, a Range find expression).
 *
 * Encryption takes a key id, an algorithm name and optionally a contention factor, a query type
 * (NULL or "": none) and the Range options as BSON (NULL or no bytes: none); decryption takes none
 * of them. The outcome goes to *io (one allocation by the caller, with capacity bytes of room for
 * the result): io->state is the context's state. When the context is READY at once it is finalised
 * and io->state is MONGOCRYPT_CTX_DONE: if the result fits it is copied into io->result (io->len
 * bytes), the context is destroyed here and NULL returned, so the whole operation costs one native
 * call (and at most one GIL release: see mongocrypt_py_explicit_gil_held below); otherwise the
 * context is returned with its result at io->ctx_result (io->len bytes). Any other state is left
 * for the Python state machine, which adopts the context; on MONGOCRYPT_CTX_ERROR the context holds
 * the status. A context returned is owned by the caller exactly like one from
 * mongocrypt_py_ctx_new: engine/handle.py wraps it in ffi.gc at once and releases it
 * deterministically. NULL with any state but DONE means no memory. */
#include <string.h>

typedef struct {
    int state;
    uint32_t len;
    const void *ctx_result;
    char result[];
} mongocrypt_py_explicit_t;

static mongocrypt_ctx_t *mongocrypt_py_explicit(mongocrypt_t *crypt, int decrypt,
                                                const char *key_id, uint32_t key_id_len,
                                                const char *algorithm, int has_contention,
                                                int64_t contention, const char *query_type,
                                                const char *range_opts, uint32_t range_opts_len,
                                                const char *value, uint32_t value_len,
                                                mongocrypt_py_explicit_t *io, uint32_t capacity) {
    mongocrypt_binary_t in = {(void *)value, value_len};
    mongocrypt_binary_t range = {(void *)range_opts, range_opts_len};
    mongocrypt_binary_t out = {NULL, 0};
    mongocrypt_ctx_t *ctx = mongocrypt_py_ctx_new(crypt);
    bool ok;
    if (!ctx) {
        io->state = (int)MONGOCRYPT_CTX_ERROR;
        return NULL;
    }
    if (decrypt) {
        ok = mongocrypt_ctx_explicit_decrypt_init(ctx, &in);
    } else {
        mongocrypt_binary_t id = {(void *)key_id, key_id_len};
        ok = mongocrypt_ctx_setopt_key_id(ctx, &id)
             && mongocrypt_ctx_setopt_algorithm(ctx, algorithm, -1)
             && (!has_contention || mongocrypt_ctx_setopt_contention_factor(ctx, contention))
             && (!query_type || !*query_type
                 || mongocrypt_ctx_setopt_query_type(ctx, query_type, -1))
             && (!range_opts_len || mongocrypt_ctx_setopt_algorithm_range(ctx, &range))
             && mongocrypt_ctx_explicit_encrypt_init(ctx, &in);
    }
    io->state = ok ? (int)mongocrypt_ctx_state(ctx) : (int)MONGOCRYPT_CTX_ERROR;
    if (io->state == MONGOCRYPT_CTX_READY) {
        io->state = mongocrypt_ctx_finalize(ctx, &out) ? (int)MONGOCRYPT_CTX_DONE
                                                       : (int)MONGOCRYPT_CTX_ERROR;
    }
    if (io->state == MONGOCRYPT_CTX_DONE) {
        io->len = out.len;
        if (out.len <= capacity) {
            memcpy(io->result, out.data, out.len);
            mongocrypt_py_ctx_destroy(ctx);
            return NULL;
        }
        io->ctx_result = out.data;
    }
    return ctx;
}

/* The same call, but its cffi wrapper keeps the GIL (csrc/gil.c): for operations over in a few
 * microseconds, which engine/handle.py tells apart. */
static mongocrypt_ctx_t *mongocrypt_py_explicit_gil_held(
    mongocrypt_t *crypt, int decrypt, const char *key_id, uint32_t key_id_len,
    const char *algorithm, int has_contention, int64_t contention, const char *query_type,
    const char *range_opts, uint32_t range_opts_len, const char *value, uint32_t value_len,
    mongocrypt_py_explicit_t *io, uint32_t capacity) {
    return mongocrypt_py_explicit(crypt, decrypt, key_id, key_id_len, algorithm, has_contention,
                                  contention, query_type, range_opts, range_opts_len, value,
                                  value_len, io, capacity);
}
