/*
 * pki_issue — X509-SVID issuance: pki/sign/:role (CSR in), pki/issue/:role
 * (key generated here and returned once), pki/renew (authenticated by
 * the current certificate over mTLS), the join-token enrollment hook,
 * certificate records and listing.
 *
 * Profile (SPIFFE X509-SVID §4, §5; RFC 5280): exactly one URI SAN (the
 * SPIFFE ID), basicConstraints cA=false, keyUsage critical
 * digitalSignature (+keyEncipherment for RSA), extendedKeyUsage
 * serverAuth+clientAuth, SKI and AKI, a serial with 72 random bits, CRL
 * distribution point and OCSP AIA pointing at nhid.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "identity/identity.h"
#include "pki/pki_internal.h"

#define LIST_MAX 10000

/* ---- serials ---------------------------------------------------------------- */

void pki_serial_hex(const uint8_t *serial, size_t len, char *out)
{
    nhid_hex_encode(serial, len, out);
}

void pki_serial_colon(const uint8_t *serial, size_t len, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (i)
            out[o++] = ':';
        out[o++] = hx[serial[i] >> 4];
        out[o++] = hx[serial[i] & 15];
    }
    out[o] = '\0';
}

int pki_serial_parse(const char *s, uint8_t *out, size_t *len)
{
    char hex[2 * PKI_SERIAL_MAX + 1];
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p == ':' || *p == '-')
            continue;
        if (n >= 2 * PKI_SERIAL_MAX)
            return NHID_ERR_INVALID;
        char c = *p;
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return NHID_ERR_INVALID;
        hex[n++] = c;
    }
    if (n == 0 || n % 2)
        return NHID_ERR_INVALID;
    hex[n] = '\0';
    if (nhid_hex_decode(hex, out, n / 2) < 0)
        return NHID_ERR_INVALID;
    *len = n / 2;
    return NHID_OK;
}

/* ---- CSR and key checks ------------------------------------------------------- */

int nhid_pki_csr_parse(const uint8_t *in, size_t len, void **out, char *err, size_t errlen)
{
    X509_REQ *req = NULL;
    if (in == NULL || len == 0) {
        snprintf(err, errlen, "empty (send a PEM \"CERTIFICATE REQUEST\")");
        return NHID_ERR_INVALID;
    }
    if (len > PKI_CSR_MAX) {
        snprintf(err, errlen, "%zu bytes is more than the %u-byte maximum", len, PKI_CSR_MAX);
        return NHID_ERR_TOO_LARGE;
    }
    if (len >= 5 && memcmp(in, "-----", 5) == 0) {
        BIO *b = BIO_new_mem_buf(in, (int)len);
        if (b == NULL)
            return NHID_ERR_NOMEM;
        req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        const unsigned char *p = in;
        req = d2i_X509_REQ(NULL, &p, (long)len);
        if (req && p != in + len) {
            X509_REQ_free(req);
            req = NULL;
        }
    }
    ERR_clear_error();
    if (req == NULL) {
        snprintf(err, errlen,
                 "not a valid PKCS#10 certificate request (PEM \"CERTIFICATE "
                 "REQUEST\" or DER)");
        return NHID_ERR_INVALID;
    }
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    /* RFC 2986 §3: the request is signed by the key it certifies (proof of possession). */
    if (pk == NULL || X509_REQ_verify(req, pk) != 1) {
        ERR_clear_error();
        X509_REQ_free(req);
        snprintf(err, errlen, "its signature does not verify with its own public key");
        return NHID_ERR_INVALID;
    }
    *out = req;
    return NHID_OK;
}

int nhid_pki_key_check(void *evp_pkey, const char *key_type, int64_t key_bits, char *err,
                       size_t errlen)
{
    EVP_PKEY *pk = evp_pkey;
    const char *have;
    if (pk == NULL) {
        snprintf(err, errlen, "no public key");
        return NHID_ERR_INVALID;
    }
    if (EVP_PKEY_is_a(pk, "EC")) {
        char group[64] = "";
        size_t gl = 0;
        have = "ec";
        if (EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &gl) != 1 ||
            (strcmp(group, "prime256v1") && strcmp(group, "secp384r1"))) {
            snprintf(err, errlen, "EC curve %s is not allowed (use P-256 or P-384)",
                     group[0] ? group : "(explicit parameters)");
            return NHID_ERR_INVALID;
        }
        int bits = strcmp(group, "prime256v1") == 0 ? 256 : 384;
        if (!strcmp(key_type, "ec") && key_bits && key_bits != bits) {
            snprintf(err, errlen, "EC key of %d bits; the role requires %" PRId64, bits, key_bits);
            return NHID_ERR_INVALID;
        }
    } else if (EVP_PKEY_is_a(pk, "RSA")) {
        int bits = EVP_PKEY_get_bits(pk);
        have = "rsa";
        int64_t min = (!strcmp(key_type, "rsa") && key_bits > 2048) ? key_bits : 2048;
        if (bits < min) {
            snprintf(err, errlen, "RSA key of %d bits is too weak (minimum %" PRId64 ")", bits,
                     min);
            return NHID_ERR_INVALID;
        }
        if (bits > 8192) {
            snprintf(err, errlen, "RSA key of %d bits is larger than the 8192-bit maximum", bits);
            return NHID_ERR_INVALID;
        }
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        have = "ed25519";
    } else {
        snprintf(err, errlen,
                 "key type %s is not supported (use ec P-256/P-384, rsa >= 2048 or "
                 "ed25519)",
                 EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
        return NHID_ERR_INVALID;
    }
    if (strcmp(key_type, "any") && strcmp(key_type, have)) {
        snprintf(err, errlen, "key type %s is not allowed by the role (allowed: %s)", have,
                 key_type);
        return NHID_ERR_INVALID;
    }
    return NHID_OK;
}

/* ---- constant extensions -------------------------------------------------------- */

static pthread_once_t ext_once = PTHREAD_ONCE_INIT;
static X509_EXTENSION *ext_bc, *ext_ku_sig, *ext_ku_rsa, *ext_eku;
/* DER of basicConstraints, keyUsage (digitalSignature) and extKeyUsage: the EC leaf's fixed part.
 */
static uint8_t *ext_ec_fixed_der;
static size_t ext_ec_fixed_der_len;

static void ext_init(void)
{
    ext_bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:FALSE");
    ext_ku_sig = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,digitalSignature");
    ext_ku_rsa =
        X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    ext_eku = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth,clientAuth");
    if (ext_bc && ext_ku_sig && ext_eku &&
        pki_ext_der_cat((X509_EXTENSION *[]){ext_bc, ext_ku_sig, ext_eku}, 3, &ext_ec_fixed_der,
                        &ext_ec_fixed_der_len) < 0)
        ext_ec_fixed_der = NULL;
}

/* ---- building an SVID -------------------------------------------------------------- */

