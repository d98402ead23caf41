/* mongocrypt.h section: library identity and native crypto availability. */
const char *mongocrypt_version(uint32_t *len);
bool mongocrypt_is_crypto_available(void);
