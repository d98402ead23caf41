/* mongocrypt.h section: operation contexts (mongocrypt_ctx_t), their options and states. */
typedef struct _mongocrypt_ctx_t mongocrypt_ctx_t;
typedef struct _mongocrypt_kms_ctx_t mongocrypt_kms_ctx_t;

typedef enum {
    MONGOCRYPT_CTX_ERROR,
    MONGOCRYPT_CTX_NEED_MONGO_COLLINFO,
    MONGOCRYPT_CTX_NEED_MONGO_COLLINFO_WITH_DB,
    MONGOCRYPT_CTX_NEED_MONGO_MARKINGS,
    MONGOCRYPT_CTX_NEED_MONGO_KEYS,
    MONGOCRYPT_CTX_NEED_KMS,
    MONGOCRYPT_CTX_NEED_KMS_CREDENTIALS,
    MONGOCRYPT_CTX_READY,
    MONGOCRYPT_CTX_DONE,
    ...
} mongocrypt_ctx_state_t;

bool mongocrypt_ctx_status(mongocrypt_ctx_t *ctx, mongocrypt_status_t *status);

/* options, set before *_init */
bool mongocrypt_ctx_setopt_key_id(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *key_id);
bool mongocrypt_ctx_setopt_key_alt_name(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *key_alt_name);
bool mongocrypt_ctx_setopt_key_material(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *key_material);
bool mongocrypt_ctx_setopt_algorithm(mongocrypt_ctx_t *ctx, const char *algorithm, int len);
bool mongocrypt_ctx_setopt_algorithm_range(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *opts);
bool mongocrypt_ctx_setopt_algorithm_text(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *opts);
bool mongocrypt_ctx_setopt_key_encryption_key(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *bin);
bool mongocrypt_ctx_setopt_contention_factor(mongocrypt_ctx_t *ctx, int64_t contention_factor);
bool mongocrypt_ctx_setopt_query_type(mongocrypt_ctx_t *ctx, const char *query_type, int len);

/* initialisers, one per operation */
bool mongocrypt_ctx_encrypt_init(mongocrypt_ctx_t *ctx, const char *db, int32_t db_len, mongocrypt_binary_t *cmd);
bool mongocrypt_ctx_decrypt_init(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *doc);
bool mongocrypt_ctx_explicit_encrypt_init(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *msg);
bool mongocrypt_ctx_explicit_encrypt_expression_init(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *msg);
bool mongocrypt_ctx_explicit_decrypt_init(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *msg);
bool mongocrypt_ctx_datakey_init(mongocrypt_ctx_t *ctx);
bool mongocrypt_ctx_rewrap_many_datakey_init(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *filter);

/* the state machine */
mongocrypt_ctx_state_t mongocrypt_ctx_state(mongocrypt_ctx_t *ctx);
bool mongocrypt_ctx_mongo_op(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *op_bson);
const char *mongocrypt_ctx_mongo_db(mongocrypt_ctx_t *ctx);
bool mongocrypt_ctx_mongo_feed(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *reply);
bool mongocrypt_ctx_mongo_done(mongocrypt_ctx_t *ctx);
mongocrypt_kms_ctx_t *mongocrypt_ctx_next_kms_ctx(mongocrypt_ctx_t *ctx);
bool mongocrypt_ctx_kms_done(mongocrypt_ctx_t *ctx);
bool mongocrypt_ctx_provide_kms_providers(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *kms_providers_definition);
bool mongocrypt_ctx_finalize(mongocrypt_ctx_t *ctx, mongocrypt_binary_t *out);