struct issue_in {
    const struct pki_role *role;
    EVP_PKEY *pub;
    const char *spiffe_id;
    json_t *dns; /* array of strings */
    json_t *ips; /* array of strings */
    const char *cn;
    int64_t ttl;
    const char *identity; /* name */
    const char *entity_id;
    const struct pki_csr *fast; /* set: take the SPKI from here (no encoder) */
};

struct issue_out {
    X509 *cert; /* built through OpenSSL's objects, or: */
    char *pem;  /* built with the DER writer (build_svid_der) */
    char serial_hex[2 * PKI_SERIAL_MAX + 1];
    char serial_colon[3 * PKI_SERIAL_MAX + 1];
    int64_t not_after;
    bool capped;
};

static int add_general_name(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (g == NULL)
        return NHID_ERR_NOMEM;
    if (type == GEN_IPADD) {
        uint8_t a[16];
        int fam, pl;
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (os == NULL || pki_cidr_parse(value, a, &fam, &pl) < 0 ||
            ASN1_OCTET_STRING_set(os, a, fam == AF_INET ? 4 : 16) != 1) {
            ASN1_OCTET_STRING_free(os);
            GENERAL_NAME_free(g);
            return NHID_ERR_INVALID;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, os);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (s == NULL || ASN1_STRING_set(s, value, -1) != 1) {
            ASN1_IA5STRING_free(s);
            GENERAL_NAME_free(g);
            return NHID_ERR_NOMEM;
        }
        GENERAL_NAME_set0_value(g, type, s);
    }
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return NHID_ERR_NOMEM;
    }
    return NHID_OK;
}

/* Build and sign the certificate with issuer is (caller holds st->lock read). */
/*
 * Serial: 0x01 || 48-bit issuance time in ms || 72 random bits. CA/B BR
 * §7.1 and the issue ask for at least 64 bits from a CSPRNG; the time
 * prefix makes new records' keys (pki/cert/<serial>, the registry's
 * identity/cred/.../<serial>) land at the end of the store's B-tree
 * instead of at random pages, so issuance does not slow down as millions
 * of records accumulate. The time is public anyway (notBefore).
 */
static int svid_serial(uint8_t serial[PKI_SERIAL_LEN])
{
    int rc = nhid_random_bytes(serial, PKI_SERIAL_LEN);
    if (rc < 0)
        return rc;
    uint64_t ms = (uint64_t)nhid_now_ns() / 1000000u;
    serial[0] = 0x01;
    for (int i = 0; i < 6; i++)
        serial[1 + i] = (uint8_t)(ms >> (8 * (5 - i)));
    return NHID_OK;
}

