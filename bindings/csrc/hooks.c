/* Crypto hooks: the primitives on libmongocrypt's hot paths, done on OpenSSL our own way.
 *
 * Why: libmongocrypt's OpenSSL 3 backend allocates a fresh EVP_CIPHER_CTX for every AES call and
 * duplicates a prototype EVP_MAC_CTX for every HMAC, so each call mallocs and frees and bumps
 * reference counts on EVP objects that every thread shares. Range encryption makes hundreds of
 * such calls per value; profiled, its time went to that bookkeeping (EVP_MD_free, EVP_MD_up_ref,
 * EVP_MD_CTX_copy_ex, malloc/free), not to the ciphers, and two threads fought over the shared
 * counters. docs/performance.md has the measurements (bench/c/crypto_options.c, bench/engine.py).
 *
 * How, per primitive (each the fastest option measured):
 * - HMAC-SHA-512, HMAC-SHA-256 and SHA-256 use OpenSSL's low-level SHA functions on digest states
 *   in memory we own: no allocation, no shared object. HMAC is built from its definition
 *   (RFC 2104): the digest states after absorbing the key's inner and outer pads are computed
 *   once per key and kept in a small per-thread cache, because libmongocrypt derives many tokens
 *   from the same few keys (a Range payload HMACs each edge under the same ESC, EDC and server
 *   tokens), so a cached key costs two compressions instead of four. Keys longer than a block
 *   (kms_message signs AWS requests through the SHA-256 HMAC hook) are hashed first and not
 *   cached. A hash whose rest fits one block (always the outer one, usually the inner one) is
 *   finished by hand (mongocrypt_py_sha_last_block). Every state and pad holding key material is
 *   cleansed after use, before a cache slot is reused, and when the thread exits; cache lookups
 *   compare keys in constant time.
 * - AES-256-CBC (without padding: libmongocrypt pads) and AES-256-CTR use one EVP_CIPHER_CTX per
 *   thread and per mode and direction, made on the thread's first call and re-keyed on each call
 *   without naming the cipher again (so no fetch and no reference count). Re-keying overwrites
 *   the previous key schedule; the contexts are freed when the thread exits, and OpenSSL cleanses
 *   their key schedules then. CBC decryption and CTR re-key only when the key changes
 *   (automatic decryption decrypts every field of a reply under the same few data keys, and a
 *   Range payload encrypts every edge's tokens under one key), see mongocrypt_py_cbc_decrypt and
 *   mongocrypt_py_ctr.
 * - Random bytes come from RAND_bytes, drawn 512 at a time into a per-thread buffer: each
 *   RAND_bytes call costs the DRBG's whole generate-and-reseed-check sequence, which for the
 *   16-byte IVs libmongocrypt asks for (dozens per Range payload) was 12% of Range encryption.
 *   Bytes are handed out once, cleansed as they leave the buffer, and a forked child discards what it
 *   inherited (pthread_atfork), so parent and child never share random bytes.
 * Everything here is constant-time in the data and the keys (AES through OpenSSL's AES-NI or
 * vector-permutation code; SHA has no data-dependent branches). MAC comparison stays
 * libmongocrypt's own constant-time compare.
 *
 * engine/handle.py registers these unless MONGOCRYPT_CRYPTO_HOOKS=0. They use APIs OpenSSL 3
 * marks deprecated (the low-level SHA functions), which bypass its providers: a process that
 * needs every digest to go through a FIPS provider should set MONGOCRYPT_CRYPTO_HOOKS=0. */

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

/* Cleansing the compiler cannot drop, for buffers on the hot path: glibc's explicit_bzero is a
 * vectorised memset behind a barrier, where OPENSSL_cleanse stores a byte or a word at a time
 * through a volatile pointer; on the few hundred bytes of an HMAC key slot that was 4% of Range
 * encryption. */
#define mongocrypt_py_cleanse explicit_bzero

static bool mongocrypt_py_hook_fail(mongocrypt_status_t *status, const char *message) {
    mongocrypt_status_set(status, MONGOCRYPT_STATUS_ERROR_CLIENT, 1, message, -1);
    return false;
}

/* -- SHA-2 through the low-level API ----------------------------------------------------------- */

/* Room for either SHA-2 variant's state. */
typedef union {
    SHA256_CTX sha256;
    SHA512_CTX sha512;
} mongocrypt_py_sha_ctx_t;

