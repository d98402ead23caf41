/* Facts about this build and counters for tests: nothing here is libmongocrypt API. */

/* The mongocrypt version this extension was compiled for; engine/native.py refuses to import an
 * extension built for another version (a stale editable build), rather than misbehaving later. */
static const char *mongocrypt_py_build_version(void) {
    return MONGOCRYPT_PY_BUILD_VERSION;
}

/* Live-object counters, so tests can prove every handle and context is released on every path.
 * The engine creates and destroys only through these wrappers; atomics keep them exact across
 * threads, and relaxed ordering is enough because they are only ever read as totals. */
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
