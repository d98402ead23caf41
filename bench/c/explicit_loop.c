/* The limit for mongocrypt's design: libmongocrypt driven directly from C through the same explicit
 * encrypt/decrypt loop the Python benchmarks run (one context per operation, local KMS provider,
 * the data key fed in NEED_MONGO_KEYS, Deterministic on a 20-byte string).
 *
 * usage: explicit_loop SECONDS WARMUP_SECONDS [hooks]
 * prints: {"encrypt_ops_s": ..., "decrypt_ops_s": ..., "libmongocrypt": "...", ...} on stdout.
 * With "hooks", the handle uses mongocrypt's crypto hooks (bindings/csrc/hooks.c, compiled in
 * here as they are into the extension): the limit with the hooks.
 *
 * Linked against the vendored static archives (see bench/run.py); BSON is written by hand because
 * the vendored package ships no libbson headers. */
#include <mongocrypt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../bindings/csrc/hooks.c"

/* is_ctx: 1 when owner is a mongocrypt_ctx_t, 0 for the mongocrypt_t handle. */
#define CHECK(ok, what, is_ctx, owner)                                                            \
    do {                                                                                          \
        if (!(ok)) die_status(what, is_ctx, owner);                                               \
    } while (0)

__attribute__((noreturn)) static void die(const char *message) {
    fprintf(stderr, "explicit_loop: %s\n", message);
    exit(1);
}

