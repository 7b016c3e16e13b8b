/*
 * crypto — randomness, hashes, HMAC, HKDF, AES-256-GCM, base64 and UUIDs
 * on OpenSSL 3. Shamir sharing is in shamir.c, the signer in signer.c.
 */
#include "crypto/crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define MOD "crypto"

/* ---- algorithm handles, fetched once ------------------------------------ */

/*
 * OpenSSL 3 resolves EVP_sha256()/EVP_aes_256_gcm() through an implicit
 * fetch (a locked provider lookup) on every init; fetching once keeps the
 * hot paths (token HMACs, barrier AEAD) lock-free.
 */
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *alg_sha256;
static EVP_CIPHER *alg_gcm;
static EVP_MAC *alg_hmac;
static EVP_KDF *alg_hkdf;
static pthread_key_t gcm_ctx_key;
static bool gcm_ctx_key_ok;

static void gcm_ctx_destroy(void *p)
{
    EVP_CIPHER_CTX_free(p);
}

static void algs_init(void)
{
    alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    alg_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    gcm_ctx_key_ok = pthread_key_create(&gcm_ctx_key, gcm_ctx_destroy) == 0;
    if (!alg_sha256 || !alg_gcm || !alg_hmac || !alg_hkdf || !gcm_ctx_key_ok)
        nhid_error(MOD, "OpenSSL algorithm fetch failed (is the default provider loaded?)");
}

static void algs_ensure(void)
{
    pthread_once(&algs_once, algs_init);
}

/* ---- randomness --------------------------------------------------------- */

/*
 * Per-thread pools of DRBG output for small draws. Every OpenSSL RAND call
 * takes the DRBG's lock and makes a getpid() system call (its fork check);
 * a login draws five times (token, accessor, three AEAD nonces), and in
 * this VM a system call is a few microseconds. Each thread instead draws
 * RAND_POOL_SIZE bytes at once and hands them out in order, wiping every
 * byte it hands out; a pool is refilled when empty. Two pools keep
 * OpenSSL's split: RAND_priv_bytes for secrets, RAND_bytes for public
 * values (nonces, ids). A fork (pthread_atfork) invalidates every pool so
 * parent and child never share output; a pool is wiped when its thread
 * exits. Larger draws (keys) go to OpenSSL directly.
 */
#define RAND_POOL_SIZE 1024
#define RAND_POOL_MAX_DRAW 64

struct rand_pool {
    uint8_t buf[RAND_POOL_SIZE];
    size_t used; /* bytes handed out (and wiped) from the front */
    unsigned generation;
};

struct rand_pools {
    struct rand_pool priv, pub;
};

static pthread_once_t pools_once = PTHREAD_ONCE_INIT;
static pthread_key_t pools_key;
static bool pools_key_ok;
static atomic_uint pools_generation = 1;
static _Thread_local struct rand_pools *tl_pools;

static void pools_destroy(void *p)
{
    nhid_wipe(p, sizeof(struct rand_pools));
    free(p);
}

static void pools_after_fork(void)
{
    atomic_fetch_add(&pools_generation, 1);
}

static void pools_init(void)
{
    pools_key_ok = pthread_key_create(&pools_key, pools_destroy) == 0;
    if (pthread_atfork(NULL, NULL, pools_after_fork) != 0)
        pools_key_ok = false; /* without the fork guard, no pools */
}

static int rand_direct(uint8_t *p, size_t len, bool priv)
{
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        if ((priv ? RAND_priv_bytes(p, chunk) : RAND_bytes(p, chunk)) != 1) {
            nhid_error(MOD, "%s failed", priv ? "RAND_priv_bytes" : "RAND_bytes");
            return NHID_ERR_CRYPTO;
        }
        p += chunk;
        len -= (size_t)chunk;
    }
    return NHID_OK;
}