/* One SHA-2 variant, so the HMAC below is written once for both: block, digest and state sizes,
 * the bytes of the message length that ends the padding, the usual three calls, and the two
 * pieces of the last-block shortcut (mongocrypt_py_sha_last_block). */
typedef struct {
    size_t block, digest, state, length_bytes;
    int (*init)(mongocrypt_py_sha_ctx_t *);
    int (*update)(mongocrypt_py_sha_ctx_t *, const void *, size_t);
    int (*final)(unsigned char *, mongocrypt_py_sha_ctx_t *);
    void (*transform)(mongocrypt_py_sha_ctx_t *, const unsigned char *);
    void (*digest_of)(const mongocrypt_py_sha_ctx_t *, unsigned char *);
} mongocrypt_py_sha_t;

static int mongocrypt_py_sha256_init(mongocrypt_py_sha_ctx_t *c) { return SHA256_Init(&c->sha256); }
static int mongocrypt_py_sha256_update(mongocrypt_py_sha_ctx_t *c, const void *d, size_t n) {
    return SHA256_Update(&c->sha256, d, n);
}
static int mongocrypt_py_sha256_final(unsigned char *md, mongocrypt_py_sha_ctx_t *c) {
    return SHA256_Final(md, &c->sha256);
}
static int mongocrypt_py_sha512_init(mongocrypt_py_sha_ctx_t *c) { return SHA512_Init(&c->sha512); }
static int mongocrypt_py_sha512_update(mongocrypt_py_sha_ctx_t *c, const void *d, size_t n) {
    return SHA512_Update(&c->sha512, d, n);
}
static int mongocrypt_py_sha512_final(unsigned char *md, mongocrypt_py_sha_ctx_t *c) {
    return SHA512_Final(md, &c->sha512);
}

/* Big-endian stores, written so that compilers make each one a byte swap and a store. */
static inline void mongocrypt_py_store_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}
static inline void mongocrypt_py_store_be64(unsigned char *p, uint64_t v) {
    mongocrypt_py_store_be32(p, (uint32_t)(v >> 32));
    mongocrypt_py_store_be32(p + 4, (uint32_t)v);
}

static void mongocrypt_py_sha256_transform(mongocrypt_py_sha_ctx_t *c, const unsigned char *b) {
    SHA256_Transform(&c->sha256, b);
}
static void mongocrypt_py_sha256_digest_of(const mongocrypt_py_sha_ctx_t *c, unsigned char *md) {
    for (int i = 0; i < 8; i++) {
        mongocrypt_py_store_be32(md + 4 * i, (uint32_t)c->sha256.h[i]);
    }
}
static void mongocrypt_py_sha512_transform(mongocrypt_py_sha_ctx_t *c, const unsigned char *b) {
    SHA512_Transform(&c->sha512, b);
}
static void mongocrypt_py_sha512_digest_of(const mongocrypt_py_sha_ctx_t *c, unsigned char *md) {
    for (int i = 0; i < 8; i++) {
        mongocrypt_py_store_be64(md + 8 * i, (uint64_t)c->sha512.h[i]);
    }
}

static const mongocrypt_py_sha_t mongocrypt_py_sha256 = {
    SHA256_CBLOCK,          SHA256_DIGEST_LENGTH,           sizeof(SHA256_CTX),
    8,                      mongocrypt_py_sha256_init,      mongocrypt_py_sha256_update,
    mongocrypt_py_sha256_final, mongocrypt_py_sha256_transform, mongocrypt_py_sha256_digest_of};
static const mongocrypt_py_sha_t mongocrypt_py_sha512 = {
    SHA512_CBLOCK,          SHA512_DIGEST_LENGTH,           sizeof(SHA512_CTX),
    16,                     mongocrypt_py_sha512_init,      mongocrypt_py_sha512_update,
    mongocrypt_py_sha512_final, mongocrypt_py_sha512_transform, mongocrypt_py_sha512_digest_of};

/* Whether len more bytes after the first block fit, with their padding, in one more block. */
static bool mongocrypt_py_sha_fits_last_block(const mongocrypt_py_sha_t *sha, size_t len) {
    return len + 1 + sha->length_bytes <= sha->block;
}

