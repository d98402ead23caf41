/* Our crypto hooks on OpenSSL (csrc/hooks.c), registered on a handle before mongocrypt_init. */
bool mongocrypt_py_setopt_crypto_hooks(mongocrypt_t *crypt);
/* The OpenSSL the hooks run on (the libcrypto loaded at run time). */
const char *mongocrypt_py_openssl_version(void);
/* One hook called directly, for known-answer tests: which is 0 AES-256-CBC encrypt, 1 AES-256-CBC
 * decrypt, 2 AES-256-CTR, 3 HMAC-SHA-512, 4 HMAC-SHA-256, 5 SHA-256, 6 random. Returns the bytes
 * written to out, or -1 when the hook fails. */
int64_t mongocrypt_py_hook_run(int which, const uint8_t *key, uint32_t key_len, const uint8_t *iv,
                               uint32_t iv_len, const uint8_t *in, uint32_t in_len, uint8_t *out,
                               uint32_t out_len);
