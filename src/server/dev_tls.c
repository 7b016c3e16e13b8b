/*
 * dev_tls — a throwaway CA and server certificate for `nhid server --dev`
 * (EC P-256, SAN 127.0.0.1, ::1 and localhost, valid 30 days).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/crypto.h"
#include "server/server_internal.h"

static EVP_PKEY *gen_p256(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return NHID_ERR_CRYPTO;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? NHID_OK : NHID_ERR_CRYPTO;
}

static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn,
                       bool ca, int days)
{
    X509 *c = X509_new();
    if (c == NULL)
        return NULL;
    uint8_t serial[16];
    if (nhid_random_bytes(serial, sizeof(serial)) < 0)
        goto fail;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    if (sn == NULL)
        goto fail;
    X509_set_serialNumber(c, sn);
    ASN1_INTEGER_free(sn);
    X509_set_version(c, 2);
    X509_gmtime_adj(X509_getm_notBefore(c), -300);
    X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400);
    X509_set_pubkey(c, key);
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"nhid dev", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    X509 *iss = issuer ? issuer : c;
    if (ca) {
        if (add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
            add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
            goto fail;
    } else {
        if (add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(c, iss, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(c, iss, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
            add_ext(c, iss, NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost") < 0)
            goto fail;
    }
    if (add_ext(c, iss, NID_subject_key_identifier, "hash") < 0)
        goto fail;
    if (issuer && add_ext(c, iss, NID_authority_key_identifier, "keyid:always") < 0)
        goto fail;
    if (X509_sign(c, issuer_key, EVP_sha256()) == 0)
        goto fail;
    return c;
fail:
    X509_free(c);
    return NULL;
}

static int write_pem(const char *path, X509 *cert, X509 *chain, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return NHID_ERR_IO;
    int ok = 1;
    if (key) {
        fchmod(fileno(f), 0600);
        ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    } else {
        ok = PEM_write_X509(f, cert);
        if (ok && chain)
            ok = PEM_write_X509(f, chain);
    }
    if (fclose(f) != 0)
        ok = 0;
    return ok ? NHID_OK : NHID_ERR_IO;
}

int nhid_dev_tls_generate(const char *dir, char *ca_path, char *cert_path, char *key_path,
                          size_t pathlen)
{
    int rc = NHID_OK;
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    X509 *ca = NULL, *srv = NULL;
    snprintf(ca_path, pathlen, "%s/ca.pem", dir);
    snprintf(cert_path, pathlen, "%s/server.pem", dir);
    snprintf(key_path, pathlen, "%s/server-key.pem", dir);
    struct stat st;
    if (stat(ca_path, &st) == 0 && stat(cert_path, &st) == 0 && stat(key_path, &st) == 0)
        return NHID_OK; /* reuse the dev CA of an earlier run in the same data dir */
    ca_key = gen_p256();
    srv_key = gen_p256();
    if (ca_key == NULL || srv_key == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    ca = make_cert(ca_key, NULL, ca_key, "nhid dev CA", true, 30);
    srv = ca ? make_cert(srv_key, ca, ca_key, "localhost", false, 30) : NULL;
    if (srv == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    NHID_TRY(write_pem(ca_path, ca, NULL, NULL));
    NHID_TRY(write_pem(cert_path, srv, ca, NULL));
    NHID_TRY(write_pem(key_path, NULL, NULL, srv_key));
out:
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    X509_free(ca);
    X509_free(srv);
    return rc;
}
