/* The GIL around native calls, and libmongocrypt's log messages.
 *
 * Why: cffi releases the GIL around every call it wraps (Py_BEGIN_ALLOW_THREADS and
 * Py_END_ALLOW_THREADS in each generated _cffi_f_<name> wrapper). For a call that is over in a
 * few microseconds that costs more than it gives: while a second Python thread waits, every
 * release hands the interpreter to the other core and back, and the Python work that follows runs
 * with cold caches. Measured (bench/engine.py, docs/performance.md): two threads each encrypting
 * or decrypting 20 B values did 0.8x the work of one when every call released the GIL, 1.0x when
 * the short calls kept it.
 *
 * How: the two macros are redefined here, before cffi writes its wrappers, so that the wrapper of
 * a function whose name ends in "_gil_held" keeps the GIL (__func__ is the wrapper's name; the
 * compiler folds the test). Every other call releases it as before. tests/unit/test_gil.py proves
 * both, so a cffi that stops using these macros fails a test instead of silently changing.
 *
 * Logging must not deadlock: libmongocrypt calls its log handler with its log mutex held. Had the
 * handler called Python at once, a thread inside a GIL-releasing call could hold that mutex and
 * wait for the GIL while a thread inside a GIL-keeping call held the GIL and waited for the mutex.
 * So the handler below only copies the message into the calling thread's queue, and the wrapper
 * hands the queue to Python (mongocrypt/engine/native.py) once the call is over and the GIL is
 * back: the same messages, in the same order, on the thread that caused them, just at the end of
 * the native call rather than during it. No thread ever waits for the GIL holding a lock. */

#include <stdlib.h>
#include <string.h>

/* The Python log function (extern "Python" in cdefs/log.h; cffi defines it after this source). */
static void _mongocrypt_py_log(mongocrypt_log_level_t level, const char *message,
                               uint32_t message_len, void *ctx);

typedef struct mongocrypt_py_log_entry {
    struct mongocrypt_py_log_entry *next;
    mongocrypt_log_level_t level;
    uint32_t len;
    char message[];
} mongocrypt_py_log_entry_t;

/* This thread's messages not yet handed to Python, oldest first. */
static __thread mongocrypt_py_log_entry_t *mongocrypt_py_log_head, *mongocrypt_py_log_tail;

/* libmongocrypt's log handler: queue a copy (a message that cannot be copied is dropped). */
static void mongocrypt_py_log_queue(mongocrypt_log_level_t level, const char *message,
                                    uint32_t message_len, void *ctx) {
    mongocrypt_py_log_entry_t *entry = malloc(sizeof *entry + message_len);
    (void)ctx;
    if (!entry) {
        return;
    }
    entry->next = NULL;
    entry->level = level;
    entry->len = message_len;
    memcpy(entry->message, message, message_len);
    if (mongocrypt_py_log_tail) {
        mongocrypt_py_log_tail->next = entry;
    } else {
        mongocrypt_py_log_head = entry;
    }
    mongocrypt_py_log_tail = entry;
}

/* Hand this thread's queued messages to Python; called with the GIL held, after every call. */
static void mongocrypt_py_log_deliver(void) {
    while (mongocrypt_py_log_head) {
        mongocrypt_py_log_entry_t *entry = mongocrypt_py_log_head;
        mongocrypt_py_log_head = entry->next;
        if (!mongocrypt_py_log_head) {
            mongocrypt_py_log_tail = NULL;
        }
        _mongocrypt_py_log(entry->level, entry->message, entry->len, NULL);
        free(entry);
    }
}

static bool mongocrypt_py_setopt_log_handler(mongocrypt_t *crypt) {
    return mongocrypt_setopt_log_handler(crypt, mongocrypt_py_log_queue, NULL);
}

#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS                                                                     \
    {                                                                                              \
        PyThreadState *_save = strstr(__func__, "_gil_held") ? NULL : PyEval_SaveThread();
#define Py_END_ALLOW_THREADS                                                                       \
    if (_save) {                                                                                   \
        PyEval_RestoreThread(_save);                                                               \
    }                                                                                              \
    if (mongocrypt_py_log_head) {                                                                  \
        mongocrypt_py_log_deliver();                                                               \
    }                                                                                              \
    }
