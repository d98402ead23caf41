/* mongocrypt.h section: binary buffers. The struct is public and only views memory, so the engine
 * allocates it itself (ffi.new) instead of calling mongocrypt_binary_new/_destroy. */
typedef struct {
    void *data;
    uint32_t len;
    ...;
} mongocrypt_binary_t;