static int build_svid(struct nhid_core *core, struct pki_issuer *is, const struct issue_in *in,
                      struct issue_out *out)
{
    int rc = NHID_OK;
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    GENERAL_NAMES *gens = NULL;
    ASN1_OCTET_STRING *ski = NULL;
    BIGNUM *bn = NULL;
    uint8_t serial[PKI_SERIAL_LEN];
    (void)core;
    pthread_once(&ext_once, ext_init);
    NHID_CHECK_ALLOC(x);
    if (ext_bc == NULL || ext_ku_sig == NULL || ext_ku_rsa == NULL || ext_eku == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    X509_set_version(x, 2);
    NHID_TRY(svid_serial(serial));
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    NHID_CHECK_ALLOC(bn);
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    name = X509_NAME_new();
    NHID_CHECK_ALLOC(name);
    if (in->cn && *in->cn &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)in->cn, -1, -1,
                                   0) != 1)
        NHID_FAIL(NHID_ERR_INVALID);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, X509_get_subject_name(is->cert));
    int64_t now = nhid_now();
    int64_t na = now + in->ttl;
    /* Never past the issuer's notAfter (RFC 5280 §6.1.3 would reject the chain anyway). */
    if (na > is->not_after) {
        na = is->not_after;
        out->capped = true;
    }
    if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - PKI_BACKDATE)) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (in->fast) {
        /* The SPKI as received (RFC 5480): no OSSL_ENCODER round trip. */
        uint8_t *pt = OPENSSL_memdup(in->fast->point, in->fast->point_len);
        NHID_CHECK_ALLOC(pt);
        if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                   V_ASN1_OBJECT, OBJ_nid2obj(in->fast->curve_nid), pt,
                                   (int)in->fast->point_len) != 1) {
            OPENSSL_free(pt);
            NHID_FAIL(NHID_ERR_CRYPTO);
        }
    } else if (X509_set_pubkey(x, in->pub) != 1) {
        NHID_FAIL(NHID_ERR_CRYPTO);
    }
    /* X509-SVID §4.1: cA false; §4.3: digitalSignature (keyEncipherment for RSA key transport). */
    bool rsa = EVP_PKEY_is_a(in->pub, "RSA");
    if (X509_add_ext(x, ext_bc, -1) != 1 ||
        X509_add_ext(x, rsa ? ext_ku_rsa : ext_ku_sig, -1) != 1 ||
        X509_add_ext(x, ext_eku, -1) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    /* X509-SVID §2: exactly one URI SAN. Critical when the subject is empty (RFC 5280 §4.2.1.6). */
    gens = GENERAL_NAMES_new();
    NHID_CHECK_ALLOC(gens);
    NHID_TRY(add_general_name(gens, GEN_URI, in->spiffe_id));
    size_t i;
    json_t *v;
    json_array_foreach(in->dns, i, v)
        NHID_TRY(add_general_name(gens, GEN_DNS, json_string_value(v)));
    json_array_foreach(in->ips, i, v)
        NHID_TRY(add_general_name(gens, GEN_IPADD, json_string_value(v)));
    bool empty_subject = X509_NAME_entry_count(name) == 0;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, empty_subject, 0) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    /* RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING. */
    ASN1_BIT_STRING *pkbits = X509_get0_pubkey_bitstr(x);
    uint8_t kid[20];
    if (pkbits == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    SHA1(pkbits->data, (size_t)pkbits->length, kid);
    ski = ASN1_OCTET_STRING_new();
    if (ski == NULL || ASN1_OCTET_STRING_set(ski, kid, sizeof(kid)) != 1 ||
        X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (X509_add_ext(x, is->ext_aki, -1) != 1 || X509_add_ext(x, is->ext_crldp, -1) != 1 ||
        X509_add_ext(x, is->ext_aia, -1) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    NHID_TRY(nhid_signer_sign_x509(is->signer, x));
    pki_serial_hex(serial, sizeof(serial), out->serial_hex);
    pki_serial_colon(serial, sizeof(serial), out->serial_colon);
    out->not_after = na;
    out->cert = x;
    x = NULL;
out:
    if (rc < 0)
        ERR_clear_error();
    BN_free(bn);
    ASN1_OCTET_STRING_free(ski);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

/*
 * The same X509-SVID as build_svid() for a CSR key taken by the fast path
 * (EC P-256/P-384), written with the DER writer (X.690) and signed through
 * the signer interface: no OpenSSL certificate object, no ASN.1 template
 * encoding or extension copies, no second encoding for the PEM. The
 * fields and extensions are those of build_svid(), in the same order and
 * with the same encodings (the fixed extensions are OpenSSL's own DER);
 * RFC 5280 §4.1.
 */
static int build_svid_der(struct pki_issuer *is, const struct issue_in *in, struct issue_out *out)
{
    int rc = NHID_OK;
    struct der d;
    uint8_t serial[PKI_SERIAL_LEN];
    size_t alen = 0;
    char *b64 = NULL;
    der_init(&d);
    pthread_once(&ext_once, ext_init);
    if (ext_ec_fixed_der == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    NHID_TRY(svid_serial(serial));
    int64_t now = nhid_now();
    int64_t na = now + in->ttl;
    /* Never past the issuer's notAfter (RFC 5280 §6.1.3 would reject the chain anyway). */
    if (na > is->not_after) {
        na = is->not_after;
        out->capped = true;
    }
    const uint8_t *alg = pki_sigalg_der(is->key_type, &alen);
    /* TBSCertificate ::= SEQUENCE { version [0] v3, serialNumber, signature, issuer, validity, ...
     */
    der_raw(&d, "\xa0\x03\x02\x01\x02", 5);
    der_uint(&d, serial, sizeof(serial));
    der_raw(&d, alg, alen);
    der_raw(&d, is->name_der, is->name_der_len);
    size_t at = d.len;
    der_utctime(&d, now - PKI_BACKDATE);
    der_utctime(&d, na);
    der_wrap(&d, at, 0x30);
    /* subject: CN as UTF8String (OpenSSL's default mask), or the empty Name. */
    bool empty_subject = !(in->cn && *in->cn);
    at = d.len;
    if (!empty_subject) {
        static const uint8_t cn_oid[] = {0x06, 0x03, 0x55, 0x04, 0x03};
        der_raw(&d, cn_oid, sizeof(cn_oid));
        der_tlv(&d, 0x0c, in->cn, strlen(in->cn));
        der_wrap(&d, at, 0x30);
        der_wrap(&d, at, 0x31);
    }
    der_wrap(&d, at, 0x30);
    /* subjectPublicKeyInfo as received (RFC 5480 §2): id-ecPublicKey, the named curve, the point.
     */
    static const uint8_t ec_oid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    bool is256 = in->fast->curve_nid == NID_X9_62_prime256v1;
    at = d.len;
    der_raw(&d, ec_oid, sizeof(ec_oid));
    der_raw(&d, is256 ? p256 : p384, is256 ? sizeof(p256) : sizeof(p384));
    der_wrap(&d, at, 0x30);
    size_t bits = d.len;
    der_raw(&d, "", 1); /* no unused bits */
    der_raw(&d, in->fast->point, in->fast->point_len);
    der_wrap(&d, bits, 0x03);
    der_wrap(&d, at, 0x30);
    /* extensions [3]: basicConstraints, keyUsage, extKeyUsage, subjectAltName, SKI, AKI, CRL DP,
     * AIA. */
    size_t exts = d.len;
    der_raw(&d, ext_ec_fixed_der, ext_ec_fixed_der_len);
    /* X509-SVID §2: the one URI SAN; critical when the subject is empty (RFC 5280 §4.2.1.6). */
    size_t ext = d.len;
    der_raw(&d, "\x06\x03\x55\x1d\x11", 5);
    if (empty_subject)
        der_raw(&d, "\x01\x01\xff", 3);
    size_t octets = d.len;
    size_t names = d.len;
    der_tlv(&d, 0x86, in->spiffe_id, strlen(in->spiffe_id));
    size_t i;
    json_t *v;
    json_array_foreach(in->dns, i, v)
        der_tlv(&d, 0x82, json_string_value(v), strlen(json_string_value(v)));
    json_array_foreach(in->ips, i, v)
    {
        uint8_t a[16];
        int fam, pl;
        if (pki_cidr_parse(json_string_value(v), a, &fam, &pl) < 0)
            NHID_FAIL(NHID_ERR_INVALID);
        der_tlv(&d, 0x87, a, fam == AF_INET ? 4 : 16);
    }
    der_wrap(&d, names, 0x30);
    der_wrap(&d, octets, 0x04);
    der_wrap(&d, ext, 0x30);
    /* RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's bits. */
    uint8_t kid[20];
    SHA1(in->fast->point, in->fast->point_len, kid);
    ext = d.len;
    der_raw(&d, "\x06\x03\x55\x1d\x0e\x04\x16\x04\x14", 9);
    der_raw(&d, kid, sizeof(kid));
    der_wrap(&d, ext, 0x30);
    der_raw(&d, is->leaf_ext_der, is->leaf_ext_der_len);
    der_wrap(&d, exts, 0x30);
    der_wrap(&d, exts, 0xa3);
    der_wrap(&d, 0, 0x30);
    /* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } */
    NHID_TRY(der_append_signature(&d, is->signer, is->key_type));
    der_wrap(&d, 0, 0x30);
    if (d.oom)
        NHID_FAIL(NHID_ERR_NOMEM);
    /* PEM (RFC 7468 §2): base64 in lines of 64, as PEM_write_bio_X509 writes it. */
    NHID_TRY(nhid_base64_encode(d.p, d.len, &b64));
    size_t blen = strlen(b64), lines = (blen + 63) / 64;
    static const char head[] = "-----BEGIN CERTIFICATE-----\n",
                      tail[] = "-----END CERTIFICATE-----\n";
    char *pem = malloc(sizeof(head) - 1 + blen + lines + sizeof(tail));
    NHID_CHECK_ALLOC(pem);
    char *p = pem;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (size_t k = 0; k < blen; k += 64) {
        size_t n = blen - k < 64 ? blen - k : 64;
        memcpy(p, b64 + k, n);
        p += n;
        *p++ = '\n';
    }
    memcpy(p, tail, sizeof(tail)); /* with its NUL */
    out->pem = pem;
    pki_serial_hex(serial, sizeof(serial), out->serial_hex);
    pki_serial_colon(serial, sizeof(serial), out->serial_colon);
    out->not_after = na;
out:
    free(b64);
    der_free(&d);
    return rc;
}

/* Store the certificate record, its indexes and the identity's credential record. */
static int record_cert(struct nhid_core *core, struct nhid_txn *txn, struct pki_issuer *is,
                       const struct issue_in *in, const struct issue_out *o, const char *pem)
{
    int rc = NHID_OK;
    char key[600];
    int64_t now = nhid_now();
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "serial", o->serial_hex,
                            "identity", in->identity, "entity_id", in->entity_id, "spiffe_id",
                            in->spiffe_id, "role", in->role->name, "issuer", is->id, "issued",
                            (json_int_t)now, "not_after", (json_int_t)o->not_after);
    NHID_CHECK_ALLOC(rec);
    /* no_store: only the compact record (enough to revoke and to answer OCSP). */
    if (!in->role->no_store)
        json_object_set_new(rec, "certificate", json_string(pem));
    NHID_TRY(nhid_fmt(key, sizeof(key), "pki/cert/%s", o->serial_hex));
    NHID_TRY(nhid_core_save_json(core, txn, key, rec));
    /*
     * Every certificate is a credential of its identity (revoked with it). The
     * registry's own indexes (identity/cred/<entity>/x509/<serial> and
     * identity/cred-expiry/<ts>/...) serve `pki list -identity/-expiring`, so
     * issuance costs three point writes and no index of its own.
     */
    NHID_TRY(nhid_identity_cred_record(core, txn, in->entity_id, PKI_CRED_TYPE, o->serial_hex, now,
                                       o->not_after, NULL));
out:
    json_decref(rec);
    return rc;
}

/* Check the SANs against the role. On refusal, a message naming the field. */
static int check_sans(const struct pki_role *role, const struct issue_in *in, char *err,
                      size_t errlen)
{
    size_t i, j;
    json_t *v, *p;
    bool ok = false;
    char allowed[512];
    size_t used = 0;
    allowed[0] = '\0';
    json_array_foreach(role->allowed_spiffe_ids, j, p)
    {
        if (pki_glob_match(json_string_value(p), in->spiffe_id))
            ok = true;
        if (used < sizeof(allowed))
            used += (size_t)snprintf(allowed + used, sizeof(allowed) - used, "%s%s", j ? ", " : "",
                                     json_string_value(p));
    }
    if (!ok) {
        snprintf(err, errlen, "field \"spiffe_id\": %s is not allowed by role %s (allowed: %s)",
                 in->spiffe_id, role->name, allowed);
        return NHID_ERR_INVALID;
    }
    if (json_array_size(in->dns) + json_array_size(in->ips) > PKI_SANS_MAX) {
        snprintf(err, errlen, "field \"alt_names\"/\"ip_sans\": at most %d names", PKI_SANS_MAX);
        return NHID_ERR_INVALID;
    }
    json_array_foreach(in->dns, i, v)
    {
        const char *d = json_string_value(v);
        ok = false;
        used = 0;
        allowed[0] = '\0';
        json_array_foreach(role->allowed_dns_names, j, p)
        {
            if (pki_glob_match(json_string_value(p), d))
                ok = true;
            if (used < sizeof(allowed))
                used += (size_t)snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
                                         j ? ", " : "", json_string_value(p));
        }
        if (!ok) {
            snprintf(err, errlen,
                     "field \"alt_names\": DNS name %s is not allowed by role %s "
                     "(allowed: %s)",
                     d, role->name, used ? allowed : "none");
            return NHID_ERR_INVALID;
        }
    }
    json_array_foreach(in->ips, i, v)
    {
        const char *ip = json_string_value(v);
        uint8_t a[16];
        int fam, pl;
        if (pki_cidr_parse(ip, a, &fam, &pl) < 0 || strchr(ip, '/')) {
            snprintf(err, errlen, "field \"ip_sans\": \"%s\" is not an IP address", ip);
            return NHID_ERR_INVALID;
        }
        ok = false;
        used = 0;
        allowed[0] = '\0';
        json_array_foreach(role->allowed_ip_sans, j, p)
        {
            uint8_t b[16];
            int f2, p2;
            if (pki_cidr_parse(json_string_value(p), b, &f2, &p2) == 0 && f2 == fam) {
                int full = p2 / 8, rem = p2 % 8;
                bool m = memcmp(a, b, (size_t)full) == 0;
                if (m && rem)
                    m = ((a[full] ^ b[full]) & (0xff << (8 - rem))) == 0;
                if (m)
                    ok = true;
            }
            if (used < sizeof(allowed))
                used += (size_t)snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
                                         j ? ", " : "", json_string_value(p));
        }
        if (!ok) {
            snprintf(err, errlen, "field \"ip_sans\": %s is not allowed by role %s (allowed: %s)",
                     ip, role->name, used ? allowed : "none");
            return NHID_ERR_INVALID;
        }
    }
    return NHID_OK;
}

/*
 * The common path: check, build, sign, record; fill Vault's response
 * fields into *data. err gets a message for 4xx refusals (*status set).
 */
static int issue_common(struct nhid_core *core, struct nhid_txn *txn, struct issue_in *in,
                        json_t **data, int *status, char *err, size_t errlen, bool *capped)
{
    int rc = NHID_OK;
    struct pki_state *st = pki_state(core);
    struct issue_out o = {0};
    char *pem = NULL;
    bool locked = false;
    *status = 400;
    if (st == NULL || !st->ready)
        return NHID_ERR_SEALED;
    NHID_TRY(check_sans(in->role, in, err, errlen) < 0 ? NHID_ERR_INVALID : NHID_OK);
    if (nhid_pki_key_check(in->pub, in->role->key_type[0] ? in->role->key_type : "any",
                           in->role->key_bits, err, errlen) < 0) {
        char tmp[300];
        snprintf(tmp, sizeof(tmp), "%s", err);
        snprintf(err, errlen, "field \"csr\": %s", tmp);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (in->ttl <= 0)
        in->ttl = in->role->ttl > 0 ? in->role->ttl : PKI_DEFAULT_TTL;
    if (in->ttl > in->role->max_ttl) {
        snprintf(err, errlen,
                 "field \"ttl\": %" PRId64 "s is more than the role's max_ttl %" PRId64 "s",
                 in->ttl, in->role->max_ttl);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    pthread_rwlock_rdlock(&st->lock);
    locked = true;
    struct pki_issuer *is = pki_issuer_find(st, in->role->issuer_ref);
    if (is == NULL || is->retired) {
        *status = is ? 400 : 503;
        if (is)
            snprintf(err, errlen,
                     "issuer %s of role %s is retired: point the role at another "
                     "issuer (issuer_ref)",
                     in->role->issuer_ref, in->role->name);
        else
            snprintf(err, errlen,
                     "no issuer \"%s\" for role %s: generate a root first "
                     "(pki/root/generate/internal)",
                     in->role->issuer_ref, in->role->name);
        NHID_FAIL(is ? NHID_ERR_INVALID : NHID_ERR_UNAVAILABLE);
    }
    if (is->not_after <= nhid_now()) {
        snprintf(err, errlen, "issuer %s has expired", is->id);
        *status = 503;
        NHID_FAIL(NHID_ERR_UNAVAILABLE);
    }
    *status = 500;
    if (in->fast) {
        NHID_TRY(build_svid_der(is, in, &o));
        pem = o.pem;
    } else {
        NHID_TRY(build_svid(core, is, in, &o));
        pem = pki_x509_pem(o.cert);
        NHID_CHECK_ALLOC(pem);
    }
    rc = record_cert(core, txn, is, in, &o, pem);
    if (rc < 0) {
        snprintf(err, errlen, "cannot record the certificate: %s", nhid_strerror(rc));
        goto out;
    }
    json_t *chain = json_array();
    json_array_append_new(chain, json_string(is->cert_pem));
    json_array_extend(chain, is->chain_pem);
    *data = json_pack("{s:s, s:s, s:o, s:s, s:I, s:s}", "certificate", pem, "issuing_ca",
                      is->cert_pem, "ca_chain", chain, "serial_number", o.serial_colon,
                      "expiration", (json_int_t)o.not_after, "spiffe_id", in->spiffe_id);
    if (*data == NULL)
        NHID_FAIL(NHID_ERR_NOMEM);
    if (capped)
        *capped = o.capped;
out:
    if (locked)
        pthread_rwlock_unlock(&st->lock);
    free(pem);
    X509_free(o.cert);
    return rc;
}

/* SANs of a CSR (URI, DNS, IP) into the arrays. */
static int csr_sans(X509_REQ *req, json_t *uris, json_t *dns, json_t *ips)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    if (exts == NULL)
        return NHID_OK;
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (gens == NULL)
        return NHID_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && i < PKI_SANS_MAX + 2; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_URI)
            json_array_append_new(
                uris, json_stringn((const char *)g->d.ia5->data, (size_t)g->d.ia5->length));
        else if (g->type == GEN_DNS)
            json_array_append_new(
                dns, json_stringn((const char *)g->d.ia5->data, (size_t)g->d.ia5->length));
        else if (g->type == GEN_IPADD) {
            char buf[64];
            if (g->d.ip->length == 4 || g->d.ip->length == 16) {
                inet_ntop(g->d.ip->length == 4 ? AF_INET : AF_INET6, g->d.ip->data, buf,
                          sizeof(buf));
                json_array_append_new(ips, json_string(buf));
            }
        }
    }
    GENERAL_NAMES_free(gens);
    return NHID_OK;
}

