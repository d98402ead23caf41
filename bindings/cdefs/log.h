/* mongocrypt.h section: logging. The handler is a Python function (extern "Python"). */
typedef enum {
    MONGOCRYPT_LOG_LEVEL_FATAL,
    MONGOCRYPT_LOG_LEVEL_ERROR,
    MONGOCRYPT_LOG_LEVEL_WARNING,
    MONGOCRYPT_LOG_LEVEL_INFO,
    MONGOCRYPT_LOG_LEVEL_TRACE,
    ...
} mongocrypt_log_level_t;

typedef void (*mongocrypt_log_fn_t)(mongocrypt_log_level_t level,
                                    const char *message,
                                    uint32_t message_len,
                                    void *ctx);

extern "Python" void _mongocrypt_py_log(mongocrypt_log_level_t level,
                                        const char *message,
                                        uint32_t message_len,
                                        void *ctx);
