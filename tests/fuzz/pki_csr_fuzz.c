/*
 * libFuzzer target for CSR parsing (src/pki): nhid_pki_csr_parse()
 * (OpenSSL's parser, PEM or DER, plus the self-signature check) and the
 * decoder-free fast path pki_csr_parse_fast() on the same bytes, both as
 * given and wrapped in PEM armour. Beyond "no crash, no leak, no UB" it
 * checks the contract between the two: whenever the fast path accepts a
 * CSR, the full parser accepts it too and sees the same public key; an
 * error always writes a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"
#include "pki/pki.h"
#include "pki/pki_internal.h"

static void one(const uint8_t *data, size_t size)
{
    char err[256];
    void *req = NULL;
    err[0] = '\0';
    int full = nhid_pki_csr_parse(data, size, &req, err, sizeof(err));
    if (full < 0 && (err[0] == '\0' || req != NULL))
        abort();
    struct pki_csr c;
    err[0] = '\0';
    int fast = pki_csr_parse_fast(data, size, &c, err, sizeof(err));
    if (fast == NHID_ERR_INVALID && err[0] == '\0')
        abort();
    if (fast == NHID_OK) {
        if (full != NHID_OK || EVP_PKEY_eq(c.pkey, X509_REQ_get0_pubkey(req)) != 1)
            abort();
        pki_csr_free(&c);
    }
    X509_REQ_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    /* The same bytes as the body of a PEM block reach the DER walker. */
    if (size > 0 && size < 12000) {
        char *b64 = NULL;
        if (nhid_base64_encode(data, size, &b64) == NHID_OK) {
            size_t len = strlen(b64) + 80;
            char *pem = malloc(len);
            if (pem) {
                int n = snprintf(pem, len,
                                 "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE "
                                 "REQUEST-----\n",
                                 b64);
                one((const uint8_t *)pem, (size_t)n);
                free(pem);
            }
            free(b64);
        }
    }
    return 0;
}