/* Resolve the target identity of a request; authorise the caller for it. */
static int resolve_identity(struct nhid_request *req, struct nhid_response *resp,
                            const struct pki_role *role, const char **spiffe_io, json_t **ident_out)
{
    int rc = NHID_OK;
    json_t *caller = NULL, *ident = NULL;
    char name[NHID_IDENTITY_NAME_MAX + 1];
    const char *spiffe = *spiffe_io;
    if (req->auth.identity[0]) {
        rc = nhid_identity_get_shared(req->core, req->txn, req->auth.identity, &caller);
        if (rc < 0)
            NHID_FAIL(nhid_resp_error(resp, 403, "the calling identity %s is not registered",
                                      req->auth.identity));
    }
    if (spiffe == NULL || *spiffe == '\0') {
        if (caller == NULL)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"spiffe_id\": required (the caller has "
                                      "no identity to default to)"));
        spiffe = pki_jstr(caller, "spiffe_id");
    }
    char msg[300];
    if (nhid_identity_spiffe_valid(spiffe, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"spiffe_id\": %s", msg));
    if (caller && strcmp(pki_jstr(caller, "spiffe_id"), spiffe) == 0) {
        ident = json_incref(caller);
    } else {
        /* Another identity: only the root token, or a role that allows it (policy decided). */
        if (!req->auth.root && !role->allow_other_identities)
            NHID_FAIL(nhid_resp_error(resp, 403,
                                      "permission denied: %s is not the caller's identity; role "
                                      "%s issues only for the caller's own identity (set "
                                      "allow_other_identities=true on the role and permit it in "
                                      "policy)",
                                      spiffe, role->name));
        rc = nhid_identity_by_spiffe(req->core, req->txn, spiffe, name);
        if (rc == NHID_OK)
            rc = nhid_identity_get_shared(req->core, req->txn, name, &ident);
        if (rc == NHID_ERR_NOT_FOUND)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"spiffe_id\": no identity has SPIFFE ID "
                                      "%s (register it under identity/machine/ first)",
                                      spiffe));
        NHID_TRY(rc);
    }
    if (nhid_identity_may_authenticate(ident, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 403, "permission denied: %s", msg));
    *spiffe_io = spiffe;
    *ident_out = ident;
    ident = NULL;