/* Finish a hash whose state ctx has absorbed exactly one block (an HMAC pad, nothing buffered)
 * with the len bytes of data, which must fit the last block: the padded block is built here and
 * compressed once, and the digest read from the state.
 *
 * Why: HMAC's outer hash always ends this way, and libmongocrypt's inner ones mostly do (tokens
 * and counters of a few dozen bytes); OpenSSL's Update and Final around that one compression
 * (buffering, padding, cleansing their buffer byte by byte) were 7% of Range encryption. The
 * block holds message bytes, so it is cleansed. */
static void mongocrypt_py_sha_last_block(const mongocrypt_py_sha_t *sha,
                                         mongocrypt_py_sha_ctx_t *ctx, const unsigned char *data,
                                         size_t len, unsigned char *md) {
    unsigned char block[SHA512_CBLOCK];
    uint64_t bits = (uint64_t)(sha->block + len) * 8;
    memcpy(block, data, len);
    block[len] = 0x80;
    memset(block + len + 1, 0, sha->block - len - 1);
    /* the length's low 64 bits end the block (SHA-512's high 64 stay zero) */
    mongocrypt_py_store_be64(block + sha->block - 8, bits);
    sha->transform(ctx, block);
    sha->digest_of(ctx, md);
    mongocrypt_py_cleanse(block, sha->block);
}

/* -- per-thread state -------------------------------------------------------------------------- */

enum { MONGOCRYPT_PY_CBC_ENCRYPT, MONGOCRYPT_PY_CBC_DECRYPT, MONGOCRYPT_PY_CTR, MONGOCRYPT_PY_MODES };

/* An HMAC key (at most one block) and the digest states after its inner and outer pads; used says
 * it was looked up since the replacement hand last passed it. */
typedef struct {
    const mongocrypt_py_sha_t *sha; /* NULL: empty slot */
    unsigned char key[SHA512_CBLOCK];
    uint32_t key_len;
    bool used;
    mongocrypt_py_sha_ctx_t inner, outer;
} mongocrypt_py_hmac_key_t;

/* Enough for the ESC, EDC, server and one derived token of a Range payload to stay cached. */
#define MONGOCRYPT_PY_HMAC_KEYS 8

#define MONGOCRYPT_PY_RANDOM_BYTES 512

/* What one thread keeps between calls: cipher contexts, one per mode and direction (CTR is its
 * own inverse), the HMAC key cache with its replacement hand (the CLOCK policy: a slot looked up
 * since the hand last passed is spared once, so the few keys a Range payload derives from stay
 * while its one-off keys come and go), and random bytes
 * not yet handed out (the last random_left of random), drawn in process generation fork_seen. */
typedef struct {
    EVP_CIPHER_CTX *cipher[MONGOCRYPT_PY_MODES];
    /* The key the CBC-decrypt context is keyed with, when cbc_decrypt_keyed (see mongocrypt_py_aes) */
    unsigned char cbc_decrypt_key[32];
    bool cbc_decrypt_keyed;
    /* Likewise the key the CTR context is keyed with, when ctr_keyed (see mongocrypt_py_ctr) */
    unsigned char ctr_key[32];
    bool ctr_keyed;
    mongocrypt_py_hmac_key_t hmac[MONGOCRYPT_PY_HMAC_KEYS];
    unsigned next_hmac;
    unsigned char random[MONGOCRYPT_PY_RANDOM_BYTES];
    uint32_t random_left;
    unsigned fork_seen;
} mongocrypt_py_thread_t;

/* The key gives each thread's state its destructor; the thread-local pointer is the fast way to it
 * (pthread_once and pthread_getspecific on every hook call were 0.3% of Range encryption). */
static pthread_key_t mongocrypt_py_thread_key;
static __thread mongocrypt_py_thread_t *mongocrypt_py_thread_state;
static pthread_once_t mongocrypt_py_thread_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *mongocrypt_py_ciphers[MONGOCRYPT_PY_MODES];
/* Incremented in every forked child, so a thread state inherited across fork() is recognised. */
static unsigned mongocrypt_py_forks;

static void mongocrypt_py_after_fork_in_child(void) {
    mongocrypt_py_forks++;
}