__attribute__((noreturn)) static void die_status(const char *what, int is_ctx, void *owner) {
    mongocrypt_status_t *status = mongocrypt_status_new();
    if (is_ctx) {
        mongocrypt_ctx_status((mongocrypt_ctx_t *)owner, status);
    } else {
        mongocrypt_status((mongocrypt_t *)owner, status);
    }
    fprintf(stderr, "explicit_loop: %s failed: %s\n", what, mongocrypt_status_message(status, NULL));
    mongocrypt_status_destroy(status);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* -- minimal BSON writing and reading -------------------------------------------------------- */

typedef struct {
    uint8_t data[512];
    uint32_t len;
} buf_t;

static void put_bytes(buf_t *b, const void *data, uint32_t n) {
    if (b->len + n > sizeof b->data) die("BSON buffer overflow");
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void put_i32(buf_t *b, int32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(b, le, 4);
}

static void set_i32(buf_t *b, uint32_t at, int32_t v) {
    b->data[at] = (uint8_t)v;
    b->data[at + 1] = (uint8_t)(v >> 8);
    b->data[at + 2] = (uint8_t)(v >> 16);
    b->data[at + 3] = (uint8_t)(v >> 24);
}

static int32_t get_i32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static void put_cstring(buf_t *b, const char *s) { put_bytes(b, s, (uint32_t)strlen(s) + 1); }

/* {"v": "<value>"} */
static void doc_string(buf_t *b, const char *key, const char *value) {
    b->len = 0;
    put_i32(b, 0);
    put_bytes(b, "\x02", 1);
    put_cstring(b, key);
    put_i32(b, (int32_t)strlen(value) + 1);
    put_cstring(b, value);
    put_bytes(b, "\x00", 1);
    set_i32(b, 0, (int32_t)b->len);
}

/* {"local": {"key": Binary(key, 0)}} */
static void doc_local_provider(buf_t *b, const uint8_t *key, uint32_t key_len) {
    b->len = 0;
    put_i32(b, 0);
    put_bytes(b, "\x03", 1);
    put_cstring(b, "local");
    uint32_t inner = b->len;
    put_i32(b, 0);
    put_bytes(b, "\x05", 1);
    put_cstring(b, "key");
    put_i32(b, (int32_t)key_len);
    put_bytes(b, "\x00", 1);
    put_bytes(b, key, key_len);
    put_bytes(b, "\x00", 1);
    set_i32(b, inner, (int32_t)(b->len - inner));
    put_bytes(b, "\x00", 1);
    set_i32(b, 0, (int32_t)b->len);
}

/* The value of the top-level binary field `name` of a BSON document (the key's _id). */
static int find_binary(const uint8_t *doc, uint32_t len, const char *name, const uint8_t **out,
                       uint32_t *out_len) {
    uint32_t at = 4;
    while (at < len && doc[at] != 0) {
        uint8_t type = doc[at++];
        const char *field = (const char *)doc + at;
        at += (uint32_t)strlen(field) + 1;
        uint32_t size;
        switch (type) {
        case 0x01: case 0x09: case 0x11: case 0x12: size = 8; break;
        case 0x02: size = 4 + (uint32_t)get_i32(doc + at); break;
        case 0x03: case 0x04: size = (uint32_t)get_i32(doc + at); break;
        case 0x05: size = 5 + (uint32_t)get_i32(doc + at); break;
        case 0x07: size = 12; break;
        case 0x08: size = 1; break;
        case 0x0A: size = 0; break;
        case 0x10: size = 4; break;
        case 0x13: size = 16; break;
        default: die("unexpected BSON type in the key document");
        }
        if (type == 0x05 && strcmp(field, name) == 0) {
            *out_len = (uint32_t)get_i32(doc + at);
            *out = doc + at + 5;
            return 1;
        }
        at += size;
    }
    return 0;
}

/* -- one operation ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *data;
    uint32_t len;
} owned_t;

static owned_t copy_out(mongocrypt_binary_t *bin) {
    owned_t o;
    o.len = mongocrypt_binary_len(bin);
    o.data = malloc(o.len);
    if (!o.data) die("out of memory");
    memcpy(o.data, mongocrypt_binary_data(bin), o.len);
    return o;
}

/* Drive ctx to READY, feeding `key_doc` when the key is asked for; copy the result into *out when
 * out is not NULL. */
static void run(mongocrypt_ctx_t *ctx, const owned_t *key_doc, owned_t *out) {
    for (;;) {
        switch (mongocrypt_ctx_state(ctx)) {
        case MONGOCRYPT_CTX_NEED_MONGO_KEYS: {
            if (!key_doc) die("a key was asked for before there was one");
            mongocrypt_binary_t *bin = mongocrypt_binary_new_from_data(key_doc->data, key_doc->len);
            CHECK(mongocrypt_ctx_mongo_feed(ctx, bin), "mongo_feed", 1, ctx);
            mongocrypt_binary_destroy(bin);
            CHECK(mongocrypt_ctx_mongo_done(ctx), "mongo_done", 1, ctx);
            break;
        }
        case MONGOCRYPT_CTX_READY: {
            mongocrypt_binary_t *result = mongocrypt_binary_new();
            CHECK(mongocrypt_ctx_finalize(ctx, result), "finalize", 1, ctx);
            if (out) *out = copy_out(result);
            mongocrypt_binary_destroy(result);
            break;
        }
        case MONGOCRYPT_CTX_DONE: return;
        case MONGOCRYPT_CTX_ERROR: die_status("context", 1, ctx);
        default: die("unexpected context state");
        }
    }
}

typedef struct {
    mongocrypt_t *crypt;
    owned_t key_doc;
    const uint8_t *key_id;
    uint32_t key_id_len;
    buf_t plaintext;
    owned_t ciphertext;
} bench_t;

static void encrypt_once(bench_t *b, owned_t *out) {
    mongocrypt_ctx_t *ctx = mongocrypt_ctx_new(b->crypt);
    mongocrypt_binary_t *key_id = mongocrypt_binary_new_from_data((uint8_t *)b->key_id, b->key_id_len);
    CHECK(mongocrypt_ctx_setopt_key_id(ctx, key_id), "setopt_key_id", 1, ctx);
    mongocrypt_binary_destroy(key_id);
    CHECK(mongocrypt_ctx_setopt_algorithm(ctx, MONGOCRYPT_ALGORITHM_DETERMINISTIC_STR, -1),
          "setopt_algorithm", 1, ctx);
    mongocrypt_binary_t *msg = mongocrypt_binary_new_from_data(b->plaintext.data, b->plaintext.len);
    CHECK(mongocrypt_ctx_explicit_encrypt_init(ctx, msg), "explicit_encrypt_init", 1, ctx);
    mongocrypt_binary_destroy(msg);
    owned_t result;
    run(ctx, &b->key_doc, &result);
    mongocrypt_ctx_destroy(ctx);
    if (out) {
        *out = result;
    } else {
        free(result.data);
    }
}

static void decrypt_once(bench_t *b, owned_t *out) {
    mongocrypt_ctx_t *ctx = mongocrypt_ctx_new(b->crypt);
    mongocrypt_binary_t *msg = mongocrypt_binary_new_from_data(b->ciphertext.data, b->ciphertext.len);
    CHECK(mongocrypt_ctx_explicit_decrypt_init(ctx, msg), "explicit_decrypt_init", 1, ctx);
    mongocrypt_binary_destroy(msg);
    owned_t result;
    run(ctx, &b->key_doc, &result);
    mongocrypt_ctx_destroy(ctx);
    if (out) {
        *out = result;
    } else {
        free(result.data);
    }
}

typedef void (*op_fn)(bench_t *, owned_t *);

/* ops/s of `op` over `seconds`, after `warmup` seconds of the same. */
static double measure(bench_t *b, op_fn op, double seconds, double warmup) {
    double end = now() + warmup;
    while (now() < end) op(b, NULL);
    long ops = 0;
    double start = now(), t;
    do {
        for (int i = 0; i < 64; i++) op(b, NULL);
        ops += 64;
        t = now();
    } while (t - start < seconds);
    return (double)ops / (t - start);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    double warmup = argc > 2 ? atof(argv[2]) : 0.5;
    int hooks = argc > 3 && strcmp(argv[3], "hooks") == 0;
    if (!mongocrypt_is_crypto_available()) die("libmongocrypt was built without native crypto");

    bench_t b;
    memset(&b, 0, sizeof b);
    b.crypt = mongocrypt_new();
    if (hooks) {
        CHECK(mongocrypt_py_setopt_crypto_hooks(b.crypt), "setopt_crypto_hooks", 0, b.crypt);
    }
    uint8_t master[96];
    FILE *urandom = fopen("/dev/urandom", "rb");
    if (!urandom || fread(master, 1, sizeof master, urandom) != sizeof master) die("no /dev/urandom");
    fclose(urandom);
    buf_t providers;
    doc_local_provider(&providers, master, sizeof master);
    mongocrypt_binary_t *bin = mongocrypt_binary_new_from_data(providers.data, providers.len);
    CHECK(mongocrypt_setopt_kms_providers(b.crypt, bin), "setopt_kms_providers", 0, b.crypt);
    mongocrypt_binary_destroy(bin);
    CHECK(mongocrypt_init(b.crypt), "mongocrypt_init", 0, b.crypt);

    /* A local data key, created by a datakey context as create_data_key does. */
    buf_t kek;
    doc_string(&kek, "provider", "local");
    mongocrypt_ctx_t *ctx = mongocrypt_ctx_new(b.crypt);
    bin = mongocrypt_binary_new_from_data(kek.data, kek.len);
    CHECK(mongocrypt_ctx_setopt_key_encryption_key(ctx, bin), "setopt_key_encryption_key", 1, ctx);
    mongocrypt_binary_destroy(bin);
    CHECK(mongocrypt_ctx_datakey_init(ctx), "datakey_init", 1, ctx);
    run(ctx, NULL, &b.key_doc);
    mongocrypt_ctx_destroy(ctx);
    if (!find_binary(b.key_doc.data, b.key_doc.len, "_id", &b.key_id, &b.key_id_len))
        die("the key document has no binary _id");

    doc_string(&b.plaintext, "v", "457-55-5462-abcdefgh"); /* 20 bytes, as the Python benchmarks */
    encrypt_once(&b, &b.ciphertext);
    owned_t roundtrip;
    decrypt_once(&b, &roundtrip);
    if (roundtrip.len != b.plaintext.len || memcmp(roundtrip.data, b.plaintext.data, roundtrip.len))
        die("decrypt(encrypt(x)) != x");
    free(roundtrip.data);

    double encrypt = measure(&b, encrypt_once, seconds, warmup);
    double decrypt = measure(&b, decrypt_once, seconds, warmup);
    printf("{\"encrypt_ops_s\": %.1f, \"decrypt_ops_s\": %.1f, \"libmongocrypt\": \"%s\", "
           "\"ciphertext_bytes\": %u, \"hooks\": %s}\n",
           encrypt, decrypt, mongocrypt_version(NULL), b.ciphertext.len, hooks ? "true" : "false");

    free(b.ciphertext.data);
    free(b.key_doc.data);
    mongocrypt_destroy(b.crypt);
    return 0;
}
