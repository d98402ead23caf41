/* mongocrypt.h section: logging. libmongocrypt's handler is a C queue (csrc/gil.c) that each call
 * hands to the Python function below once it is over. */
typedef enum {
    MONGOCRYPT_LOG_LEVEL_FATAL,
    MONGOCRYPT_LOG_LEVEL_ERROR,
    MONGOCRYPT_LOG_LEVEL_WARNING,
    MONGOCRYPT_LOG_LEVEL_INFO,
    MONGOCRYPT_LOG_LEVEL_TRACE,
    ...
} mongocrypt_log_level_t;

extern "Python" void _mongocrypt_py_log(mongocrypt_log_level_t level,
                                        const char *message,
                                        uint32_t message_len,
                                        void *ctx);
/* The handler itself (csrc/gil.c), for tests: queues one message for delivery after the call. */
void mongocrypt_py_log_queue(mongocrypt_log_level_t level, const char *message,
                             uint32_t message_len, void *ctx);