out:
    json_decref(caller);
    json_decref(ident);
    return rc;
}

static const char *const sign_fields[] = {"csr",      "spiffe_id",   "uri_sans", "alt_names",
                                          "ip_sans",  "common_name", "ttl",      "format",
                                          "key_type", "key_bits",    NULL};

/* pki/sign/:role and pki/issue/:role */
static int do_issue(struct nhid_request *req, struct nhid_response *resp, bool sign)
{
    int rc = NHID_OK;
    struct pki_role role = {0};
    const char *role_name = nhid_req_param(req, "role");
    const char *csr_pem = "", *spiffe = NULL, *cn = "";
    json_t *uris = json_array(), *dns = NULL, *ips = NULL, *ident = NULL, *data = NULL;
    X509_REQ *csr = NULL;
    struct pki_csr fast = {0};
    bool use_fast = false;
    struct nhid_signer *keygen = NULL;
    char err[600], *key_pem = NULL;
    int64_t ttl;
    NHID_CHECK_ALLOC(uris);
    NHID_TRY(nhid_body_only(req, resp, sign_fields));
    rc = pki_role_load(req->core, req->txn, role_name, &role);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "unknown role \"%s\" (create it under pki/roles/)",
                                  role_name));
    NHID_TRY(rc);
    NHID_TRY(nhid_body_string(req, resp, "spiffe_id", NULL, &spiffe));
    NHID_TRY(nhid_body_string(req, resp, "common_name", "", &cn));
    NHID_TRY(nhid_body_string_list(req, resp, "alt_names", &dns));
    NHID_TRY(nhid_body_string_list(req, resp, "ip_sans", &ips));
    NHID_TRY(nhid_body_duration(req, resp, "ttl", 0, &ttl));
    if (ttl < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"ttl\": must be positive"));
    if (spiffe == NULL) {
        json_t *u = NULL;
        NHID_TRY(nhid_body_string_list(req, resp, "uri_sans", &u));
        json_array_extend(uris, u);
        json_decref(u);
    }
    EVP_PKEY *pub;
    if (sign) {
        NHID_TRY(nhid_body_string(req, resp, "csr", "", &csr_pem));
        /* Vault's use_csr_sans: SANs in the CSR count as requested when none are given. */
        bool want_csr_sans = spiffe == NULL && json_array_size(uris) == 0 &&
                             json_array_size(dns) == 0 && json_array_size(ips) == 0;
        rc = pki_csr_parse_fast((const uint8_t *)csr_pem, strlen(csr_pem), &fast, err, sizeof(err));
        if (rc == NHID_ERR_INVALID)
            NHID_FAIL(nhid_resp_error(resp, 400, "field \"csr\": %s", err));
        if (rc == NHID_OK && !(want_csr_sans && fast.has_attributes)) {
            use_fast = true;
            pub = fast.pkey;
        } else {
            void *v = NULL;
            rc =
                nhid_pki_csr_parse((const uint8_t *)csr_pem, strlen(csr_pem), &v, err, sizeof(err));
            if (rc < 0)
                NHID_FAIL(nhid_resp_error(resp, rc == NHID_ERR_TOO_LARGE ? 413 : 400,
                                          "field \"csr\": %s", err));
            csr = v;
            if (want_csr_sans)
                csr_sans(csr, uris, dns, ips);
            pub = X509_REQ_get0_pubkey(csr);
        }
        rc = NHID_OK;
    } else {
        const char *kt;
        int64_t bits;
        enum nhid_key_type t;
        NHID_TRY(nhid_body_string(req, resp, "key_type", "ec", &kt));
        NHID_TRY(nhid_body_int(req, resp, "key_bits", 0, 0, 8192, &bits));
        if (nhid_key_type_parse(kt, (int)bits, &t) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"key_type\"/\"key_bits\": \"%s\"/%" PRId64
                                      " is not supported (use ec with 256 or 384, "
                                      "ed25519, or rsa with 2048, 3072 or 4096)",
                                      kt, bits));
        NHID_TRY(nhid_signer_generate(t, &keygen));
        pub = nhid_signer_public_key(keygen);
    }
    if (spiffe == NULL && json_array_size(uris) > 0) {
        if (json_array_size(uris) > 1)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"uri_sans\": an X509-SVID has exactly "
                                      "one URI SAN, the SPIFFE ID (got %zu)",
                                      json_array_size(uris)));
        spiffe = json_string_value(json_array_get(uris, 0));
    }
    NHID_TRY(resolve_identity(req, resp, &role, &spiffe, &ident));
    if (*cn == '\0')
        cn = pki_jstr(ident, "name");
    else {
        bool ok = strcmp(cn, pki_jstr(ident, "name")) == 0;
        size_t i;
        json_t *v;
        json_array_foreach(dns, i, v) if (!strcmp(json_string_value(v), cn)) ok = true;
        if (!ok || strlen(cn) > 64)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"common_name\": \"%s\" must be the "
                                      "identity's name or one of the DNS alt_names",
                                      cn));
    }
    struct issue_in in = {.role = &role,
                          .pub = pub,
                          .spiffe_id = spiffe,
                          .dns = dns,
                          .ips = ips,
                          .cn = cn,
                          .ttl = ttl,
                          .identity = pki_jstr(ident, "name"),
                          .entity_id = pki_jstr(ident, "id"),
                          .fast = use_fast ? &fast : NULL};
    int status;
    bool capped = false;
    rc = issue_common(req->core, req->txn, &in, &data, &status, err, sizeof(err), &capped);
    if (rc < 0 && status < 500)
        NHID_FAIL(nhid_resp_error(resp, status, "%s", err));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, status == 503 ? 503 : 500, "%s",
                                  err[0] ? err : nhid_strerror(rc)));
    if (!sign) {
        NHID_TRY(nhid_signer_export_pem(keygen, &key_pem));
        const char *kt = nhid_key_type_name(nhid_signer_type(keygen));
        json_object_set_new(data, "private_key", json_string(key_pem));
        json_object_set_new(data, "private_key_type",
                            json_string(!strncmp(kt, "ec", 2)    ? "ec"
                                        : !strncmp(kt, "rsa", 3) ? "rsa"
                                                                 : "ed25519"));
    }
    if (capped)
        resp->warnings = json_pack("[s]", "TTL capped at the issuer's notAfter");
    resp->data = data;
    data = NULL;