static void mongocrypt_py_thread_free(void *ptr) {
    mongocrypt_py_thread_t *state = ptr;
    mongocrypt_py_thread_state = NULL;
    for (int mode = 0; mode < MONGOCRYPT_PY_MODES; mode++) {
        EVP_CIPHER_CTX_free(state->cipher[mode]); /* cleanses the key schedule */
    }
    OPENSSL_clear_free(state, sizeof *state); /* cleanses the HMAC keys and states */
}

static void mongocrypt_py_thread_init(void) {
    pthread_key_create(&mongocrypt_py_thread_key, mongocrypt_py_thread_free);
    pthread_atfork(NULL, NULL, mongocrypt_py_after_fork_in_child);
    /* Fetched once for the process; each thread's contexts hold a reference of their own. */
    mongocrypt_py_ciphers[MONGOCRYPT_PY_CBC_ENCRYPT] = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    mongocrypt_py_ciphers[MONGOCRYPT_PY_CBC_DECRYPT] = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    mongocrypt_py_ciphers[MONGOCRYPT_PY_CTR] = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
}

/* The calling thread's state, made on its first call; NULL if there is no memory for it. */
static mongocrypt_py_thread_t *mongocrypt_py_thread(void) {
    mongocrypt_py_thread_t *state = mongocrypt_py_thread_state;
    if (state) { /* every call but a thread's first */
        return state;
    }
    pthread_once(&mongocrypt_py_thread_once, mongocrypt_py_thread_init);
    state = OPENSSL_zalloc(sizeof *state);
    if (state && pthread_setspecific(mongocrypt_py_thread_key, state) != 0) {
        OPENSSL_free(state);
        state = NULL;
    }
    mongocrypt_py_thread_state = state;
    return state;
}

/* -- hashes and HMAC --------------------------------------------------------------------------- */

/* Fill entry with key (at most sha->block bytes) and the states after its two pads. */
static bool mongocrypt_py_hmac_key(const mongocrypt_py_sha_t *sha, const unsigned char *key,
                                   uint32_t key_len, mongocrypt_py_hmac_key_t *entry) {
    unsigned char pad[SHA512_CBLOCK];
    bool ok;
    memset(pad, 0, sha->block);
    memcpy(pad, key, key_len);
    for (size_t i = 0; i < sha->block; i++) {
        pad[i] ^= 0x36;
    }
    ok = sha->init(&entry->inner) && sha->update(&entry->inner, pad, sha->block);
    for (size_t i = 0; i < sha->block; i++) {
        pad[i] ^= 0x36 ^ 0x5c;
    }
    ok = ok && sha->init(&entry->outer) && sha->update(&entry->outer, pad, sha->block);
    mongocrypt_py_cleanse(pad, sha->block);
    memcpy(entry->key, key, key_len);
    entry->key_len = key_len;
    entry->sha = ok ? sha : NULL;
    return ok;
}

/* Whether a and b (len bytes each) differ, in time that depends on len only. A word at a time:
 * CRYPTO_memcmp goes byte by byte, and on every HMAC that showed in the profile. */
static inline bool mongocrypt_py_differ(const unsigned char *a, const unsigned char *b,
                                        uint32_t len) {
    uint64_t diff = 0, x, y;
    uint32_t i = 0;
    if (len == 32) { /* the usual key: straight-line code, no loop (5% of Range encryption) */
        uint64_t a4[4], b4[4];
        memcpy(a4, a, 32);
        memcpy(b4, b, 32);
        return ((a4[0] ^ b4[0]) | (a4[1] ^ b4[1]) | (a4[2] ^ b4[2]) | (a4[3] ^ b4[3])) != 0;
    }
    for (; i + 8 <= len; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < len; i++) {
        diff |= (uint64_t)(a[i] ^ b[i]);
    }
    return diff != 0;
}

