/*
 * The signer interface: private keys live behind struct nhid_signer and
 * are used only through sign calls, so they can later move to another
 * process or an HSM without touching callers (STYLE.md).
 */
#include "crypto/crypto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define MOD "crypto"
/* A named maximum for PEM input (a 4096-bit RSA PKCS#8 PEM is ~3.3 KiB). */
#define SIGNER_PEM_MAX (64u * 1024u)

struct nhid_signer {
    enum nhid_key_type type;
    EVP_PKEY *priv;
    EVP_PKEY *pub; /* public half only, handed out by nhid_signer_public_key() */
};

static const struct {
    enum nhid_key_type type;
    const char *name;
} key_names[] = {
    {NHID_KEY_EC_P256, "ec-p256"},   {NHID_KEY_EC_P384, "ec-p384"},
    {NHID_KEY_ED25519, "ed25519"},   {NHID_KEY_RSA_2048, "rsa-2048"},
    {NHID_KEY_RSA_3072, "rsa-3072"}, {NHID_KEY_RSA_4096, "rsa-4096"},
};

const char *nhid_key_type_name(enum nhid_key_type t)
{
    for (size_t i = 0; i < NHID_ARRAY_LEN(key_names); i++)
        if (key_names[i].type == t)
            return key_names[i].name;
    return "unknown";
}

/*
 * Names: "ec" (bits 0/256 → P-256, 384 → P-384), "p256"/"ec-p256"/"p-256",
 * "p384"/"ec-p384"/"p-384", "ed25519", "rsa" (bits 0 → 2048, or
 * 2048/3072/4096), "rsa-2048"/"rsa-3072"/"rsa-4096". A bits value that
 * contradicts the name is an error; 0 means "the name's default".
 */
int nhid_key_type_parse(const char *name, int bits, enum nhid_key_type *out)
{
    enum nhid_key_type t;

    if (name == NULL || out == NULL)
        return NHID_ERR_INVALID;
    if (strcasecmp(name, "ec") == 0 || strcasecmp(name, "ecdsa") == 0) {
        if (bits == 0 || bits == 256)
            t = NHID_KEY_EC_P256;
        else if (bits == 384)
            t = NHID_KEY_EC_P384;
        else
            return NHID_ERR_INVALID;
    } else if (strcasecmp(name, "p256") == 0 || strcasecmp(name, "ec-p256") == 0 ||
               strcasecmp(name, "p-256") == 0) {
        if (bits != 0 && bits != 256)
            return NHID_ERR_INVALID;
        t = NHID_KEY_EC_P256;
    } else if (strcasecmp(name, "p384") == 0 || strcasecmp(name, "ec-p384") == 0 ||
               strcasecmp(name, "p-384") == 0) {
        if (bits != 0 && bits != 384)
            return NHID_ERR_INVALID;
        t = NHID_KEY_EC_P384;
    } else if (strcasecmp(name, "ed25519") == 0) {
        if (bits != 0 && bits != 256)
            return NHID_ERR_INVALID;
        t = NHID_KEY_ED25519;
    } else if (strcasecmp(name, "rsa") == 0) {
        if (bits == 0 || bits == 2048)
            t = NHID_KEY_RSA_2048;
        else if (bits == 3072)
            t = NHID_KEY_RSA_3072;
        else if (bits == 4096)
            t = NHID_KEY_RSA_4096;
        else
            return NHID_ERR_UNSUPPORTED;
    } else if (strcasecmp(name, "rsa-2048") == 0 || strcasecmp(name, "rsa2048") == 0) {
        if (bits != 0 && bits != 2048)
            return NHID_ERR_INVALID;
        t = NHID_KEY_RSA_2048;
    } else if (strcasecmp(name, "rsa-3072") == 0 || strcasecmp(name, "rsa3072") == 0) {
        if (bits != 0 && bits != 3072)
            return NHID_ERR_INVALID;
        t = NHID_KEY_RSA_3072;
    } else if (strcasecmp(name, "rsa-4096") == 0 || strcasecmp(name, "rsa4096") == 0) {
        if (bits != 0 && bits != 4096)
            return NHID_ERR_INVALID;
        t = NHID_KEY_RSA_4096;
    } else {
        return NHID_ERR_UNSUPPORTED;
    }
    *out = t;
    return NHID_OK;
}

