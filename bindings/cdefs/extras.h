/* Ours, not libmongocrypt's (csrc/extras.c): the build version and the counting create/destroy
 * wrappers the engine uses for every handle and context. */
const char *mongocrypt_py_build_version(void);
mongocrypt_t *mongocrypt_py_new(void);
void mongocrypt_py_destroy(mongocrypt_t *crypt);
mongocrypt_ctx_t *mongocrypt_py_ctx_new(mongocrypt_t *crypt);
void mongocrypt_py_ctx_destroy(mongocrypt_ctx_t *ctx);
long mongocrypt_py_live_handles(void);
long mongocrypt_py_live_contexts(void);
