/* mongocrypt.h section: status objects, the only way libmongocrypt reports errors. */
typedef struct _mongocrypt_status_t mongocrypt_status_t;

typedef enum {
    MONGOCRYPT_STATUS_OK,
    MONGOCRYPT_STATUS_ERROR_CLIENT,
    MONGOCRYPT_STATUS_ERROR_KMS,
    MONGOCRYPT_STATUS_ERROR_CRYPT_SHARED,
    ...
} mongocrypt_status_type_t;

mongocrypt_status_t *mongocrypt_status_new(void);
mongocrypt_status_type_t mongocrypt_status_type(mongocrypt_status_t *status);
uint32_t mongocrypt_status_code(mongocrypt_status_t *status);
const char *mongocrypt_status_message(mongocrypt_status_t *status, uint32_t *len);
void mongocrypt_status_destroy(mongocrypt_status_t *status);