/* A public-only copy of pkey (SubjectPublicKeyInfo round trip). */
static EVP_PKEY *public_copy(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0)
        return NULL;
    p = der;
    pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    return pub;
}

/* Classify a loaded key as one of the supported types. */
static int classify(EVP_PKEY *pkey, enum nhid_key_type *out)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *out = NHID_KEY_ED25519;
        return NHID_OK;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        switch (EVP_PKEY_get_bits(pkey)) {
        case 2048:
            *out = NHID_KEY_RSA_2048;
            return NHID_OK;
        case 3072:
            *out = NHID_KEY_RSA_3072;
            return NHID_OK;
        case 4096:
            *out = NHID_KEY_RSA_4096;
            return NHID_OK;
        default:
            return NHID_ERR_UNSUPPORTED;
        }
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &glen) != 1)
            return NHID_ERR_UNSUPPORTED;
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            *out = NHID_KEY_EC_P256;
            return NHID_OK;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            *out = NHID_KEY_EC_P384;
            return NHID_OK;
        }
    }
    return NHID_ERR_UNSUPPORTED;
}

/* Wrap pkey (ownership taken on success) into a signer. */
static int signer_wrap(EVP_PKEY *pkey, enum nhid_key_type type, struct nhid_signer **out)
{
    struct nhid_signer *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NHID_ERR_NOMEM;
    s->pub = public_copy(pkey);
    if (s->pub == NULL) {
        free(s);
        return NHID_ERR_CRYPTO;
    }
    s->priv = pkey;
    s->type = type;
    *out = s;
    return NHID_OK;
}

int nhid_signer_generate(enum nhid_key_type type, struct nhid_signer **out)
{
    int rc = NHID_OK;
    EVP_PKEY *pkey = NULL;

    if (out == NULL)
        return NHID_ERR_INVALID;
    switch (type) {
    case NHID_KEY_EC_P256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case NHID_KEY_EC_P384:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case NHID_KEY_ED25519:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case NHID_KEY_RSA_2048:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case NHID_KEY_RSA_3072:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case NHID_KEY_RSA_4096:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    default:
        return NHID_ERR_UNSUPPORTED;
    }
    if (pkey == NULL) {
        nhid_error(MOD, "key generation (%s) failed", nhid_key_type_name(type));
        NHID_FAIL(NHID_ERR_CRYPTO);
    }
    NHID_TRY(signer_wrap(pkey, type, out));
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    return rc;
}

