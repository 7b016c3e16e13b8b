/*
 * pki_csr — a fast path for the common CSR: an EC P-256/P-384 key signed
 * with ECDSA-SHA256/384 (RFC 2986, RFC 5480, RFC 5758).
 *
 * Why: with OpenSSL 3.0, every d2i of a public key (inside d2i_X509_REQ)
 * builds an OSSL_DECODER context that enumerates every provider's
 * decoders, and X509_set_pubkey() builds an encoder the same way; the two
 * cost more than the ECDSA signature and verification together (see
 * docs/pki.md, "Performance"). This file walks the DER itself with a
 * bounded reader (no allocation from the input), imports the point with
 * EVP_PKEY_fromdata (a key-management call, no decoder), verifies the
 * self-signature, and hands the SubjectPublicKeyInfo parts to the
 * certificate builder, which sets them with X509_PUBKEY_set0_param (no
 * encoder). Anything else (RSA, Ed25519, odd encodings) returns
 * NHID_ERR_UNSUPPORTED and the caller uses OpenSSL's parser.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>

#include "pki/pki_internal.h"

struct rd {
    const uint8_t *p;
    size_t n;
};

/* Read one TLV (definite length, single-byte tag). *whole spans the TLV. */
static int rd_tlv(struct rd *r, uint8_t want, struct rd *content, struct rd *whole)
{
    if (r->n < 2 || r->p[0] != want)
        return -1;
    size_t hl = 2, len = r->p[1];
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 3 || r->n < 2 + k)
            return -1;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | r->p[2 + i];
        if (len < 0x80)
            return -1; /* DER: shortest form (X.690 §10.1) */
        hl += k;
    }
    if (len > r->n - hl)
        return -1;
    if (whole) {
        whole->p = r->p;
        whole->n = hl + len;
    }
    content->p = r->p + hl;
    content->n = len;
    r->p += hl + len;
    r->n -= hl + len;
    return 0;
}

static bool oid_eq(struct rd o, const uint8_t *want, size_t n)
{
    return o.n == n && memcmp(o.p, want, n) == 0;
}

static const uint8_t OID_EC_PUBKEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t OID_ECDSA_SHA384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};

void pki_csr_free(struct pki_csr *c)
{
    if (c == NULL)
        return;
    EVP_PKEY_free(c->pkey);
    free(c->der);
    memset(c, 0, sizeof(*c));
}

/* PEM "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST") to DER. */
static int pem_to_der(const uint8_t *in, size_t len, uint8_t **der, size_t *derlen)
{
    static const char *const heads[] = {"-----BEGIN CERTIFICATE REQUEST-----\n",
                                        "-----BEGIN NEW CERTIFICATE REQUEST-----\n"};
    static const char *const tails[] = {"\n-----END CERTIFICATE REQUEST-----",
                                        "\n-----END NEW CERTIFICATE REQUEST-----"};
    const char *s = (const char *)in;
    const char *body = NULL, *end;
    size_t which = 0;
    for (size_t i = 0; i < NHID_ARRAY_LEN(heads); i++) {
        size_t hl = strlen(heads[i]);
        if (len > hl && memcmp(s, heads[i], hl) == 0) {
            body = s + hl;
            which = i;
            break;
        }
    }
    if (body == NULL)
        return NHID_ERR_UNSUPPORTED;
    /* Only the plain shape: base64 lines, then the matching END line (else OpenSSL's reader). */
    end = memchr(body, '-', len - (size_t)(body - s));
    size_t tl = strlen(tails[which]);
    if (end == NULL || end == body || (size_t)(s + len - (end - 1)) < tl ||
        memcmp(end - 1, tails[which], tl) != 0)
        return NHID_ERR_UNSUPPORTED;
    char buf[PKI_CSR_MAX];
    size_t n = 0;
    for (const char *p = body; p < end; p++) {
        if (*p == '\n' || *p == '\r')
            continue;
        if (n >= sizeof(buf))
            return NHID_ERR_UNSUPPORTED;
        buf[n++] = *p;
    }
    return nhid_base64_decode(buf, n, der, derlen) < 0 ? NHID_ERR_UNSUPPORTED : NHID_OK;
}

static EVP_PKEY *ec_fromdata(const char *group, const uint8_t *pt, size_t len)
{
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, len),
        OSSL_PARAM_construct_end()};
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return pk;
}

/*
 * Public-only P-256 and P-384 keys to copy: EVP_PKEY_fromdata builds the
 * curve's group from its name for every key (~22 us, and the key it makes
 * verifies slower), while a copy of a key of the same curve reuses the
 * built group (~4 us). Made once from a generated key's public point, so
 * no private key is ever carried along.
 */
static EVP_PKEY *g_template[2];
static pthread_once_t g_template_once = PTHREAD_ONCE_INIT;

static void templates_init(void)
{
    static const char *const groups[2] = {"P-256", "P-384"};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *gen = EVP_EC_gen(groups[i]);
        uint8_t pt[PKI_CSR_POINT_MAX];
        size_t len = 0;
        if (gen && EVP_PKEY_get_octet_string_param(gen, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
                                                   &len) == 1)
            g_template[i] = ec_fromdata(groups[i], pt, len);
        EVP_PKEY_free(gen);
    }
    ERR_clear_error();
}

