/* The explicit fast path (csrc/explicit.c): one native call per cached-key explicit operation.
 * The caller allocates one of these with room for the result (ffi.new(..., capacity)). */
typedef struct {
    int state;
    uint32_t len;
    const void *ctx_result;
    char result[];
} mongocrypt_py_explicit_t;
mongocrypt_ctx_t *mongocrypt_py_explicit(mongocrypt_t *crypt, int decrypt, const char *key_id,
                                         uint32_t key_id_len, const char *algorithm,
                                         int has_contention, int64_t contention,
                                         const char *query_type, const char *range_opts,
                                         uint32_t range_opts_len, const char *value,
                                         uint32_t value_len, mongocrypt_py_explicit_t *io,
                                         uint32_t capacity);
/* The same, keeping the GIL (csrc/gil.c): for operations over in a few microseconds. */
mongocrypt_ctx_t *mongocrypt_py_explicit_gil_held(mongocrypt_t *crypt, int decrypt,
                                                  const char *key_id, uint32_t key_id_len,
                                                  const char *algorithm, int has_contention,
                                                  int64_t contention, const char *query_type,
                                                  const char *range_opts, uint32_t range_opts_len,
                                                  const char *value, uint32_t value_len,
                                                  mongocrypt_py_explicit_t *io, uint32_t capacity);
