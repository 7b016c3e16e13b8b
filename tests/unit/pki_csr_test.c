/*
 * pki_csr_test — CSR parsing (full and fast paths must agree), key
 * policy checks, OCSP request checks, serial and glob helpers, the DER
 * writer. Negative cases first-class: every refusal names the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/pki.h"
#include "pki/pki_internal.h"

/* A PEM CSR for a new key of `alg`/`param` ("EC"/"P-256", "RSA"/bits, "ED25519"). */
static char *make_csr(const char *alg, const char *curve, size_t bits, EVP_PKEY **key_out)
{
    EVP_PKEY *k;
    if (strcmp(alg, "EC") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    else if (strcmp(alg, "RSA") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, alg);
    assert_non_null(k);
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_REQ_set_subject_name(r, n);
    X509_REQ_set_pubkey(r, k);
    assert_true(X509_REQ_sign(r, k, strcmp(alg, "ED25519") ? EVP_sha256() : NULL) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *p;
    long len = BIO_get_mem_data(b, &p);
    char *out = strndup(p, (size_t)len);
    BIO_free(b);
    X509_NAME_free(n);
    X509_REQ_free(r);
    if (key_out)
        *key_out = k;
    else
        EVP_PKEY_free(k);
    return out;
}

static void test_csr_parse_valid(void **state)
{
    (void)state;
    char err[256];
    const char *algs[][2] = {{"EC", "P-256"}, {"EC", "P-384"}, {"RSA", NULL}, {"ED25519", NULL}};
    for (size_t i = 0; i < 4; i++) {
        char *pem = make_csr(algs[i][0], algs[i][1], 2048, NULL);
        void *req = NULL;
        assert_int_equal(nhid_pki_csr_parse((uint8_t *)pem, strlen(pem), &req, err, sizeof(err)),
                         NHID_OK);
        assert_non_null(req);
        X509_REQ_free(req);
        free(pem);
    }
}

static void test_csr_parse_der(void **state)
{
    (void)state;
    char err[256];
    char *pem = make_csr("EC", "P-256", 0, NULL);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(r, &der);
    void *req = NULL;
    assert_int_equal(nhid_pki_csr_parse(der, (size_t)n, &req, err, sizeof(err)), NHID_OK);
    X509_REQ_free(req);
    /* Trailing bytes after the DER are refused. */
    unsigned char *longer = malloc((size_t)n + 1);
    memcpy(longer, der, (size_t)n);
    longer[n] = 0;
    assert_int_equal(nhid_pki_csr_parse(longer, (size_t)n + 1, &req, err, sizeof(err)),
                     NHID_ERR_INVALID);
    free(longer);
    OPENSSL_free(der);
    X509_REQ_free(r);
    BIO_free(b);
    free(pem);
}

static void test_csr_parse_errors(void **state)
{
    (void)state;
    char err[256];
    void *req = NULL;
    assert_int_equal(nhid_pki_csr_parse((const uint8_t *)"", 0, &req, err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_non_null(strstr(err, "empty"));
    const char *junk =
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    assert_int_equal(
        nhid_pki_csr_parse((const uint8_t *)junk, strlen(junk), &req, err, sizeof(err)),
        NHID_ERR_INVALID);
    assert_non_null(strstr(err, "PKCS#10"));
    size_t big = PKI_CSR_MAX + 1;
    uint8_t *huge = calloc(1, big);
    memset(huge, 'A', big);
    assert_int_equal(nhid_pki_csr_parse(huge, big, &req, err, sizeof(err)), NHID_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "maximum"));
    free(huge);
    assert_null(req);
}

/* The DER of a PEM CSR (caller frees with OPENSSL_free); *n its length. */
static unsigned char *csr_der(const char *pem, int *n)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_REQ *r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    unsigned char *der = NULL;
    *n = i2d_X509_REQ(r, &der);
    assert_true(*n > 0);
    X509_REQ_free(r);
    BIO_free(b);
    return der;
}

/* DER back to a PEM CSR (malloc'd); frees der. */
static char *csr_pem(unsigned char *der, int n)
{
    char *b64 = NULL;
    assert_int_equal(nhid_base64_encode(der, (size_t)n, &b64), NHID_OK);
    size_t len = strlen(b64) + 100;
    char *out = malloc(len);
    snprintf(out, len,
             "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n", b64);
    free(b64);
    OPENSSL_free(der);
    return out;
}

/* Flip one bit of the signature of a PEM CSR. */
static char *corrupt_signature(const char *pem)
{
    int n;
    unsigned char *der = csr_der(pem, &n);
    der[n - 3] ^= 0x01;
    return csr_pem(der, n);
}

/* Flip a bit of the public key's Y coordinate (P-256: BIT STRING 03 42 00 04 || X || Y): off the
 * curve. */
static char *corrupt_point(const char *pem)
{
    int n;
    unsigned char *der = csr_der(pem, &n);
    static const unsigned char head[] = {0x03, 0x42, 0x00, 0x04};
    int at = -1;
    for (int i = 0; i + 4 + 64 <= n && at < 0; i++)
        if (memcmp(der + i, head, sizeof(head)) == 0)
            at = i;
    assert_true(at >= 0);
    der[at + 4 + 63] ^= 0x01;
    return csr_pem(der, n);
}

/* A public key that is not a point of its curve is refused by the fast path's key import. */
static void test_csr_point_off_curve(void **state)
{
    (void)state;
    char err[256];
    char *pem = make_csr("EC", "P-256", 0, NULL);
    char *bad = corrupt_point(pem);
    struct pki_csr c;
    assert_int_equal(pki_csr_parse_fast((uint8_t *)bad, strlen(bad), &c, err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_non_null(strstr(err, "not a valid P-256 point"));
    free(bad);
    free(pem);
}

static void test_csr_bad_signature_both_paths(void **state)
{
    (void)state;
    char err[256];
    const char *curves[] = {"P-256", "P-384"};
    for (size_t i = 0; i < 2; i++) {
        char *pem = make_csr("EC", curves[i], 0, NULL);
        char *bad = corrupt_signature(pem);
        void *req = NULL;
        assert_int_equal(nhid_pki_csr_parse((uint8_t *)bad, strlen(bad), &req, err, sizeof(err)),
                         NHID_ERR_INVALID);
        assert_non_null(strstr(err, "signature does not verify"));
        struct pki_csr c;
        assert_int_equal(pki_csr_parse_fast((uint8_t *)bad, strlen(bad), &c, err, sizeof(err)),
                         NHID_ERR_INVALID);
        assert_non_null(strstr(err, "signature does not verify"));
        free(bad);
        free(pem);
    }
}

static void test_csr_fast_matches_full(void **state)
{
    (void)state;
    char err[256];
    const char *curves[] = {"P-256", "P-384"};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *k = NULL;
        char *pem = make_csr("EC", curves[i], 0, &k);
        struct pki_csr c;
        assert_int_equal(pki_csr_parse_fast((uint8_t *)pem, strlen(pem), &c, err, sizeof(err)),
                         NHID_OK);
        assert_int_equal(EVP_PKEY_eq(c.pkey, k), 1);
        assert_false(c.has_attributes);
        assert_int_equal(c.point_len, i == 0 ? 65u : 97u);
        pki_csr_free(&c);
        pki_csr_free(&c); /* safe twice */
        EVP_PKEY_free(k);
        free(pem);
    }
    /* Other key types are not the fast path's business. */
    const char *algs[] = {"RSA", "ED25519"};
    for (size_t i = 0; i < 2; i++) {
        char *pem = make_csr(algs[i], NULL, 2048, NULL);
        struct pki_csr c;
        assert_int_equal(pki_csr_parse_fast((uint8_t *)pem, strlen(pem), &c, err, sizeof(err)),
                         NHID_ERR_UNSUPPORTED);
        free(pem);
    }
    char *k1 = make_csr("EC", "secp256k1", 0, NULL);
    struct pki_csr c;
    assert_int_equal(pki_csr_parse_fast((uint8_t *)k1, strlen(k1), &c, err, sizeof(err)),
                     NHID_ERR_UNSUPPORTED);
    free(k1);
}

static void test_key_check(void **state)
{
    (void)state;
    char err[256];
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    EVP_PKEY *r1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *r2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_int_equal(nhid_pki_key_check(p256, "any", 0, err, sizeof(err)), NHID_OK);
    assert_int_equal(nhid_pki_key_check(p256, "ec", 256, err, sizeof(err)), NHID_OK);
    assert_int_equal(nhid_pki_key_check(p256, "ec", 384, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "384"));
    assert_int_equal(nhid_pki_key_check(k1, "any", 0, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "P-256 or P-384"));
    assert_int_equal(nhid_pki_key_check(r1024, "any", 0, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "minimum 2048"));
    assert_int_equal(nhid_pki_key_check(r2048, "rsa", 3072, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "minimum 3072"));
    assert_int_equal(nhid_pki_key_check(r2048, "rsa", 0, err, sizeof(err)), NHID_OK);
    assert_int_equal(nhid_pki_key_check(ed, "ed25519", 0, err, sizeof(err)), NHID_OK);
    assert_int_equal(nhid_pki_key_check(ed, "ec", 0, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "allowed: ec"));
    assert_int_equal(nhid_pki_key_check(x25519, "any", 0, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "not supported"));
    assert_int_equal(nhid_pki_key_check(NULL, "any", 0, err, sizeof(err)), NHID_ERR_INVALID);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(r1024);
    EVP_PKEY_free(r2048);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(x25519);
}

static void test_ocsp_request_check(void **state)
{
    (void)state;
    char err[256];
    size_t n = 0;
    int nonce = 0;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ca", -1, -1, 0);
    ASN1_BIT_STRING *key = ASN1_BIT_STRING_new();
    ASN1_BIT_STRING_set(key, (unsigned char *)"key", 3);
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, 42);
    OCSP_CERTID *id = OCSP_cert_id_new(EVP_sha1(), name, key, sn);
    OCSP_request_add0_id(req, id);
    OCSP_request_add1_nonce(req, NULL, 16);
    unsigned char *der = NULL;
    int len = i2d_OCSP_REQUEST(req, &der);
    assert_int_equal(nhid_pki_ocsp_request_check(der, (size_t)len, &n, &nonce, err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(n, 1);
    assert_true(nonce);
    /* Truncated, empty, garbage. */
    assert_int_equal(
        nhid_pki_ocsp_request_check(der, (size_t)len - 1, &n, &nonce, err, sizeof(err)),
        NHID_ERR_INVALID);
    assert_int_equal(nhid_pki_ocsp_request_check(der, 0, &n, &nonce, err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_int_equal(
        nhid_pki_ocsp_request_check((const uint8_t *)"junk", 4, &n, &nonce, err, sizeof(err)),
        NHID_ERR_INVALID);
    OPENSSL_free(der);
    /* More than 16 CertIDs. */
    for (int i = 0; i < PKI_OCSP_REQ_CERTS_MAX; i++)
        OCSP_request_add0_id(req, OCSP_CERTID_dup(id));
    der = NULL;
    len = i2d_OCSP_REQUEST(req, &der);
    assert_int_equal(nhid_pki_ocsp_request_check(der, (size_t)len, &n, &nonce, err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_non_null(strstr(err, "allowed"));
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
    X509_NAME_free(name);
    ASN1_BIT_STRING_free(key);
    ASN1_INTEGER_free(sn);
}

static void test_serials_and_globs(void **state)
{
    (void)state;
    uint8_t b[PKI_SERIAL_MAX];
    size_t n;
    char hex[64], colon[80];
    assert_int_equal(pki_serial_parse("3a:BC:01", b, &n), NHID_OK);
    assert_int_equal(n, 3);
    pki_serial_hex(b, n, hex);
    assert_string_equal(hex, "3abc01");
    pki_serial_colon(b, n, colon);
    assert_string_equal(colon, "3a:bc:01");
    assert_int_equal(pki_serial_parse("3abc0", b, &n), NHID_ERR_INVALID); /* odd */
    assert_int_equal(pki_serial_parse("zz", b, &n), NHID_ERR_INVALID);
    assert_int_equal(pki_serial_parse("", b, &n), NHID_ERR_INVALID);
    assert_int_equal(pki_serial_parse("0102030405060708091011121314151617181920", b, &n), NHID_OK);
    assert_int_equal(pki_serial_parse("010203040506070809101112131415161718192021", b, &n),
                     NHID_ERR_INVALID); /* > 20 octets, RFC 5280 §4.1.2.2 */
    assert_true(pki_glob_match("*.example.com", "a.example.com"));
    assert_true(pki_glob_match("*.example.com", "a.b.example.com"));
    assert_false(pki_glob_match("*.example.com", "example.com"));
    assert_true(pki_glob_match("spiffe://td/*", "spiffe://td/workload/x"));
    assert_false(pki_glob_match("spiffe://td/*", "spiffe://other/workload/x"));
    assert_true(pki_glob_match("exact", "exact"));
    assert_false(pki_glob_match("exact", "exactly"));
    uint8_t a[16];
    int fam, pl;
    assert_int_equal(pki_cidr_parse("10.0.0.0/8", a, &fam, &pl), NHID_OK);
    assert_int_equal(pl, 8);
    assert_int_equal(pki_cidr_parse("::1", a, &fam, &pl), NHID_OK);
    assert_int_equal(pl, 128);
    assert_int_equal(pki_cidr_parse("10.0.0.0/33", a, &fam, &pl), NHID_ERR_INVALID);
    assert_int_equal(pki_cidr_parse("host", a, &fam, &pl), NHID_ERR_INVALID);
}

static void test_der_writer(void **state)
{
    (void)state;
    struct der d;
    der_init(&d);
    uint8_t v[3] = {0x00, 0x80, 0x01};
    der_uint(&d, v, 3); /* leading zero dropped, pad added for the high bit */
    static const uint8_t want1[] = {0x02, 0x03, 0x00, 0x80, 0x01};
    assert_int_equal(d.len, sizeof(want1));
    assert_memory_equal(d.p, want1, sizeof(want1));
    der_free(&d);
    /* Long-form lengths around the boundaries. */
    size_t sizes[] = {127, 128, 255, 256, 65535, 65536};
    for (size_t i = 0; i < NHID_ARRAY_LEN(sizes); i++) {
        der_init(&d);
        uint8_t *buf = calloc(1, sizes[i]);
        der_raw(&d, buf, sizes[i]);
        der_wrap(&d, 0, 0x04);
        const unsigned char *p = d.p;
        ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)d.len);
        assert_non_null(os);
        assert_int_equal((size_t)os->length, sizes[i]);
        assert_ptr_equal(p, d.p + d.len);
        ASN1_OCTET_STRING_free(os);
        free(buf);
        der_free(&d);
    }
    /* Times: UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
    der_init(&d);
    der_utctime(&d, 0);
    assert_int_equal(d.p[0], 0x17);
    assert_memory_equal(d.p + 2, "700101000000Z", 13);
    der_free(&d);
    der_init(&d);
    der_utctime(&d, 2524608000LL); /* 2050-01-01 */
    assert_int_equal(d.p[0], 0x18);
    assert_memory_equal(d.p + 2, "20500101000000Z", 15);
    der_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_parse_valid),
        cmocka_unit_test(test_csr_parse_der),
        cmocka_unit_test(test_csr_parse_errors),
        cmocka_unit_test(test_csr_bad_signature_both_paths),
        cmocka_unit_test(test_csr_point_off_curve),
        cmocka_unit_test(test_csr_fast_matches_full),
        cmocka_unit_test(test_key_check),
        cmocka_unit_test(test_ocsp_request_check),
        cmocka_unit_test(test_serials_and_globs),
        cmocka_unit_test(test_der_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