/*
 * The CSR's public key. EVP_PKEY_set1_encoded_public_key decodes the point
 * with EC_POINT_oct2point, which refuses a point not on the curve, as
 * EVP_PKEY_fromdata does.
 */
static EVP_PKEY *ec_import(const char *group, const uint8_t *pt, size_t len)
{
    pthread_once(&g_template_once, templates_init);
    EVP_PKEY *tmpl = g_template[strcmp(group, "P-256") == 0 ? 0 : 1];
    if (tmpl == NULL)
        return ec_fromdata(group, pt, len);
    EVP_PKEY *pk = EVP_PKEY_dup(tmpl);
    if (pk && EVP_PKEY_set1_encoded_public_key(pk, pt, len) != 1) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    ERR_clear_error();
    return pk;
}

int pki_csr_parse_fast(const uint8_t *in, size_t len, struct pki_csr *out, char *err, size_t errlen)
{
    uint8_t *der = NULL;
    size_t derlen = 0;
    int rc = NHID_ERR_UNSUPPORTED;
    struct pki_csr c = {0};
    if (len == 0 || len > PKI_CSR_MAX)
        return NHID_ERR_UNSUPPORTED; /* the full parser reports it */
    if (pem_to_der(in, len, &der, &derlen) < 0)
        return NHID_ERR_UNSUPPORTED;
    struct rd r = {der, derlen}, csr, cri, cri_whole, alg, sig, spki, spki_alg, oid, curve, bits,
              tmp, sigoid;
    /* CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
     */
    if (rd_tlv(&r, 0x30, &csr, NULL) < 0 || r.n != 0)
        goto out;
    if (rd_tlv(&csr, 0x30, &cri, &cri_whole) < 0 || rd_tlv(&csr, 0x30, &alg, NULL) < 0 ||
        rd_tlv(&csr, 0x03, &sig, NULL) < 0 || csr.n != 0)
        goto out;
    /* CertificationRequestInfo ::= SEQUENCE { version 0, subject, subjectPKInfo, [0] attributes }
     */
    if (rd_tlv(&cri, 0x02, &tmp, NULL) < 0 || tmp.n != 1 || tmp.p[0] != 0 ||
        rd_tlv(&cri, 0x30, &tmp, NULL) < 0 || rd_tlv(&cri, 0x30, &spki, NULL) < 0 ||
        rd_tlv(&cri, 0xa0, &tmp, NULL) < 0 || cri.n != 0)
        goto out;
    c.has_attributes = tmp.n > 0;
    /* SubjectPublicKeyInfo (RFC 5480 §2): id-ecPublicKey with a named curve. */
    if (rd_tlv(&spki, 0x30, &spki_alg, NULL) < 0 || rd_tlv(&spki, 0x03, &bits, NULL) < 0 ||
        spki.n != 0 || rd_tlv(&spki_alg, 0x06, &oid, NULL) < 0 ||
        !oid_eq(oid, OID_EC_PUBKEY, sizeof(OID_EC_PUBKEY)) ||
        rd_tlv(&spki_alg, 0x06, &curve, NULL) < 0 || spki_alg.n != 0)
        goto out;
    const char *group;
    const EVP_MD *md;
    size_t coord;
    if (oid_eq(curve, OID_P256, sizeof(OID_P256))) {
        c.curve_nid = NID_X9_62_prime256v1;
        group = "P-256";
        coord = 32;
    } else if (oid_eq(curve, OID_P384, sizeof(OID_P384))) {
        c.curve_nid = NID_secp384r1;
        group = "P-384";
        coord = 48;
    } else {
        goto out; /* other curves: the full path refuses them with a message */
    }
    /* Uncompressed point (RFC 5480 §2.2), no unused bits. */
    if (bits.n != 2 + 2 * coord || bits.p[0] != 0 || bits.p[1] != 0x04)
        goto out;
    memcpy(c.point, bits.p + 1, bits.n - 1);
    c.point_len = bits.n - 1;
    if (rd_tlv(&alg, 0x06, &sigoid, NULL) < 0 || alg.n != 0)
        goto out;
    if (oid_eq(sigoid, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256)))
        md = EVP_sha256();
    else if (oid_eq(sigoid, OID_ECDSA_SHA384, sizeof(OID_ECDSA_SHA384)))
        md = EVP_sha384();
    else
        goto out;
    if (sig.n < 2 || sig.p[0] != 0)
        goto out;
    c.pkey = ec_import(group, c.point, c.point_len);
    if (c.pkey == NULL) {
        snprintf(err, errlen, "its public key is not a valid %s point", group);
        rc = NHID_ERR_INVALID;
        goto out;
    }
    /* RFC 2986 §3: the signature over certificationRequestInfo, with the key it certifies. */
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = mctx && EVP_DigestVerifyInit(mctx, NULL, md, NULL, c.pkey) == 1 &&
             EVP_DigestVerify(mctx, sig.p + 1, sig.n - 1, cri_whole.p, cri_whole.n) == 1;
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errlen, "its signature does not verify with its own public key");
        rc = NHID_ERR_INVALID;
        goto out;
    }
    c.der = der;
    c.der_len = derlen;
    der = NULL;
    *out = c;
    memset(&c, 0, sizeof(c));
    rc = NHID_OK;
out:
    pki_csr_free(&c);
    free(der);
    return rc;
}
