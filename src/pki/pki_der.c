/*
 * pki_der — a minimal DER writer (ITU-T X.690 §10) for the structures
 * nhid encodes itself because they must be fast at scale: the CRL's
 * TBSCertList (a million revoked entries are appended, not re-encoded
 * through OpenSSL objects), the OCSP BasicOCSPResponse and the X509-SVIDs
 * of EC CSR keys (pki_issue.c), all signed through the signer interface,
 * which never exposes the key (der_append_signature).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "pki/pki_internal.h"

void der_init(struct der *d)
{
    memset(d, 0, sizeof(*d));
}

void der_free(struct der *d)
{
    free(d->p);
    memset(d, 0, sizeof(*d));
}

static bool der_reserve(struct der *d, size_t n)
{
    if (d->oom)
        return false;
    if (d->len + n <= d->cap)
        return true;
    size_t cap = d->cap ? d->cap : 256;
    while (cap < d->len + n)
        cap *= 2;
    uint8_t *p = realloc(d->p, cap);
    if (p == NULL) {
        d->oom = true;
        return false;
    }
    d->p = p;
    d->cap = cap;
    return true;
}

void der_raw(struct der *d, const void *p, size_t n)
{
    if (n == 0 || !der_reserve(d, n))
        return;
    memcpy(d->p + d->len, p, n);
    d->len += n;
}

static size_t len_octets(size_t n)
{
    if (n < 0x80)
        return 1;
    size_t k = 0;
    for (size_t v = n; v; v >>= 8)
        k++;
    return 1 + k;
}

static void put_len(uint8_t *out, size_t n)
{
    if (n < 0x80) {
        out[0] = (uint8_t)n;
        return;
    }
    size_t k = len_octets(n) - 1;
    out[0] = (uint8_t)(0x80 | k);
    for (size_t i = 0; i < k; i++)
        out[1 + i] = (uint8_t)(n >> (8 * (k - 1 - i)));
}

void der_hdr(struct der *d, uint8_t tag, size_t n)
{
    uint8_t h[10];
    h[0] = tag;
    put_len(h + 1, n);
    der_raw(d, h, 1 + len_octets(n));
}

void der_tlv(struct der *d, uint8_t tag, const void *p, size_t n)
{
    der_hdr(d, tag, n);
    der_raw(d, p, n);
}

void der_wrap(struct der *d, size_t start, uint8_t tag)
{
    if (d->oom)
        return;
    size_t n = d->len - start;
    size_t hl = 1 + len_octets(n);
    if (!der_reserve(d, hl))
        return;
    memmove(d->p + start + hl, d->p + start, n);
    d->p[start] = tag;
    put_len(d->p + start + 1, n);
    d->len += hl;
}

void der_uint(struct der *d, const uint8_t *be, size_t n)
{
    while (n > 1 && be[0] == 0) {
        be++;
        n--;
    }
    if (n == 0) {
        static const uint8_t zero[3] = {0x02, 0x01, 0x00};
        der_raw(d, zero, 3);
        return;
    }
    bool pad = (be[0] & 0x80) != 0; /* keep it positive (X.690 §8.3) */
    der_hdr(d, 0x02, n + pad);
    if (pad)
        der_raw(d, "\0", 1);
    der_raw(d, be, n);
}

void der_uint64(struct der *d, uint64_t v)
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (8 * (7 - i)));
    der_uint(d, be, 8);
}

static void time_fields(int64_t t, struct tm *tm)
{
    time_t tt = (time_t)t;
    gmtime_r(&tt, tm);
}

void der_gentime(struct der *d, int64_t t)
{
    struct tm tm;
    char buf[32];
    time_fields(t, &tm);
    int n = snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    der_tlv(d, 0x18, buf, (size_t)n);
}

/* RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
void der_utctime(struct der *d, int64_t t)
{
    struct tm tm;
    char buf[32];
    time_fields(t, &tm);
    if (tm.tm_year + 1900 >= 2050) {
        der_gentime(d, t);
        return;
    }
    int n = snprintf(buf, sizeof(buf), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    der_tlv(d, 0x17, buf, (size_t)n);
}

const uint8_t *pki_sigalg_der(enum nhid_key_type t, size_t *len)
{
    /* ecdsa-with-SHA256 / SHA384 (RFC 5758 §3.2: parameters absent) */
    static const uint8_t es256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                    0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const uint8_t es384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                    0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
    /* id-Ed25519 (RFC 8410 §3: parameters absent) */
    static const uint8_t ed[] = {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70};
    /* sha256WithRSAEncryption (RFC 4055 §5: parameters NULL) */
    static const uint8_t rs256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                    0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
    switch (t) {
    case NHID_KEY_EC_P256:
        *len = sizeof(es256);
        return es256;
    case NHID_KEY_EC_P384:
        *len = sizeof(es384);
        return es384;
    case NHID_KEY_ED25519:
        *len = sizeof(ed);
        return ed;
    default:
        *len = sizeof(rs256);
        return rs256;
    }
}

int der_append_signature(struct der *d, const struct nhid_signer *signer, enum nhid_key_type t)
{
    uint8_t *sig = NULL;
    size_t siglen = 0, alen = 0;
    if (d->oom)
        return NHID_ERR_NOMEM;
    int rc = nhid_signer_sign(signer, d->p, d->len, &sig, &siglen);
    if (rc < 0)
        return rc;
    const uint8_t *alg = pki_sigalg_der(t, &alen);
    der_raw(d, alg, alen);
    size_t bits = d->len;
    der_raw(d, "", 1); /* no unused bits */
    der_raw(d, sig, siglen);
    der_wrap(d, bits, 0x03);
    free(sig);
    return d->oom ? NHID_ERR_NOMEM : NHID_OK;
}

int pki_ext_der_cat(X509_EXTENSION *const *exts, size_t n, uint8_t **out, size_t *len)
{
    struct der d;
    der_init(&d);
    for (size_t i = 0; i < n; i++) {
        unsigned char *one = NULL;
        int k = i2d_X509_EXTENSION(exts[i], &one);
        if (k <= 0) {
            der_free(&d);
            ERR_clear_error();
            return NHID_ERR_CRYPTO;
        }
        der_raw(&d, one, (size_t)k);
        OPENSSL_free(one);
    }
    if (d.oom) {
        der_free(&d);
        return NHID_ERR_NOMEM;
    }
    *out = d.p;
    *len = d.len;
    return NHID_OK;
}

/* ---- small helpers ------------------------------------------------------ */

char *pki_x509_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b == NULL)
        return NULL;
    if (PEM_write_bio_X509(b, x) == 1) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

int pki_pem_to_x509(const char *pem, X509 **out)
{
    if (pem == NULL)
        return NHID_ERR_INVALID;
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (b == NULL)
        return NHID_ERR_NOMEM;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (x == NULL) {
        ERR_clear_error();
        return NHID_ERR_INVALID;
    }
    *out = x;
    return NHID_OK;
}

const char *pki_jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}