static int rand_pooled(void *buf, size_t len, bool priv)
{
    if (len > RAND_POOL_MAX_DRAW)
        return rand_direct(buf, len, priv);
    pthread_once(&pools_once, pools_init);
    if (!pools_key_ok)
        return rand_direct(buf, len, priv);
    if (tl_pools == NULL) {
        struct rand_pools *p = calloc(1, sizeof(*p));
        if (p == NULL || pthread_setspecific(pools_key, p) != 0) {
            free(p);
            return rand_direct(buf, len, priv);
        }
        p->priv.used = p->pub.used = RAND_POOL_SIZE; /* empty: filled on first use */
        tl_pools = p;
    }
    struct rand_pool *pool = priv ? &tl_pools->priv : &tl_pools->pub;
    unsigned gen = atomic_load_explicit(&pools_generation, memory_order_relaxed);
    if (pool->generation != gen || RAND_POOL_SIZE - pool->used < len) {
        int rc = rand_direct(pool->buf, RAND_POOL_SIZE, priv);
        if (rc < 0) {
            nhid_wipe(pool->buf, sizeof(pool->buf));
            pool->used = RAND_POOL_SIZE;
            return rc;
        }
        pool->used = 0;
        pool->generation = gen;
    }
    memcpy(buf, pool->buf + pool->used, len);
    nhid_wipe(pool->buf + pool->used, len);
    pool->used += len;
    return NHID_OK;
}

int nhid_random_bytes(void *buf, size_t len)
{
    return rand_pooled(buf, len, true);
}

int nhid_random_public(void *buf, size_t len)
{
    return rand_pooled(buf, len, false);
}

int nhid_random_token(const char *prefix, char out[NHID_TOKEN_MAX])
{
    int rc = NHID_OK;
    uint8_t raw[32];
    char *enc = NULL;
    size_t plen = prefix ? strlen(prefix) : 0;

    /* 32 bytes are 43 base64url characters. */
    if (plen + 43 + 1 > NHID_TOKEN_MAX)
        NHID_FAIL(NHID_ERR_TOO_LARGE);
    NHID_TRY(nhid_random_bytes(raw, sizeof(raw)));
    NHID_TRY(nhid_base64url_encode(raw, sizeof(raw), &enc));
    if (plen)
        memcpy(out, prefix, plen);
    memcpy(out + plen, enc, 44); /* 43 characters and the NUL */
out:
    nhid_wipe(raw, sizeof(raw));
    if (enc)
        nhid_free_secret_str(enc);
    return rc;
}

int nhid_uuid(char out[37])
{
    uint8_t u[16];
    char hex[33];

    if (nhid_random_public(u, sizeof(u)) < 0)
        return NHID_ERR_CRYPTO;
    /* RFC 4122 §4.4: version 4 in the high nibble of octet 6, variant 10 in octet 8. */
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    nhid_hex_encode(u, sizeof(u), hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
    return NHID_OK;
}

/* ---- hashes, HMAC, HKDF ------------------------------------------------- */

/*
 * The hash functions return void by contract. OpenSSL can only fail here on
 * allocation failure; the output is then filled with random bytes so that a
 * failed computation can never compare equal to a stored digest.
 */
static void digest_failed(const char *what, uint8_t out[NHID_SHA256_LEN])
{
    nhid_error(MOD, "%s failed (out of memory?)", what);
    if (RAND_bytes(out, NHID_SHA256_LEN) != 1)
        memset(out, 0xa5, NHID_SHA256_LEN);
}

void nhid_sha256(const void *data, size_t len, uint8_t out[NHID_SHA256_LEN])
{
    unsigned int mdlen = 0;
    algs_ensure();
    if (!alg_sha256 || EVP_Digest(data, len, out, &mdlen, alg_sha256, NULL) != 1 ||
        mdlen != NHID_SHA256_LEN)
        digest_failed("SHA-256", out);
}

void nhid_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                      uint8_t out[NHID_SHA256_LEN])
{
    EVP_MAC_CTX *ctx = NULL;
    size_t outl = 0;
    static const uint8_t empty_key[1] = {0};
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    algs_ensure();
    /* RFC 2104 allows an empty key; OpenSSL wants a non-NULL pointer. */
    if (key == NULL || keylen == 0) {
        key = empty_key;
        keylen = 0;
    }
    if (!alg_hmac || (ctx = EVP_MAC_CTX_new(alg_hmac)) == NULL ||
        EVP_MAC_init(ctx, key, keylen, params) != 1 || EVP_MAC_update(ctx, data, len) != 1 ||
        EVP_MAC_final(ctx, out, &outl, NHID_SHA256_LEN) != 1 || outl != NHID_SHA256_LEN)
        digest_failed("HMAC-SHA256", out);
    EVP_MAC_CTX_free(ctx);
}