/* The cached entry for key, filling the next slot on a miss; NULL if there is no thread state. */
static mongocrypt_py_hmac_key_t *mongocrypt_py_hmac_cached(const mongocrypt_py_sha_t *sha,
                                                           const unsigned char *key,
                                                           uint32_t key_len) {
    mongocrypt_py_thread_t *state = mongocrypt_py_thread();
    mongocrypt_py_hmac_key_t *entry;
    if (!state) {
        return NULL;
    }
    for (int i = 0; i < MONGOCRYPT_PY_HMAC_KEYS; i++) {
        entry = &state->hmac[i];
        if (entry->sha == sha && entry->key_len == key_len
            && !mongocrypt_py_differ(entry->key, key, key_len)) {
            entry->used = true;
            return entry;
        }
    }
    for (;;) {
        entry = &state->hmac[state->next_hmac++ % MONGOCRYPT_PY_HMAC_KEYS];
        if (!entry->used) {
            break;
        }
        entry->used = false;
    }
    mongocrypt_py_cleanse(entry, sizeof *entry); /* the key it held goes before the slot is reused */
    return mongocrypt_py_hmac_key(sha, key, key_len, entry) ? entry : NULL;
}

/* HMAC(key, in) into out (which must hold sha->digest bytes), per RFC 2104. */
static bool mongocrypt_py_hmac(const mongocrypt_py_sha_t *sha, mongocrypt_binary_t *key,
                               mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                               mongocrypt_status_t *status) {
    mongocrypt_py_hmac_key_t local, *keyed = NULL;
    mongocrypt_py_sha_ctx_t ctx;
    unsigned char inner[SHA512_DIGEST_LENGTH];
    bool ok = true;
    if (out->len < sha->digest) {
        return mongocrypt_py_hook_fail(status, "HMAC output buffer too small");
    }
    if (key->len <= sha->block) {
        keyed = mongocrypt_py_hmac_cached(sha, key->data, key->len);
    }
    if (!keyed) { /* a long key (hashed first), or no thread state: on the stack, uncached */
        unsigned char hashed[SHA512_DIGEST_LENGTH];
        const unsigned char *bytes = key->data;
        uint32_t len = key->len;
        if (len > sha->block) {
            ok = sha->init(&ctx) && sha->update(&ctx, bytes, len) && sha->final(hashed, &ctx);
            bytes = hashed;
            len = (uint32_t)sha->digest;
        }
        ok = ok && mongocrypt_py_hmac_key(sha, bytes, len, &local);
        mongocrypt_py_cleanse(hashed, sizeof hashed);
        keyed = &local;
    }
    memcpy(&ctx, &keyed->inner, sha->state);
    if (mongocrypt_py_sha_fits_last_block(sha, in->len)) {
        mongocrypt_py_sha_last_block(sha, &ctx, in->data, in->len, inner);
    } else {
        ok = ok && sha->update(&ctx, in->data, in->len) && sha->final(inner, &ctx);
    }
    memcpy(&ctx, &keyed->outer, sha->state);
    mongocrypt_py_sha_last_block(sha, &ctx, inner, sha->digest, out->data); /* a digest fits */
    mongocrypt_py_cleanse(inner, sha->digest);
    mongocrypt_py_cleanse(&ctx, sha->state);
    if (keyed == &local) {
        mongocrypt_py_cleanse(&local, sizeof local);
    }
    return ok || mongocrypt_py_hook_fail(status, "HMAC failed");
}

static bool mongocrypt_py_hmac_sha_512(void *unused, mongocrypt_binary_t *key,
                                       mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                                       mongocrypt_status_t *status) {
    (void)unused;
    return mongocrypt_py_hmac(&mongocrypt_py_sha512, key, in, out, status);
}

static bool mongocrypt_py_hmac_sha_256(void *unused, mongocrypt_binary_t *key,
                                       mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                                       mongocrypt_status_t *status) {
    (void)unused;
    return mongocrypt_py_hmac(&mongocrypt_py_sha256, key, in, out, status);
}

static bool mongocrypt_py_sha_256(void *unused, mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                                  mongocrypt_status_t *status) {
    SHA256_CTX ctx;
    bool ok;
    (void)unused;
    if (out->len < SHA256_DIGEST_LENGTH) {
        return mongocrypt_py_hook_fail(status, "SHA-256 output buffer too small");
    }
    ok = SHA256_Init(&ctx) && SHA256_Update(&ctx, in->data, in->len)
         && SHA256_Final(out->data, &ctx);
    mongocrypt_py_cleanse(&ctx, sizeof ctx); /* the input may be secret */
    return ok || mongocrypt_py_hook_fail(status, "SHA-256 failed");
}