out:
    nhid_free_secret_str(key_pem);
    json_decref(data);
    json_decref(ident);
    json_decref(uris);
    json_decref(dns);
    json_decref(ips);
    X509_REQ_free(csr);
    pki_csr_free(&fast);
    nhid_signer_free(keygen);
    pki_role_clear(&role);
    return rc;
}

static int h_sign(struct nhid_request *req, struct nhid_response *resp)
{
    return do_issue(req, resp, true);
}

static int h_issue(struct nhid_request *req, struct nhid_response *resp)
{
    return do_issue(req, resp, false);
}

/* ---- renewal over mTLS ------------------------------------------------------------- */

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/*
 * POST pki/renew {csr[, ttl]}: the TLS client certificate (possession of
 * its key proven by the handshake) is the only credential. It must be an
 * unexpired, unrevoked certificate from one of our issuers that we have a
 * record of; the new certificate is for the same identity, role and SANs.
 */
static int h_renew(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"csr", "ttl", NULL};
    int rc = NHID_OK;
    struct pki_state *st = pki_state(req->core);
    X509 *peer = req->peer_cert;
    X509_REQ *csr = NULL;
    struct pki_csr fast = {0};
    json_t *rec = NULL, *ident = NULL, *uris = json_array(), *dns = json_array(),
           *ips = json_array(), *data = NULL;
    struct pki_role role = {0};
    char err[600], key[128], hex[2 * PKI_SERIAL_MAX + 1];
    const char *csr_pem;
    int64_t ttl;
    NHID_CHECK_ALLOC(uris);
    NHID_CHECK_ALLOC(dns);
    NHID_CHECK_ALLOC(ips);
    if (peer == NULL)
        NHID_FAIL(nhid_resp_error(resp, 403,
                                  "permission denied: renewal is authenticated by the "
                                  "current certificate; present it as the TLS client "
                                  "certificate"));
    if (st == NULL || !st->ready)
        NHID_FAIL(NHID_ERR_SEALED);
    /* The issuer pointer is used only under the lock (seal frees issuers). */
    pthread_rwlock_rdlock(&st->lock);
    struct pki_issuer *is = pki_issuer_of(st, peer);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(peer);
    struct pki_revoked rv;
    bool revoked = is && sn->length <= PKI_SERIAL_MAX &&
                   pki_is_revoked(st, is, sn->data, (size_t)sn->length, &rv);
    pthread_rwlock_unlock(&st->lock);
    if (is == NULL)
        NHID_FAIL(nhid_resp_error(resp, 403,
                                  "permission denied: the client certificate was not "
                                  "issued by this nhid"));
    int64_t now = nhid_now();
    if (asn1_unix(X509_get0_notAfter(peer)) <= now || asn1_unix(X509_get0_notBefore(peer)) > now)
        NHID_FAIL(nhid_resp_error(resp, 403,
                                  "permission denied: the client certificate is not "
                                  "valid now (expired?)"));
    if (sn->length > PKI_SERIAL_MAX)
        NHID_FAIL(nhid_resp_error(resp, 403, "permission denied: unknown certificate"));
    if (revoked)
        NHID_FAIL(nhid_resp_error(resp, 403,
                                  "permission denied: the client certificate is "
                                  "revoked"));
    pki_serial_hex(sn->data, (size_t)sn->length, hex);
    NHID_TRY(nhid_fmt(key, sizeof(key), "pki/cert/%s", hex));
    rc = nhid_core_load_json(req->core, req->txn, key, &rec);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(
            nhid_resp_error(resp, 403, "permission denied: no record of certificate %s", hex));
    NHID_TRY(rc);
    /* The revoked set in memory lags a commit by one batch: check the record too. */
    char rkey[128];
    uint8_t *rv_raw = NULL;
    size_t rv_len = 0;
    NHID_TRY(nhid_fmt(rkey, sizeof(rkey), "pki/revoked/%s", hex));
    if (nhid_txn_get(req->txn, rkey, &rv_raw, &rv_len) == NHID_OK) {
        free(rv_raw);
        NHID_FAIL(nhid_resp_error(resp, 403,
                                  "permission denied: the client certificate is "
                                  "revoked"));
    }
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "csr", "", &csr_pem));
    NHID_TRY(nhid_body_duration(req, resp, "ttl", 0, &ttl));
    EVP_PKEY *pub = NULL;
    rc = pki_csr_parse_fast((const uint8_t *)csr_pem, strlen(csr_pem), &fast, err, sizeof(err));
    if (rc == NHID_OK) {
        pub = fast.pkey;
    } else if (rc == NHID_ERR_UNSUPPORTED) {
        void *v = NULL;
        rc = nhid_pki_csr_parse((const uint8_t *)csr_pem, strlen(csr_pem), &v, err, sizeof(err));
        csr = v;
        pub = csr ? X509_REQ_get0_pubkey(csr) : NULL;
    }
    if (rc < 0)
        NHID_FAIL(
            nhid_resp_error(resp, rc == NHID_ERR_TOO_LARGE ? 413 : 400, "field \"csr\": %s", err));
    if (EVP_PKEY_eq(pub, X509_get0_pubkey(peer)) == 1)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"csr\": renewal needs a new key (the CSR "
                                  "reuses the current certificate's key)"));
    rc = pki_role_load(req->core, req->txn, pki_jstr(rec, "role"), &role);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 403, "permission denied: role %s no longer exists",
                                  pki_jstr(rec, "role")));
    NHID_TRY(rc);
    rc = nhid_identity_get(req->core, req->txn, pki_jstr(rec, "identity"), &ident);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 403, "permission denied: identity %s no longer exists",
                                  pki_jstr(rec, "identity")));
    NHID_TRY(rc);
    char msg[300];
    if (nhid_identity_may_authenticate(ident, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 403, "permission denied: %s", msg));
    /* Same SANs as the current certificate. */
    GENERAL_NAMES *gens = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS)
            json_array_append_new(
                dns, json_stringn((const char *)g->d.ia5->data, (size_t)g->d.ia5->length));
        else if (g->type == GEN_IPADD && (g->d.ip->length == 4 || g->d.ip->length == 16)) {
            char buf[64];
            inet_ntop(g->d.ip->length == 4 ? AF_INET : AF_INET6, g->d.ip->data, buf, sizeof(buf));
            json_array_append_new(ips, json_string(buf));
        }
    }
    GENERAL_NAMES_free(gens);
    char cn[128] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
    struct issue_in in = {.role = &role,
                          .pub = pub,
                          .spiffe_id = pki_jstr(ident, "spiffe_id"),
                          .dns = dns,
                          .ips = ips,
                          .cn = cn,
                          .ttl = ttl,
                          .identity = pki_jstr(ident, "name"),
                          .entity_id = pki_jstr(ident, "id"),
                          .fast = csr ? NULL : &fast};
    int status;
    rc = issue_common(req->core, req->txn, &in, &data, &status, err, sizeof(err), NULL);
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, status, "%s", err[0] ? err : nhid_strerror(rc)));
    json_object_set_new(data, "renewed_serial", json_string(hex));
    resp->data = data;
    data = NULL;
    resp->audit_extra = nhid_identity_audit_event(in.identity, in.entity_id, "certificate-renewed",
                                                  "cert", req->remote_addr, false, NULL);
