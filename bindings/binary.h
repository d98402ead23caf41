/* mongocrypt.h section: binary buffers (views over memory; libmongocrypt never owns input data). */
typedef struct {
    void *data;
    uint32_t len;
    ...;
} mongocrypt_binary_t;

mongocrypt_binary_t *mongocrypt_binary_new(void);
mongocrypt_binary_t *mongocrypt_binary_new_from_data(uint8_t *data, uint32_t len);
uint8_t *mongocrypt_binary_data(const mongocrypt_binary_t *binary);
uint32_t mongocrypt_binary_len(const mongocrypt_binary_t *binary);
void mongocrypt_binary_destroy(mongocrypt_binary_t *binary);
