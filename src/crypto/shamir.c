/*
 * Shamir secret sharing over GF(2^8) with Debian's libgfshare 2.0.
 *
 * Facts about libgfshare this file relies on (checked against its source
 * and by tests/unit/crypto_test.c with an independent GF(2^8) oracle):
 *  - the field is GF(2^8) with the reduction polynomial 0x11d
 *    (x^8 + x^4 + x^3 + x^2 + 1), generator 2 — NOT the AES polynomial 0x11b;
 *  - `threshold` is the number of shares needed (polynomial degree t-1),
 *    the secret is the constant term, share i is the polynomial at x = i;
 *  - the library validates nothing but "no zero x" on encode: it accepts
 *    t = 0, t > n and duplicate x on decode (and then silently produces
 *    garbage), so every check is done here;
 *  - a share number 0 on decode means "share absent", so x = 0 is refused;
 *  - gfshare_ctx_free() overwrites its buffers through gfshare_fill_rand,
 *    so the hook must be set before ANY gfshare call, decode included.
 */
#include "crypto/crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libgfshare.h>
#include <openssl/rand.h>

#define MOD "crypto"
/* A named maximum on the secret size (the barrier shares a 32-byte key). */
#define SHAMIR_SECRET_MAX 4096u

static pthread_once_t gfshare_once = PTHREAD_ONCE_INIT;
static _Thread_local bool gfshare_rand_failed;

/* libgfshare's randomness hook: polynomial coefficients and buffer wiping. */
static void gfshare_rand(unsigned char *buf, unsigned int len)
{
    if (len == 0)
        return;
    if (len > INT_MAX || RAND_priv_bytes(buf, (int)len) != 1) {
        gfshare_rand_failed = true;
        OPENSSL_cleanse(buf, len);
    }
}

static void gfshare_setup(void)
{
    gfshare_fill_rand = gfshare_rand;
}

void nhid_shamir_free_shares(uint8_t **shares, unsigned n, size_t sharelen)
{
    if (shares == NULL)
        return;
    for (unsigned i = 0; i < n; i++)
        nhid_free_secret(shares[i], sharelen);
    free(shares);
}

int nhid_shamir_split(const uint8_t *secret, size_t secretlen, unsigned n, unsigned t,
                      uint8_t ***shares)
{
    int rc = NHID_OK;
    uint8_t **out = NULL, *copy = NULL;
    unsigned char sharenrs[255];
    gfshare_ctx *ctx = NULL;

    if (secret == NULL || shares == NULL || secretlen == 0)
        return NHID_ERR_INVALID;
    if (secretlen > SHAMIR_SECRET_MAX)
        return NHID_ERR_TOO_LARGE;
    if (t < 1 || t > n || n > 255)
        return NHID_ERR_INVALID;
    pthread_once(&gfshare_once, gfshare_setup);

    out = calloc(n, sizeof(*out));
    NHID_CHECK_ALLOC(out);
    for (unsigned i = 0; i < n; i++) {
        out[i] = malloc(secretlen + 1);
        NHID_CHECK_ALLOC(out[i]);
        out[i][0] = (uint8_t)(i + 1);
        sharenrs[i] = (unsigned char)(i + 1);
    }
    if (t == 1) {
        /* Degree-0 polynomial: every share's y is the secret itself. */
        for (unsigned i = 0; i < n; i++)
            memcpy(out[i] + 1, secret, secretlen);
    } else {
        /* gfshare_ctx_enc_setsecret takes a non-const pointer: give it a copy. */
        copy = malloc(secretlen);
        NHID_CHECK_ALLOC(copy);
        memcpy(copy, secret, secretlen);
        gfshare_rand_failed = false;
        ctx = gfshare_ctx_init_enc(sharenrs, n, (unsigned char)t, (unsigned int)secretlen);
        NHID_CHECK_ALLOC(ctx);
        gfshare_ctx_enc_setsecret(ctx, copy);
        if (gfshare_rand_failed) {
            nhid_error(MOD, "random coefficients for Shamir split failed");
            NHID_FAIL(NHID_ERR_CRYPTO);
        }
        for (unsigned i = 0; i < n; i++)
            gfshare_ctx_enc_getshare(ctx, (unsigned char)i, out[i] + 1);
    }
    *shares = out;
    out = NULL;
out:
    if (ctx)
        gfshare_ctx_free(ctx);
    nhid_free_secret(copy, secretlen);
    nhid_shamir_free_shares(out, out ? n : 0, secretlen + 1);
    return rc;
}

int nhid_shamir_combine(const uint8_t *const *shares, unsigned k, size_t secretlen, uint8_t *out)
{
    int rc = NHID_OK;
    unsigned char sharenrs[255];
    gfshare_ctx *ctx = NULL;
    uint8_t *y = NULL;

    if (shares == NULL || out == NULL || k < 1 || secretlen == 0)
        return NHID_ERR_INVALID;
    if (k > 255)
        return NHID_ERR_INVALID; /* only 255 distinct non-zero x exist */
    if (secretlen > SHAMIR_SECRET_MAX)
        return NHID_ERR_TOO_LARGE;
    for (unsigned i = 0; i < k; i++) {
        if (shares[i] == NULL || shares[i][0] == 0)
            return NHID_ERR_INVALID;
        for (unsigned j = 0; j < i; j++)
            if (shares[j][0] == shares[i][0])
                return NHID_ERR_INVALID; /* Lagrange needs distinct x */
        sharenrs[i] = shares[i][0];
    }
    if (k == 1) {
        /* The constant polynomial through one point (right for t = 1). */
        memcpy(out, shares[0] + 1, secretlen);
        return NHID_OK;
    }
    pthread_once(&gfshare_once, gfshare_setup);
    y = malloc(secretlen);
    NHID_CHECK_ALLOC(y);
    ctx = gfshare_ctx_init_dec(sharenrs, k, (unsigned int)secretlen);
    NHID_CHECK_ALLOC(ctx);
    for (unsigned i = 0; i < k; i++) {
        memcpy(y, shares[i] + 1, secretlen);
        gfshare_ctx_dec_giveshare(ctx, (unsigned char)i, y);
    }
    gfshare_ctx_dec_extract(ctx, out);
out:
    if (ctx)
        gfshare_ctx_free(ctx);
    nhid_free_secret(y, secretlen);
    return rc;
}
