/* mongocrypt.h section: the mongocrypt_t handle, its options, and initialisation. */
typedef struct _mongocrypt_t mongocrypt_t;

/* The queueing log handler of csrc/gil.c, registered on crypt. */
bool mongocrypt_py_setopt_log_handler(mongocrypt_t *crypt);
bool mongocrypt_setopt_retry_kms(mongocrypt_t *crypt, bool enable);
bool mongocrypt_setopt_enable_multiple_collinfo(mongocrypt_t *crypt);
bool mongocrypt_setopt_kms_providers(mongocrypt_t *crypt, mongocrypt_binary_t *kms_providers);
bool mongocrypt_setopt_schema_map(mongocrypt_t *crypt, mongocrypt_binary_t *schema_map);
bool mongocrypt_setopt_encrypted_field_config_map(mongocrypt_t *crypt, mongocrypt_binary_t *efc_map);
void mongocrypt_setopt_append_crypt_shared_lib_search_path(mongocrypt_t *crypt, const char *path);
void mongocrypt_setopt_set_crypt_shared_lib_path_override(mongocrypt_t *crypt, const char *path);
void mongocrypt_setopt_use_need_kms_credentials_state(mongocrypt_t *crypt);
void mongocrypt_setopt_use_need_mongo_collinfo_with_db_state(mongocrypt_t *crypt);
void mongocrypt_setopt_bypass_query_analysis(mongocrypt_t *crypt);
bool mongocrypt_setopt_use_range_v2(mongocrypt_t *crypt);
bool mongocrypt_setopt_key_expiration(mongocrypt_t *crypt, uint64_t cache_expiration_ms);
bool mongocrypt_init(mongocrypt_t *crypt);
bool mongocrypt_status(mongocrypt_t *crypt, mongocrypt_status_t *status);
const char *mongocrypt_crypt_shared_lib_version_string(const mongocrypt_t *crypt, uint32_t *len);
