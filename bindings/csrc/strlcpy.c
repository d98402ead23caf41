/* strlcpy for C libraries that lack it (glibc before 2.38). libmongocrypt's static archives from
 * newer Debian suites call it; build_ffi.py compiles this file only when the probe finds no strlcpy. */
#include <stddef.h>
#include <string.h>

__attribute__((visibility("hidden"))) size_t strlcpy(char *dst, const char *src, size_t size) {
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}
