/* The ways our crypto hooks could call OpenSSL, timed per call (bindings/csrc/hooks.c keeps the
 * fastest; docs/performance.md has the figures). Each variant computes the same thing on the same
 * inputs; the key changes every call, as it does inside libmongocrypt.
 *
 *   cc -O2 bench/c/crypto_options.c -lcrypto -o bench/build/crypto_options
 *   bench/build/crypto_options [calls]
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* the low-level SHA API is one of the variants measured */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char key[32], iv[16], in[64], out[128];
static unsigned int outlen;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* HMAC-SHA-256 as libmongocrypt's OpenSSL 3 backend does it: a prototype MAC context duplicated
 * per call. */
static EVP_MAC_CTX *prototype;
static void hmac_dup(void) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(prototype);
    size_t len;
    EVP_MAC_init(ctx, key, sizeof key, NULL);
    EVP_MAC_update(ctx, in, 32);
    EVP_MAC_final(ctx, out, &len, sizeof out);
    EVP_MAC_CTX_free(ctx);
}

/* One reusable MAC context, re-keyed per call. */
static EVP_MAC_CTX *reused_mac;
static void hmac_mac_reused(void) {
    size_t len;
    EVP_MAC_init(reused_mac, key, sizeof key, NULL);
    EVP_MAC_update(reused_mac, in, 32);
    EVP_MAC_final(reused_mac, out, &len, sizeof out);
}

/* OpenSSL's one-shot HMAC(). */
static void hmac_oneshot(void) {
    HMAC(EVP_sha256(), key, sizeof key, in, 32, out, &outlen);
}

/* HMAC from the digest's own state: inner and outer pads hashed with the low-level API, on the
 * stack (no allocation, no shared object). */
static void hmac_lowlevel(void) {
    unsigned char pad[64], inner[32];
    SHA256_CTX ctx;
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < 32; i++) pad[i] ^= key[i];
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, pad, sizeof pad);
    SHA256_Update(&ctx, in, 32);
    SHA256_Final(inner, &ctx);
    for (int i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, pad, sizeof pad);
    SHA256_Update(&ctx, inner, sizeof inner);
    SHA256_Final(out, &ctx);
}

/* The same with a reusable EVP_MD_CTX per pad (EVP_DigestInit_ex2 with the fetched digest). */
static EVP_MD_CTX *md_ctx;
static EVP_MD *sha256;
static void hmac_evp_md(void) {
    unsigned char pad[64], inner[32];
    unsigned int len;
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < 32; i++) pad[i] ^= key[i];
    EVP_DigestInit_ex2(md_ctx, sha256, NULL);
    EVP_DigestUpdate(md_ctx, pad, sizeof pad);
    EVP_DigestUpdate(md_ctx, in, 32);
    EVP_DigestFinal_ex(md_ctx, inner, &len);
    for (int i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
    EVP_DigestInit_ex2(md_ctx, sha256, NULL);
    EVP_DigestUpdate(md_ctx, pad, sizeof pad);
    EVP_DigestUpdate(md_ctx, inner, sizeof inner);
    EVP_DigestFinal_ex(md_ctx, out, &len);
}

/* AES-256-CBC of 64 bytes: a fresh cipher context per call (libmongocrypt's way). */
static EVP_CIPHER *cbc;
static void aes_fresh(void) {
    int len;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(ctx, cbc, NULL, key, iv);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    EVP_EncryptUpdate(ctx, out, &len, in, sizeof in);
    EVP_EncryptFinal_ex(ctx, out + len, &len);
    EVP_CIPHER_CTX_free(ctx);
}

/* One reusable cipher context, re-keyed per call without naming the cipher again. */
static EVP_CIPHER_CTX *reused_cipher;
static void aes_reused(void) {
    int len;
    EVP_EncryptInit_ex2(reused_cipher, NULL, key, iv, NULL);
    EVP_EncryptUpdate(reused_cipher, out, &len, in, sizeof in);
    EVP_EncryptFinal_ex(reused_cipher, out + len, &len);
}

static void run(const char *name, void (*fn)(void), long calls) {
    double start = now();
    for (long i = 0; i < calls; i++) {
        key[i & 31] ^= (unsigned char)i; /* a new key every call */
        fn();
    }
    printf("%-44s %8.0f ns/call\n", name, (now() - start) / (double)calls * 1e9);
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 1000000;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    prototype = EVP_MAC_CTX_new(mac);
    EVP_MAC_CTX_set_params(prototype, params);
    reused_mac = EVP_MAC_CTX_dup(prototype);
    md_ctx = EVP_MD_CTX_new();
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    reused_cipher = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex2(reused_cipher, cbc, key, iv, NULL);
    EVP_CIPHER_CTX_set_padding(reused_cipher, 0);
    run("HMAC-SHA-256: dup prototype EVP_MAC_CTX", hmac_dup, calls);
    run("HMAC-SHA-256: reused EVP_MAC_CTX, re-keyed", hmac_mac_reused, calls);
    run("HMAC-SHA-256: one-shot HMAC()", hmac_oneshot, calls);
    run("HMAC-SHA-256: reused EVP_MD_CTX, pads", hmac_evp_md, calls);
    run("HMAC-SHA-256: low-level SHA256_*, pads", hmac_lowlevel, calls);
    run("AES-256-CBC 64 B: new EVP_CIPHER_CTX", aes_fresh, calls);
    run("AES-256-CBC 64 B: reused EVP_CIPHER_CTX, re-keyed", aes_reused, calls);
    return 0;
}
