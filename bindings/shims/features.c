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