int nhid_hkdf_sha256(const uint8_t *key, size_t keylen, const uint8_t *salt, size_t saltlen,
                     const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
    int rc = NHID_OK;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[5];
    size_t n = 0;

    if (key == NULL || keylen == 0 || out == NULL || outlen == 0 || outlen > 255 * 32)
        return NHID_ERR_INVALID;
    algs_ensure();
    if (!alg_hkdf)
        NHID_FAIL(NHID_ERR_CRYPTO);
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keylen);
    if (salt && saltlen)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
    if (info && infolen)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
    params[n] = OSSL_PARAM_construct_end();
    ctx = EVP_KDF_CTX_new(alg_hkdf);
    NHID_CHECK_ALLOC(ctx);
    if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
out:
    EVP_KDF_CTX_free(ctx);
    return rc;
}

/* ---- AES-256-GCM -------------------------------------------------------- */

/*
 * One EVP_CIPHER_CTX per thread, reused across calls so the data path does
 * not allocate a context per entry. The context is reset after every
 * operation, which cleanses the AES key schedule: no thread keeps a copy of
 * a barrier key after its call returns (sealing must really forget keys).
 */
static EVP_CIPHER_CTX *gcm_ctx(void)
{
    EVP_CIPHER_CTX *ctx;

    algs_ensure();
    if (!alg_gcm || !gcm_ctx_key_ok)
        return NULL;
    ctx = pthread_getspecific(gcm_ctx_key);
    if (ctx == NULL) {
        ctx = EVP_CIPHER_CTX_new();
        if (ctx == NULL)
            return NULL;
        if (pthread_setspecific(gcm_ctx_key, ctx) != 0) {
            EVP_CIPHER_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

int nhid_aead_seal_to(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad, size_t aadlen,
                      const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    int rc = NHID_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *nonce = out, *ct = out + NHID_GCM_NONCE_LEN, *tag = ct + ptlen;
    int n = 0;

    if (key == NULL || out == NULL || (pt == NULL && ptlen > 0) || (aad == NULL && aadlen > 0))
        return NHID_ERR_INVALID;
    if (ptlen > NHID_AEAD_MAX || aadlen > INT_MAX)
        return NHID_ERR_TOO_LARGE;
    /* NIST SP 800-38D §8.2.2: a random 96-bit IV per encryption. */
    if (nhid_random_public(nonce, NHID_GCM_NONCE_LEN) < 0)
        return NHID_ERR_CRYPTO;
    ctx = gcm_ctx();
    if (ctx == NULL)
        return NHID_ERR_NOMEM;
    if (EVP_EncryptInit_ex2(ctx, alg_gcm, key, nonce, NULL) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (ptlen > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)ptlen) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (EVP_EncryptFinal_ex(ctx, ct + ptlen, &n) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, NHID_GCM_TAG_LEN, tag) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
out:
    EVP_CIPHER_CTX_reset(ctx);
    if (rc < 0)
        nhid_wipe(out, ptlen + NHID_AEAD_OVERHEAD);
    return rc;
}

int nhid_aead_open_to(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad, size_t aadlen,
                      const uint8_t *in, size_t inlen, uint8_t *pt)
{
    int rc = NHID_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    size_t ctlen;
    const uint8_t *nonce = in, *ct, *tag;
    int n = 0;

    if (key == NULL || in == NULL || (aad == NULL && aadlen > 0))
        return NHID_ERR_INVALID;
    /* A blob too short to hold nonce and tag cannot be authentic. */
    if (inlen < NHID_AEAD_OVERHEAD)
        return NHID_ERR_TAMPERED;
    ctlen = inlen - NHID_AEAD_OVERHEAD;
    if (ctlen > NHID_AEAD_MAX || aadlen > INT_MAX)
        return NHID_ERR_TOO_LARGE;
    if (pt == NULL && ctlen > 0)
        return NHID_ERR_INVALID;
    ct = in + NHID_GCM_NONCE_LEN;
    tag = ct + ctlen;
    ctx = gcm_ctx();
    if (ctx == NULL)
        return NHID_ERR_NOMEM;
    if (EVP_DecryptInit_ex2(ctx, alg_gcm, key, nonce, NULL) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (ctlen > 0 && EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ctlen) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, NHID_GCM_TAG_LEN, (void *)tag) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    /* SP 800-38D §7.2 step 8: release nothing unless the tag verifies. */
    if (EVP_DecryptFinal_ex(ctx, pt ? pt + ctlen : NULL, &n) != 1)
        NHID_FAIL(NHID_ERR_TAMPERED);
out:
    EVP_CIPHER_CTX_reset(ctx);
    if (rc < 0 && pt)
        nhid_wipe(pt, ctlen);
    return rc;
}

int nhid_aead_seal(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad, size_t aadlen,
                   const uint8_t *pt, size_t ptlen, uint8_t **out, size_t *outlen)
{
    int rc = NHID_OK;
    uint8_t *buf = NULL;

    if (out == NULL || outlen == NULL)
        return NHID_ERR_INVALID;
    if (ptlen > NHID_AEAD_MAX)
        return NHID_ERR_TOO_LARGE;
    buf = malloc(ptlen + NHID_AEAD_OVERHEAD);
    NHID_CHECK_ALLOC(buf);
    NHID_TRY(nhid_aead_seal_to(key, aad, aadlen, pt, ptlen, buf));
    *out = buf;
    *outlen = ptlen + NHID_AEAD_OVERHEAD;
    buf = NULL;
out:
    free(buf);
    return rc;
}

int nhid_aead_open(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad, size_t aadlen,
                   const uint8_t *in, size_t inlen, uint8_t **pt, size_t *ptlen)
{
    int rc = NHID_OK;
    uint8_t *buf = NULL;
    size_t len;

    if (pt == NULL || ptlen == NULL || in == NULL)
        return NHID_ERR_INVALID;
    if (inlen < NHID_AEAD_OVERHEAD)
        return NHID_ERR_TAMPERED;
    len = inlen - NHID_AEAD_OVERHEAD;
    if (len > NHID_AEAD_MAX)
        return NHID_ERR_TOO_LARGE;
    buf = malloc(len ? len : 1);
    NHID_CHECK_ALLOC(buf);
    NHID_TRY(nhid_aead_open_to(key, aad, aadlen, in, inlen, buf));
    *pt = buf;
    *ptlen = len;
    buf = NULL;
out:
    free(buf); /* already wiped by nhid_aead_open_to on failure */
    return rc;
}

/* ---- base64 (RFC 4648) -------------------------------------------------- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_encode(const uint8_t *in, size_t len, const char *alphabet, bool pad, char **out)
{
    size_t full = len / 3, rem = len % 3, olen, o = 0;
    char *buf;

    if (out == NULL || (in == NULL && len > 0))
        return NHID_ERR_INVALID;
    if (len > (SIZE_MAX / 4) * 3 - 3)
        return NHID_ERR_TOO_LARGE;
    olen = full * 4 + (rem ? (pad ? 4 : rem + 1) : 0);
    buf = malloc(olen + 1);
    if (buf == NULL)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < full; i++) {
        uint32_t v = (uint32_t)in[3 * i] << 16 | (uint32_t)in[3 * i + 1] << 8 | in[3 * i + 2];
        buf[o++] = alphabet[(v >> 18) & 63];
        buf[o++] = alphabet[(v >> 12) & 63];
        buf[o++] = alphabet[(v >> 6) & 63];
        buf[o++] = alphabet[v & 63];
    }
    if (rem) {
        uint32_t v = (uint32_t)in[3 * full] << 16;
        if (rem == 2)
            v |= (uint32_t)in[3 * full + 1] << 8;
        buf[o++] = alphabet[(v >> 18) & 63];
        buf[o++] = alphabet[(v >> 12) & 63];
        if (rem == 2)
            buf[o++] = alphabet[(v >> 6) & 63];
        else if (pad)
            buf[o++] = '=';
        if (pad)
            buf[o++] = '=';
    }
    buf[o] = '\0';
    *out = buf;
    return NHID_OK;
}

int nhid_base64_encode(const uint8_t *in, size_t len, char **out)
{
    return b64_encode(in, len, b64_std, true, out);
}

int nhid_base64url_encode(const uint8_t *in, size_t len, char **out)
{
    return b64_encode(in, len, b64_url, false, out);
}

/* Value of one base64 character in either alphabet, or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/*
 * Strict decoder: no whitespace, padding only at the end and only as much
 * as the length requires, and the unused low bits of the last character
 * must be zero (RFC 4648 §3.5, so one value has one encoding).
 */
int nhid_base64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
    size_t n = inlen, rem, olen, o = 0;
    uint8_t *buf;
    uint32_t acc = 0;
    int bits = 0;

    if (out == NULL || outlen == NULL || (in == NULL && inlen > 0))
        return NHID_ERR_INVALID;
    /* Strip padding: at most two '=', and the padded length must be a multiple of 4. */
    if (n > 0 && in[n - 1] == '=') {
        size_t pads = (n > 1 && in[n - 2] == '=') ? 2 : 1;
        if (n % 4 != 0)
            return NHID_ERR_INVALID;
        n -= pads;
    }
    rem = n % 4;
    if (rem == 1)
        return NHID_ERR_INVALID;
    olen = (n / 4) * 3 + (rem ? rem - 1 : 0);
    buf = malloc(olen ? olen : 1);
    if (buf == NULL)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            nhid_free_secret(buf, olen);
            return NHID_ERR_INVALID;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* non-zero leftover bits: not a canonical encoding */
        nhid_free_secret(buf, olen);
        return NHID_ERR_INVALID;
    }
    *out = buf;
    *outlen = o;
    return NHID_OK;
}

/*
 * Keyed hashes of secrets run on every token-authenticated request. A
 * fresh HMAC context costs an allocation, a parameter lookup and the key
 * schedule (two SHA-256 blocks) each time; each thread keeps its last few
 * keys' contexts ready instead and re-initialises them without a new key
 * (OpenSSL reuses the HMAC key when EVP_MAC_init gets NULL). The copies of
 * the keys that identify the slots are wiped on eviction and at thread
 * exit.
 */
#define MAC_CACHE_SLOTS 4

struct mac_slot {
    uint8_t key[32];
    EVP_MAC_CTX *ctx;
};

struct mac_cache {
    struct mac_slot slot[MAC_CACHE_SLOTS];
    unsigned next;
};

static pthread_once_t mac_cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_cache_key;
static bool mac_cache_key_ok;
static _Thread_local struct mac_cache *tl_mac;

static void mac_cache_destroy(void *p)
{
    struct mac_cache *c = p;
    for (unsigned i = 0; i < MAC_CACHE_SLOTS; i++)
        EVP_MAC_CTX_free(c->slot[i].ctx);
    nhid_wipe(c, sizeof(*c));
    free(c);
}

static void mac_cache_init(void)
{
    mac_cache_key_ok = pthread_key_create(&mac_cache_key, mac_cache_destroy) == 0;
}

/* A ready HMAC-SHA256 context for key on this thread, or NULL (then hash the slow way). */
static EVP_MAC_CTX *mac_for_key(const uint8_t key[32])
{
    pthread_once(&mac_cache_once, mac_cache_init);
    algs_ensure();
    if (!mac_cache_key_ok || !alg_hmac)
        return NULL;
    if (tl_mac == NULL) {
        struct mac_cache *c = calloc(1, sizeof(*c));
        if (c == NULL || pthread_setspecific(mac_cache_key, c) != 0) {
            free(c);
            return NULL;
        }
        tl_mac = c;
    }
    for (unsigned i = 0; i < MAC_CACHE_SLOTS; i++) {
        struct mac_slot *sl = &tl_mac->slot[i];
        if (sl->ctx && CRYPTO_memcmp(sl->key, key, 32) == 0)
            return EVP_MAC_init(sl->ctx, NULL, 0, NULL) == 1 ? sl->ctx : NULL;
    }
    struct mac_slot *sl = &tl_mac->slot[tl_mac->next++ % MAC_CACHE_SLOTS];
    EVP_MAC_CTX_free(sl->ctx);
    nhid_wipe(sl->key, sizeof(sl->key));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    sl->ctx = EVP_MAC_CTX_new(alg_hmac);
    if (sl->ctx == NULL || EVP_MAC_init(sl->ctx, key, 32, params) != 1) {
        EVP_MAC_CTX_free(sl->ctx);
        sl->ctx = NULL;
        return NULL;
    }
    memcpy(sl->key, key, 32);
    return sl->ctx;
}

void nhid_secret_hash_hex(const uint8_t key[32], const char *secret, char out[65])
{
    uint8_t mac[NHID_SHA256_LEN];
    size_t outl = 0;
    EVP_MAC_CTX *ctx = mac_for_key(key);
    if (ctx == NULL || EVP_MAC_update(ctx, (const unsigned char *)secret, strlen(secret)) != 1 ||
        EVP_MAC_final(ctx, mac, &outl, sizeof(mac)) != 1 || outl != sizeof(mac))
        nhid_hmac_sha256(key, 32, secret, strlen(secret), mac);
    nhid_hex_encode(mac, sizeof(mac), out);
    nhid_wipe(mac, sizeof(mac));
}