/* Never prompt on a terminal for a passphrase: encrypted PEM is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int nhid_signer_from_pem(const char *pem, size_t len, struct nhid_signer **out)
{
    int rc = NHID_OK;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    enum nhid_key_type type;

    if (pem == NULL || out == NULL || len == 0)
        return NHID_ERR_INVALID;
    if (len > SIGNER_PEM_MAX)
        return NHID_ERR_TOO_LARGE;
    bio = BIO_new_mem_buf(pem, (int)len);
    NHID_CHECK_ALLOC(bio);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ERR_clear_error();
    if (pkey == NULL)
        NHID_FAIL(NHID_ERR_INVALID);
    NHID_TRY(classify(pkey, &type));
    NHID_TRY(signer_wrap(pkey, type, out));
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return rc;
}

int nhid_signer_export_pem(const struct nhid_signer *s, char **pem)
{
    int rc = NHID_OK;
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    char *buf = NULL;

    if (s == NULL || pem == NULL)
        return NHID_ERR_INVALID;
    /* A secure-heap memory BIO: the PEM text is cleansed when the BIO is freed. */
    bio = BIO_new(BIO_s_secmem());
    NHID_CHECK_ALLOC(bio);
    if (PEM_write_bio_PrivateKey(bio, s->priv, NULL, NULL, 0, NULL, NULL) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (BIO_get_mem_ptr(bio, &mem) != 1 || mem == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    buf = malloc(mem->length + 1);
    NHID_CHECK_ALLOC(buf);
    memcpy(buf, mem->data, mem->length);
    buf[mem->length] = '\0';
    *pem = buf;
out:
    BIO_free(bio);
    return rc;
}

enum nhid_key_type nhid_signer_type(const struct nhid_signer *s)
{
    return s->type;
}

void *nhid_signer_public_key(const struct nhid_signer *s)
{
    return s ? s->pub : NULL;
}

/* The digest each key type signs with; NULL for Ed25519 (pure EdDSA, RFC 8032). */
static const EVP_MD *signer_md(enum nhid_key_type t)
{
    switch (t) {
    case NHID_KEY_EC_P384:
        return EVP_sha384();
    case NHID_KEY_ED25519:
        return NULL;
    case NHID_KEY_EC_P256:
    case NHID_KEY_RSA_2048:
    case NHID_KEY_RSA_3072:
    case NHID_KEY_RSA_4096:
    default:
        return EVP_sha256();
    }
}

int nhid_signer_sign(const struct nhid_signer *s, const uint8_t *msg, size_t len, uint8_t **sig,
                     size_t *siglen)
{
    int rc = NHID_OK;
    EVP_MD_CTX *mctx = NULL;
    uint8_t *buf = NULL;
    size_t blen = 0;
    static const uint8_t empty[1] = {0};

    if (s == NULL || sig == NULL || siglen == NULL || (msg == NULL && len > 0))
        return NHID_ERR_INVALID;
    if (msg == NULL)
        msg = empty;
    mctx = EVP_MD_CTX_new();
    NHID_CHECK_ALLOC(mctx);
    /* RSA keys default to PKCS#1 v1.5 padding (RFC 8017 §8.2). */
    if (EVP_DigestSignInit(mctx, NULL, signer_md(s->type), NULL, s->priv) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    if (EVP_DigestSign(mctx, NULL, &blen, msg, len) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    buf = malloc(blen);
    NHID_CHECK_ALLOC(buf);
    if (EVP_DigestSign(mctx, buf, &blen, msg, len) != 1)
        NHID_FAIL(NHID_ERR_CRYPTO);
    *sig = buf;
    *siglen = blen;
    buf = NULL;
out:
    if (rc < 0)
        ERR_clear_error();
    free(buf);
    EVP_MD_CTX_free(mctx);
    return rc;
}

int nhid_signer_sign_x509(const struct nhid_signer *s, void *x509)
{
    if (s == NULL || x509 == NULL)
        return NHID_ERR_INVALID;
    if (X509_sign(x509, s->priv, signer_md(s->type)) <= 0) {
        ERR_clear_error();
        return NHID_ERR_CRYPTO;
    }
    return NHID_OK;
}

int nhid_signer_sign_crl(const struct nhid_signer *s, void *x509_crl)
{
    if (s == NULL || x509_crl == NULL)
        return NHID_ERR_INVALID;
    if (X509_CRL_sign(x509_crl, s->priv, signer_md(s->type)) <= 0) {
        ERR_clear_error();
        return NHID_ERR_CRYPTO;
    }
    return NHID_OK;
}

int nhid_signer_sign_req(const struct nhid_signer *s, void *x509_req)
{
    if (s == NULL || x509_req == NULL)
        return NHID_ERR_INVALID;
    if (X509_REQ_sign(x509_req, s->priv, signer_md(s->type)) <= 0) {
        ERR_clear_error();
        return NHID_ERR_CRYPTO;
    }
    return NHID_OK;
}

void nhid_signer_free(struct nhid_signer *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->priv); /* OpenSSL cleanses private key material on free */
    EVP_PKEY_free(s->pub);
    free(s);
}