out:
    json_decref(data);
    json_decref(rec);
    json_decref(ident);
    json_decref(uris);
    json_decref(dns);
    json_decref(ips);
    pki_role_clear(&role);
    X509_REQ_free(csr);
    pki_csr_free(&fast);
    return rc;
}

/* core->pki_issue_for_identity: join-token enrollment's first certificate. */
int pki_issue_for_identity(struct nhid_core *core, struct nhid_txn *txn, const char *identity,
                           const char *spiffe_id, const char *csr_pem, json_t **out, char *err,
                           size_t errlen)
{
    int rc = NHID_OK;
    struct pki_role role = {0};
    json_t *ident = NULL, *dns = json_array(), *ips = json_array();
    void *csr = NULL;
    NHID_CHECK_ALLOC(dns);
    NHID_CHECK_ALLOC(ips);
    rc = pki_role_load(core, txn, "default", &role);
    if (rc == NHID_ERR_NOT_FOUND) {
        snprintf(err, errlen, "no pki role \"default\" (generate a root CA first)");
        NHID_FAIL(NHID_ERR_UNAVAILABLE);
    }
    NHID_TRY(rc);
    rc = nhid_identity_get(core, txn, identity, &ident);
    if (rc < 0) {
        snprintf(err, errlen, "identity %s is not registered", identity);
        goto out;
    }
    if (spiffe_id == NULL || *spiffe_id == '\0')
        spiffe_id = pki_jstr(ident, "spiffe_id");
    if (strcmp(spiffe_id, pki_jstr(ident, "spiffe_id")) != 0) {
        snprintf(err, errlen, "field \"spiffe_id\": %s is not identity %s's SPIFFE ID", spiffe_id,
                 identity);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    char e2[300];
    rc = nhid_pki_csr_parse((const uint8_t *)csr_pem, csr_pem ? strlen(csr_pem) : 0, &csr, e2,
                            sizeof(e2));
    if (rc < 0) {
        snprintf(err, errlen, "field \"csr\": %s", e2);
        goto out;
    }
    struct issue_in in = {.role = &role,
                          .pub = X509_REQ_get0_pubkey(csr),
                          .spiffe_id = spiffe_id,
                          .dns = dns,
                          .ips = ips,
                          .cn = identity,
                          .ttl = 0,
                          .identity = identity,
                          .entity_id = pki_jstr(ident, "id")};
    int status;
    rc = issue_common(core, txn, &in, out, &status, err, errlen, NULL);
out:
    X509_REQ_free(csr);
    json_decref(ident);
    json_decref(dns);
    json_decref(ips);
    pki_role_clear(&role);
    return rc;
}

/* ---- records ------------------------------------------------------------------------ */

static int h_cert_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *s = nhid_req_param(req, "serial");
    uint8_t bin[PKI_SERIAL_MAX];
    size_t n;
    char hex[2 * PKI_SERIAL_MAX + 1], key[128];
    json_t *rec = NULL;
    if (strcmp(s, "ca") == 0) {
        struct pki_state *st = pki_state(req->core);
        pthread_rwlock_rdlock(&st->lock);
        struct pki_issuer *is = pki_issuer_find(st, "default");
        if (is)
            resp->data = json_pack("{s:s}", "certificate", is->cert_pem);
        pthread_rwlock_unlock(&st->lock);
        return is ? NHID_OK : nhid_resp_error(resp, 404, "no default issuer");
    }
    if (pki_serial_parse(s, bin, &n) < 0)
        return nhid_resp_error(resp, 400, "serial \"%s\": expected hex, optionally colon-separated",
                               s);
    pki_serial_hex(bin, n, hex);
    snprintf(key, sizeof(key), "pki/cert/%s", hex);
    int rc = nhid_core_load_json(req->core, req->txn, key, &rec);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no certificate with serial %s", s);
    if (rc < 0)
        return rc;
    char colon[3 * PKI_SERIAL_MAX + 1];
    pki_serial_colon(bin, n, colon);
    json_object_set_new(rec, "serial_number", json_string(colon));
    int64_t rt = 0;
    uint8_t *raw = NULL;
    size_t rl = 0;
    snprintf(key, sizeof(key), "pki/revoked/%s", hex);
    if (nhid_txn_get(req->txn, key, &raw, &rl) == NHID_OK) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%.*s", (int)(rl < 127 ? rl : 127), (char *)raw);
        char iss[64];
        long long at = 0;
        if (sscanf(buf, "%63s %lld", iss, &at) == 2)
            rt = at;
        free(raw);
    }
    json_object_set_new(rec, "revocation_time", json_integer(rt));
    json_object_set_new(rec, "revoked", json_boolean(rt != 0));
    resp->data = rec;
    return NHID_OK;
}