static bool mongocrypt_py_random(void *unused, mongocrypt_binary_t *out, uint32_t count,
                                 mongocrypt_status_t *status) {
    mongocrypt_py_thread_t *state;
    unsigned char *bytes;
    (void)unused;
    if (out->len < count || count > INT32_MAX) {
        return mongocrypt_py_hook_fail(status, "random output buffer too small");
    }
    state = count <= MONGOCRYPT_PY_RANDOM_BYTES / 4 ? mongocrypt_py_thread() : NULL;
    if (!state) { /* large requests (key material) and the no-memory case: straight from OpenSSL */
        return RAND_bytes(out->data, (int)count) == 1
               || mongocrypt_py_hook_fail(status, "RAND_bytes failed");
    }
    if (state->fork_seen != mongocrypt_py_forks) { /* inherited from the parent: never reuse */
        OPENSSL_cleanse(state->random, sizeof state->random);
        state->random_left = 0;
        state->fork_seen = mongocrypt_py_forks;
    }
    if (state->random_left < count) {
        if (RAND_bytes(state->random, (int)sizeof state->random) != 1) {
            state->random_left = 0;
            return mongocrypt_py_hook_fail(status, "RAND_bytes failed");
        }
        state->random_left = sizeof state->random;
    }
    state->random_left -= count;
    bytes = state->random + state->random_left;
    memcpy(out->data, bytes, count);
    mongocrypt_py_cleanse(bytes, count); /* handed out once */
    return true;
}

/* -- AES --------------------------------------------------------------------------------------- */

/* This thread's context for mode, made on first use; NULL if OpenSSL cannot make one. */
static EVP_CIPHER_CTX *mongocrypt_py_cipher_ctx(mongocrypt_py_thread_t *state, int mode) {
    if (!state->cipher[mode] && mongocrypt_py_ciphers[mode]) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        /* Bound to its cipher and direction once, no key yet. */
        if (ctx && EVP_CipherInit_ex2(ctx, mongocrypt_py_ciphers[mode], NULL, NULL,
                                      mode != MONGOCRYPT_PY_CBC_DECRYPT, NULL)) {
            state->cipher[mode] = ctx;
        } else {
            EVP_CIPHER_CTX_free(ctx);
        }
    }
    return state->cipher[mode];
}

/* CBC decryption of in -> out under key and iv with this thread's CBC-decrypt context ctx.
 *
 * Why: with OpenSSL 3 each re-key (EVP_CipherInit_ex2 asks the provider for the key and IV
 * lengths) and each EVP_CIPHER_CTX_set_padding is a round of OSSL_PARAM lookups by name
 * (strcmp); profiled on automatic decryption of 20 B values, re-keying and set_padding were ~88%
 * of this hook's time (the decryption itself ~11%) and the hook ~35% of mongocrypt_ctx_finalize. A reply's fields are
 * decrypted under the same few keys, so the context is re-keyed (and padding switched off) only
 * when the key differs from the one it holds (compared in constant time), and the IV is set
 * without re-initialising: CBC decryption's only state between blocks is the previous ciphertext
 * block (P[i] = D(C[i]) xor C[i-1], C[0] = IV), so decrypting the IV as a block first (its output,
 * D(IV) xor the last call's block, is discarded and cleansed) leaves exactly the state a fresh
 * IV would. With padding off, OpenSSL holds no block back, so each update writes all it is given
 * and no final call is needed; a length that is not whole blocks is refused, as the final call
 * would have refused it. Any failure forgets the key, so the next call re-initialises in full. */
static bool mongocrypt_py_cbc_decrypt(mongocrypt_py_thread_t *state, EVP_CIPHER_CTX *ctx,
                                      mongocrypt_binary_t *key, mongocrypt_binary_t *iv,
                                      mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                                      uint32_t *bytes_written, mongocrypt_status_t *status) {
    unsigned char discarded[16];
    int len = 0, iv_len = 0;
    bool ok;
    if (!state->cbc_decrypt_keyed || CRYPTO_memcmp(state->cbc_decrypt_key, key->data, 32) != 0) {
        state->cbc_decrypt_keyed = EVP_CipherInit_ex2(ctx, NULL, key->data, NULL, -1, NULL)
                                   && EVP_CIPHER_CTX_set_padding(ctx, 0);
        if (!state->cbc_decrypt_keyed) {
            return mongocrypt_py_hook_fail(status, "AES-256 failed");
        }
        memcpy(state->cbc_decrypt_key, key->data, 32);
    }
    ok = in->len % 16 == 0 && EVP_DecryptUpdate(ctx, discarded, &iv_len, iv->data, 16)
         && iv_len == 16 && EVP_DecryptUpdate(ctx, out->data, &len, in->data, (int)in->len)
         && (uint32_t)len == in->len;
    mongocrypt_py_cleanse(discarded, sizeof discarded);
    if (!ok) {
        state->cbc_decrypt_keyed = false;
        OPENSSL_cleanse(state->cbc_decrypt_key, sizeof state->cbc_decrypt_key);
        return mongocrypt_py_hook_fail(status, "AES-256 failed");
    }
    *bytes_written = (uint32_t)len;
    return true;
}

