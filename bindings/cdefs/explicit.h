/* The explicit fast path (csrc/explicit.c): one native call per cached-key explicit operation. */
mongocrypt_ctx_t *mongocrypt_py_explicit(mongocrypt_t *crypt, int decrypt, const char *key_id,
                                         uint32_t key_id_len, const char *algorithm,
                                         int has_contention, int64_t contention,
                                         const char *query_type, const char *value,
                                         uint32_t value_len, mongocrypt_binary_t *out,
                                         char *result, uint32_t result_cap, uint32_t *result_len,
                                         int *state);
