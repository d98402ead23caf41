/* Compile-time facts about the linked libmongocrypt and this build (see shims/features.c). */
#define MONGOCRYPT_PY_HAS_ALGORITHM_TEXT ...
#define MONGOCRYPT_PY_HAS_FEED_WITH_RETRY ...
const char *mongocrypt_py_build_version(void);

/* Creation and destruction through counting wrappers (see shims/features.c). */
mongocrypt_t *mongocrypt_py_new(void);
void mongocrypt_py_destroy(mongocrypt_t *crypt);
mongocrypt_ctx_t *mongocrypt_py_ctx_new(mongocrypt_t *crypt);
void mongocrypt_py_ctx_destroy(mongocrypt_ctx_t *ctx);
long mongocrypt_py_live_handles(void);
long mongocrypt_py_live_contexts(void);
mongocrypt_ctx_t *mongocrypt_py_explicit(mongocrypt_t *crypt, int decrypt, const char *key_id,
                                         uint32_t key_id_len, const char *algorithm,
                                         int has_contention, int64_t contention,
                                         const char *query_type, const char *value,
                                         uint32_t value_len, mongocrypt_binary_t *out, int *state);