/* CTR encryption (its own inverse) of in -> out under key and iv with this thread's CTR context.
 *
 * Why: a Range payload encrypts a token set per edge under the same key, and re-keying
 * (EVP_CipherInit_ex2 with a key) is a round of OSSL_PARAM lookups by name plus a key expansion.
 * When the key is the one the context holds (compared in constant time) only the IV is set:
 * initialising with a NULL key keeps the key schedule and resets the counter and the keystream
 * position, which is all of CTR's state. Any failure forgets the key. */
static bool mongocrypt_py_ctr(mongocrypt_py_thread_t *state, EVP_CIPHER_CTX *ctx,
                              mongocrypt_binary_t *key, mongocrypt_binary_t *iv,
                              mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                              uint32_t *bytes_written, mongocrypt_status_t *status) {
    bool same_key = state->ctr_keyed && !mongocrypt_py_differ(state->ctr_key, key->data, 32);
    int len = 0, tail = 0;
    if (!EVP_CipherInit_ex2(ctx, NULL, same_key ? NULL : key->data, iv->data, -1, NULL)
        || !EVP_CipherUpdate(ctx, out->data, &len, in->data, (int)in->len)
        || !EVP_CipherFinal_ex(ctx, out->data + len, &tail)) {
        state->ctr_keyed = false;
        mongocrypt_py_cleanse(state->ctr_key, sizeof state->ctr_key);
        return mongocrypt_py_hook_fail(status, "AES-256 failed");
    }
    if (!same_key) {
        memcpy(state->ctr_key, key->data, 32);
        state->ctr_keyed = true;
    }
    *bytes_written = (uint32_t)(len + tail);
    return true;
}

/* in -> out under key and iv with this thread's context for mode; *bytes_written = in->len. */
static bool mongocrypt_py_aes(int mode, mongocrypt_binary_t *key, mongocrypt_binary_t *iv,
                              mongocrypt_binary_t *in, mongocrypt_binary_t *out,
                              uint32_t *bytes_written, mongocrypt_status_t *status) {
    mongocrypt_py_thread_t *state = mongocrypt_py_thread();
    EVP_CIPHER_CTX *ctx = state ? mongocrypt_py_cipher_ctx(state, mode) : NULL;
    int len = 0, tail = 0;
    if (!ctx) {
        return mongocrypt_py_hook_fail(status, "could not create an AES-256 cipher context");
    }
    if (key->len != 32 || iv->len != 16 || out->len < in->len || in->len > INT32_MAX) {
        return mongocrypt_py_hook_fail(status, "bad AES-256 key, IV or buffer length");
    }
    if (mode == MONGOCRYPT_PY_CBC_DECRYPT) {
        return mongocrypt_py_cbc_decrypt(state, ctx, key, iv, in, out, bytes_written, status);
    }
    if (mode == MONGOCRYPT_PY_CTR) {
        return mongocrypt_py_ctr(state, ctx, key, iv, in, out, bytes_written, status);
    }
    /* CBC encryption. Re-key without naming the cipher: the context keeps its cipher and
     * direction. Padding is switched off again each time, as OpenSSL does not promise that
     * survives re-keying (libmongocrypt pads itself, and padding here would write past the
     * output). */
    if (!EVP_CipherInit_ex2(ctx, NULL, key->data, iv->data, -1, NULL)
        || !EVP_CIPHER_CTX_set_padding(ctx, 0)
        || !EVP_CipherUpdate(ctx, out->data, &len, in->data, (int)in->len)
        || !EVP_CipherFinal_ex(ctx, out->data + len, &tail)) {
        return mongocrypt_py_hook_fail(status, "AES-256 failed");
    }
    *bytes_written = (uint32_t)(len + tail);
    return true;
}

