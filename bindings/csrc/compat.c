/* Compatibility stubs for libmongocrypt versions older than the primary pin.
 *
 * build_ffi.py defines MONGOCRYPT_PY_HAS_* from the mongocrypt.h it builds against, so one binding
 * serves every supported libmongocrypt: a function the library lacks gets a stub here, and Python
 * checks the flag (engine/native.py) before it would ever call the stub. Each stub can go when the
 * oldest supported libmongocrypt (MIN_LIBMONGOCRYPT in build_ffi.py, 1.13 with the fallback pin)
 * declares the function itself. */

#if !MONGOCRYPT_PY_HAS_ALGORITHM_TEXT
/* The String (text) algorithms. Remove when 1.13 is no longer supported. */
static bool mongocrypt_ctx_setopt_algorithm_text(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *opts) {
    (void)ctx;
    (void)opts;
    return false;
}
#endif

#if !MONGOCRYPT_PY_HAS_FEED_WITH_RETRY
/* In-place KMS retry while feeding. Older libraries cannot ask for one; feeding is all they do.
 * Remove when 1.13 is no longer supported. */
static bool mongocrypt_kms_ctx_feed_with_retry(mongocrypt_kms_ctx_t *kms, mongocrypt_binary_t *bytes,
                                               bool *should_retry) {
    *should_retry = false;
    return mongocrypt_kms_ctx_feed(kms, bytes);
}
#endif
