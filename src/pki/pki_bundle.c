/*
 * pki_bundle — the SPIFFE trust bundle (SPIFFE Trust Domain and Bundle
 * spec §4): GET /v1/spiffe/bundle returns a JWK Set whose keys have
 * "use": "x509-svid" and an "x5c" with the CA certificate, plus
 * "spiffe_sequence" (incremented on every change of the issuer set) and
 * "spiffe_refresh_hint" (seconds).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "pki/pki_internal.h"

static json_t *b64url(const uint8_t *p, size_t n)
{
    char *s = NULL;
    if (nhid_base64url_encode(p, n, &s) < 0)
        return NULL;
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *bn_b64url(EVP_PKEY *pk, const char *name)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
        return NULL;
    size_t n = (size_t)BN_num_bytes(bn);
    uint8_t *buf = malloc(n ? n : 1);
    json_t *j = NULL;
    if (buf) {
        BN_bn2bin(bn, buf);
        j = b64url(buf, n);
        free(buf);
    }
    BN_free(bn);
    return j;
}

/* RFC 7517/7518 JWK of an issuer's public key, with SPIFFE's use and x5c. */
static json_t *issuer_jwk(struct pki_issuer *is)
{
    EVP_PKEY *pk = X509_get0_pubkey(is->cert);
    json_t *k = NULL;
    char *x5c = NULL;
    if (nhid_base64_encode(is->cert_der, is->cert_der_len, &x5c) < 0)
        return NULL;
    if (EVP_PKEY_is_a(pk, "EC")) {
        uint8_t pt[200];
        size_t len = 0;
        if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                            &len) == 1 &&
            len > 1 && pt[0] == 0x04) {
            size_t c = (len - 1) / 2;
            k = json_pack("{s:s, s:s, s:o, s:o}", "kty", "EC", "crv", c == 32 ? "P-256" : "P-384",
                          "x", b64url(pt + 1, c), "y", b64url(pt + 1 + c, c));
        }
    } else if (EVP_PKEY_is_a(pk, "RSA")) {
        k = json_pack("{s:s, s:o, s:o}", "kty", "RSA", "n", bn_b64url(pk, "n"), "e",
                      bn_b64url(pk, "e"));
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        uint8_t raw[32];
        size_t len = sizeof(raw);
        if (EVP_PKEY_get_raw_public_key(pk, raw, &len) == 1)
            k = json_pack("{s:s, s:s, s:o}", "kty", "OKP", "crv", "Ed25519", "x", b64url(raw, len));
    }
    if (k) {
        json_object_set_new(k, "use", json_string("x509-svid"));
        json_object_set_new(k, "kid", json_string(is->id));
        json_object_set_new(k, "x5c", json_pack("[s]", x5c));
    }
    free(x5c);
    return k;
}

int pki_bundle_bump(struct nhid_core *core, struct nhid_txn *txn)
{
    json_t *b = NULL;
    json_int_t seq = 0;
    if (nhid_core_load_json(core, txn, "pki/bundle", &b) == NHID_OK) {
        seq = json_integer_value(json_object_get(b, "sequence"));
        json_decref(b);
    }
    b = json_pack("{s:I}", "sequence", seq + 1);
    if (b == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_core_save_json(core, txn, "pki/bundle", b);
    json_decref(b);
    return rc;
}

int pki_bundle_load(struct pki_state *st, struct nhid_txn *txn)
{
    json_t *b = NULL;
    int rc = nhid_core_load_json(st->core, txn, "pki/bundle", &b);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&st->lock);
    st->bundle_sequence = (uint64_t)json_integer_value(json_object_get(b, "sequence"));
    pthread_rwlock_unlock(&st->lock);
    json_decref(b);
    return NHID_OK;
}

static int h_bundle(struct nhid_request *req, struct nhid_response *resp)
{
    struct pki_state *st = pki_state(req->core);
    json_t *keys = json_array();
    if (keys == NULL)
        return NHID_ERR_NOMEM;
    int64_t now = nhid_now();
    pthread_rwlock_rdlock(&st->lock);
    /* Every unexpired issuer, retired ones included: they still validate live SVIDs. */
    for (size_t i = 0; i < st->n_issuers; i++) {
        if (st->issuers[i]->not_after <= now)
            continue;
        json_t *k = issuer_jwk(st->issuers[i]);
        if (k)
            json_array_append_new(keys, k);
    }
    uint64_t seq = st->bundle_sequence;
    pthread_rwlock_unlock(&st->lock);
    resp->raw = json_pack("{s:o, s:I, s:i}", "keys", keys, "spiffe_sequence", (json_int_t)seq,
                          "spiffe_refresh_hint", PKI_BUNDLE_REFRESH_HINT);
    return resp->raw ? NHID_OK : NHID_ERR_NOMEM;
}

const struct nhid_route pki_bundle_routes[] = {
    {"spiffe/bundle", NHID_M_GET, NHID_ROUTE_UNAUTH, h_bundle, "read"},
};
const size_t pki_n_bundle_routes = NHID_ARRAY_LEN(pki_bundle_routes);
_Static_assert(NHID_ARRAY_LEN(pki_bundle_routes) == PKI_N_BUNDLE_ROUTES,
               "update PKI_N_BUNDLE_ROUTES in pki_internal.h");