static bool mongocrypt_py_aes_256_cbc_encrypt(void *unused, mongocrypt_binary_t *key,
                                              mongocrypt_binary_t *iv, mongocrypt_binary_t *in,
                                              mongocrypt_binary_t *out, uint32_t *bytes_written,
                                              mongocrypt_status_t *status) {
    (void)unused;
    return mongocrypt_py_aes(MONGOCRYPT_PY_CBC_ENCRYPT, key, iv, in, out, bytes_written, status);
}

static bool mongocrypt_py_aes_256_cbc_decrypt(void *unused, mongocrypt_binary_t *key,
                                              mongocrypt_binary_t *iv, mongocrypt_binary_t *in,
                                              mongocrypt_binary_t *out, uint32_t *bytes_written,
                                              mongocrypt_status_t *status) {
    (void)unused;
    return mongocrypt_py_aes(MONGOCRYPT_PY_CBC_DECRYPT, key, iv, in, out, bytes_written, status);
}

static bool mongocrypt_py_aes_256_ctr(void *unused, mongocrypt_binary_t *key,
                                      mongocrypt_binary_t *iv, mongocrypt_binary_t *in,
                                      mongocrypt_binary_t *out, uint32_t *bytes_written,
                                      mongocrypt_status_t *status) {
    (void)unused;
    return mongocrypt_py_aes(MONGOCRYPT_PY_CTR, key, iv, in, out, bytes_written, status);
}

/* -- registration ------------------------------------------------------------------------------ */

/* Register every hook on crypt (before mongocrypt_init); false with crypt's status on failure. */
static bool mongocrypt_py_setopt_crypto_hooks(mongocrypt_t *crypt) {
    return mongocrypt_setopt_crypto_hooks(crypt, mongocrypt_py_aes_256_cbc_encrypt,
                                          mongocrypt_py_aes_256_cbc_decrypt, mongocrypt_py_random,
                                          mongocrypt_py_hmac_sha_512, mongocrypt_py_hmac_sha_256,
                                          mongocrypt_py_sha_256, NULL)
           && mongocrypt_setopt_aes_256_ctr(crypt, mongocrypt_py_aes_256_ctr,
                                            mongocrypt_py_aes_256_ctr, NULL);
}

static const char *mongocrypt_py_openssl_version(void) {
    return OpenSSL_version(OPENSSL_VERSION);
}

/* The hooks one by one, for the known-answer tests (tests/unit/test_hooks.py): which names 0..6, the
 * order of mongocrypt_py_hook_names in cdefs/hooks.h. Returns the bytes written, or -1 on error. */
static int64_t mongocrypt_py_hook_run(int which, const uint8_t *key, uint32_t key_len,
                                      const uint8_t *iv, uint32_t iv_len, const uint8_t *in,
                                      uint32_t in_len, uint8_t *out, uint32_t out_len) {
    mongocrypt_binary_t k = {(void *)key, key_len}, v = {(void *)iv, iv_len};
    mongocrypt_binary_t i = {(void *)in, in_len}, o = {out, out_len};
    mongocrypt_status_t *status = mongocrypt_status_new();
    uint32_t written = out_len;
    bool ok = false;
    switch (which) {
    case 0: ok = mongocrypt_py_aes_256_cbc_encrypt(NULL, &k, &v, &i, &o, &written, status); break;
    case 1: ok = mongocrypt_py_aes_256_cbc_decrypt(NULL, &k, &v, &i, &o, &written, status); break;
    case 2: ok = mongocrypt_py_aes_256_ctr(NULL, &k, &v, &i, &o, &written, status); break;
    case 3: ok = mongocrypt_py_hmac_sha_512(NULL, &k, &i, &o, status); written = 64; break;
    case 4: ok = mongocrypt_py_hmac_sha_256(NULL, &k, &i, &o, status); written = 32; break;
    case 5: ok = mongocrypt_py_sha_256(NULL, &i, &o, status); written = 32; break;
    case 6: ok = mongocrypt_py_random(NULL, &o, out_len, status); break;
    }
    mongocrypt_status_destroy(status);
    return ok ? (int64_t)written : -1;
}