struct list_ctx {
    json_t *keys;
    size_t prefix_len;
    bool expiry; /* key tail is "<ts>/<entity>/<type>/<serial>" */
    int64_t until;
    const char *entity; /* filter (expiry scan) */
};

static int list_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct list_ctx *c = arg;
    const char *tail = key + c->prefix_len;
    if (c->expiry) {
        long long ts = strtoll(tail, NULL, 10);
        if (ts > c->until)
            return 1;
        const char *e = strchr(tail, '/');
        const char *t = e ? strchr(e + 1, '/') : NULL;
        const char *id = t ? strchr(t + 1, '/') : NULL;
        if (id == NULL || (size_t)(id - t - 1) != strlen(PKI_CRED_TYPE) ||
            strncmp(t + 1, PKI_CRED_TYPE, strlen(PKI_CRED_TYPE)) != 0)
            return 0;
        if (c->entity && ((size_t)(t - e - 1) != strlen(c->entity) ||
                          strncmp(e + 1, c->entity, strlen(c->entity)) != 0))
            return 0;
        tail = id + 1;
    }
    json_array_append_new(c->keys, json_string(tail));
    return json_array_size(c->keys) >= LIST_MAX;
}

/* LIST pki/certs [?expiring=24h] [&identity=NAME] */
static int h_certs_list(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    char *exp = nhid_req_query(req, "expiring");
    char *ident = nhid_req_query(req, "identity");
    struct list_ctx c = {.keys = json_array()};
    char prefix[300], start[300], derr[200], entity[80] = "";
    json_t *info = json_object(), *keep = json_array();
    NHID_CHECK_ALLOC(c.keys);
    NHID_CHECK_ALLOC(info);
    NHID_CHECK_ALLOC(keep);
    int64_t dur = 0, now = nhid_now();
    bool expiring = exp && *exp;
    if (expiring && nhid_duration_parse(exp, &dur, derr, sizeof(derr)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "expiring: %s", derr));
    if (ident && *ident) {
        char msg[200];
        json_t *rec = NULL;
        if (nhid_identity_name_valid("identity", ident, msg, sizeof(msg)) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
        rc = nhid_identity_get(req->core, req->txn, ident, &rec);
        if (rc == NHID_ERR_NOT_FOUND)
            NHID_FAIL(nhid_resp_error(resp, 404, "no identity %s", ident));
        NHID_TRY(rc);
        snprintf(entity, sizeof(entity), "%s", pki_jstr(rec, "id"));
        json_decref(rec);
    }
    if (expiring) {
        snprintf(prefix, sizeof(prefix), "identity/cred-expiry/");
        snprintf(start, sizeof(start), "identity/cred-expiry/%020" PRId64 "/", now);
        c.prefix_len = strlen(prefix);
        c.expiry = true;
        c.until = now + dur;
        c.entity = entity[0] ? entity : NULL;
        NHID_TRY(nhid_txn_scan(req->txn, start, "identity/cred-expiry0", 0, true, list_cb, &c));
    } else if (entity[0]) {
        NHID_TRY(nhid_fmt(prefix, sizeof(prefix), "identity/cred/%s/%s/", entity, PKI_CRED_TYPE));
        c.prefix_len = strlen(prefix);
        NHID_TRY(nhid_txn_scan_prefix(req->txn, prefix, NULL, LIST_MAX, true, list_cb, &c));
    } else {
        snprintf(prefix, sizeof(prefix), "pki/cert/");
        c.prefix_len = strlen(prefix);
        NHID_TRY(nhid_txn_scan_prefix(req->txn, prefix, NULL, LIST_MAX, true, list_cb, &c));
    }
    /* Details for the listed certificates (at most 1000 are described). */
    size_t i;
    json_t *v;
    json_array_foreach(c.keys, i, v)
    {
        char key[128];
        json_t *rec = NULL;
        snprintf(key, sizeof(key), "pki/cert/%s", json_string_value(v));
        if (nhid_core_load_json(req->core, req->txn, key, &rec) < 0)
            continue;
        int64_t na = json_integer_value(json_object_get(rec, "not_after"));
        json_array_append(keep, v);
        if (i < 1000) {
            char t[NHID_RFC3339_LEN];
            nhid_time_format(na, t);
            json_object_set_new(info, json_string_value(v),
                                json_pack("{s:s, s:s, s:s, s:s, s:I}", "identity",
                                          pki_jstr(rec, "identity"), "spiffe_id",
                                          pki_jstr(rec, "spiffe_id"), "role", pki_jstr(rec, "role"),
                                          "not_after", t, "expiration", (json_int_t)na));
        }
        json_decref(rec);
    }
    resp->data = json_pack("{s:O, s:O}", "keys", keep, "key_info", info);
    if (json_array_size(c.keys) >= LIST_MAX)
        resp->warnings = json_pack("[s]", "more than 10000 certificates match; the list is cut");
out:
    free(exp);
    free(ident);
    json_decref(c.keys);
    json_decref(keep);
    json_decref(info);
    return rc;
}

const struct nhid_route pki_issue_routes[] = {
    {"pki/sign/:role", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_OPTIMISTIC, h_sign, "sign"},
    {"pki/issue/:role", NHID_M_WRITE,
     NHID_ROUTE_WRITE | NHID_ROUTE_OPTIMISTIC | NHID_ROUTE_NO_AUDIT_DATA, h_issue, "issue"},
    {"pki/renew", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_UNAUTH, h_renew, "renew"},
    {"pki/cert/:serial", NHID_M_GET, 0, h_cert_read, "read"},
    {"pki/certs", NHID_M_LIST | NHID_M_GET, 0, h_certs_list, "list"},
};
const size_t pki_n_issue_routes = NHID_ARRAY_LEN(pki_issue_routes);
_Static_assert(NHID_ARRAY_LEN(pki_issue_routes) == PKI_N_ISSUE_ROUTES,
               "update PKI_N_ISSUE_ROUTES in pki_internal.h");
