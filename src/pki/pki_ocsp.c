/*
 * pki_ocsp — the OCSP responder (RFC 6960): GET pki/ocsp/<base64 DER>
 * (§A.1) and POST pki/ocsp (application/ocsp-request). Answers good,
 * revoked (time and reason) or unknown for each CertID, echoes the nonce
 * (RFC 8954), and is signed by the issuer's own key (§2.6: the CA that
 * issued the certificate may sign responses itself), through the signer
 * interface. The BasicOCSPResponse is DER-encoded here (pki_der.c)
 * because OpenSSL's OCSP_basic_sign needs the private key object.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "pki/pki_internal.h"

#define NONCE_MAX 128

/* OCSPResponse with only a status (§4.2.1): malformedRequest 1, internalError 2, unauthorized 6. */
static int status_only(struct nhid_response *resp, uint8_t status)
{
    uint8_t *b = malloc(5);
    if (b == NULL)
        return NHID_ERR_NOMEM;
    b[0] = 0x30;
    b[1] = 0x03;
    b[2] = 0x0a;
    b[3] = 0x01;
    b[4] = status;
    resp->body = b;
    resp->body_len = 5;
    snprintf(resp->content_type, sizeof(resp->content_type), "application/ocsp-response");
    return NHID_OK;
}

static OCSP_REQUEST *parse_request(const uint8_t *in, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len > PKI_OCSP_REQ_MAX) {
        snprintf(err, errlen, "OCSP request of %zu bytes (1 to %u allowed)", len, PKI_OCSP_REQ_MAX);
        return NULL;
    }
    const unsigned char *p = in;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    ERR_clear_error();
    if (req == NULL || p != in + len) {
        OCSP_REQUEST_free(req);
        snprintf(err, errlen, "not a DER OCSPRequest (RFC 6960 §4.1.1)");
        return NULL;
    }
    int n = OCSP_request_onereq_count(req);
    if (n <= 0 || n > PKI_OCSP_REQ_CERTS_MAX) {
        OCSP_REQUEST_free(req);
        snprintf(err, errlen, "%d certificates asked about (1 to %d allowed)", n,
                 PKI_OCSP_REQ_CERTS_MAX);
        return NULL;
    }
    return req;
}

int nhid_pki_ocsp_request_check(const uint8_t *in, size_t len, size_t *n_certs, int *has_nonce,
                                char *err, size_t errlen)
{
    OCSP_REQUEST *req = parse_request(in, len, err, errlen);
    if (req == NULL)
        return NHID_ERR_INVALID;
    for (int i = 0; i < OCSP_request_onereq_count(req); i++) {
        ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
        ASN1_OBJECT *md = NULL;
        ASN1_INTEGER *sn = NULL;
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        if (OCSP_id_get0_info(&nh, &md, &kh, &sn, cid) != 1) {
            OCSP_REQUEST_free(req);
            snprintf(err, errlen, "CertID %d is incomplete", i + 1);
            return NHID_ERR_INVALID;
        }
    }
    *n_certs = (size_t)OCSP_request_onereq_count(req);
    *has_nonce = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1) >= 0;
    OCSP_REQUEST_free(req);
    return NHID_OK;
}

/* Which of our issuers does this CertID name (§4.1.1: hashes of issuer name and key)? */
static struct pki_issuer *match_issuer(struct pki_state *st, OCSP_CERTID *cid, ASN1_INTEGER **sn)
{
    ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
    ASN1_OBJECT *md = NULL;
    if (OCSP_id_get0_info(&nh, &md, &kh, sn, cid) != 1 || nh == NULL || kh == NULL)
        return NULL;
    int nid = OBJ_obj2nid(md);
    for (size_t i = 0; i < st->n_issuers; i++) {
        struct pki_issuer *is = st->issuers[i];
        const uint8_t *n1, *k1;
        size_t l;
        if (nid == NID_sha1) {
            n1 = is->name_sha1;
            k1 = is->key_sha1;
            l = 20;
        } else if (nid == NID_sha256) {
            n1 = is->name_sha256;
            k1 = is->key_sha256;
            l = 32;
        } else {
            return NULL;
        }
        if ((size_t)nh->length == l && (size_t)kh->length == l && memcmp(nh->data, n1, l) == 0 &&
            memcmp(kh->data, k1, l) == 0)
            return is;
    }
    return NULL;
}

enum cert_status { ST_GOOD, ST_REVOKED, ST_UNKNOWN };

static int exists_cb(const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    (void)arg;
    return NHID_OK;
}

/* Status of serial under issuer: memory first, then the committed records in the snapshot. */
static enum cert_status lookup(struct nhid_request *req, struct pki_state *st,
                               struct pki_issuer *is, ASN1_INTEGER *sn, struct pki_revoked *rv)
{
    if (sn->length <= 0 || sn->length > PKI_SERIAL_MAX)
        return ST_UNKNOWN;
    if (pki_is_revoked(st, is, sn->data, (size_t)sn->length, rv))
        return ST_REVOKED;
    char hex[2 * PKI_SERIAL_MAX + 1], key[128];
    uint8_t *v = NULL;
    size_t vl = 0;
    pki_serial_hex(sn->data, (size_t)sn->length, hex);
    snprintf(key, sizeof(key), "pki/revoked/%s", hex);
    if (req->txn && nhid_txn_get(req->txn, key, &v, &vl) == NHID_OK) {
        /* Committed but not yet applied in memory (one batch behind). */
        char buf[160], iss[64];
        long long at = 0, exp = 0;
        int reason = 0;
        snprintf(buf, sizeof(buf), "%.*s", (int)(vl < 159 ? vl : 159), (char *)v);
        free(v);
        if (sscanf(buf, "%63s %lld %lld %d", iss, &at, &exp, &reason) == 4 &&
            strcmp(iss, is->id) == 0) {
            rv->revoked_at = at;
            rv->reason = (uint8_t)reason;
            return ST_REVOKED;
        }
    }
    snprintf(key, sizeof(key), "pki/cert/%s", hex);
    /* Known serial (full or compact no_store record): good. Never issued by us: unknown. */
    json_t *rec = NULL;
    if (req->txn == NULL || nhid_core_load_json(req->core, req->txn, key, &rec) < 0)
        return req->txn && nhid_txn_get_with(req->txn, key, exists_cb, NULL) == NHID_OK
                   ? ST_GOOD
                   : ST_UNKNOWN;
    /*
     * A suspended (quarantined) identity's certificates answer revoked with
     * reason certificateHold (RFC 5280 §5.3.1: reversible): the identity gate
     * is in memory, so a suspension shows here at once and a resume undoes it.
     */
    enum cert_status status = ST_GOOD;
    char msg[160];
    const char *entity = pki_jstr(rec, "entity_id");
    if (req->core->identity_gate && *entity &&
        req->core->identity_gate(req->core, entity, msg, sizeof(msg)) < 0) {
        rv->revoked_at = nhid_now();
        rv->reason = PKI_REASON_CERTIFICATE_HOLD;
        status = ST_REVOKED;
    }
    json_decref(rec);
    return status;
}

static int respond(struct nhid_request *req, struct nhid_response *resp, const uint8_t *in,
                   size_t len)
{
    int rc = NHID_OK;
    struct pki_state *st = pki_state(req->core);
    char err[200];
    struct der d;
    uint8_t *cid_der = NULL;
    bool locked = false;
    der_init(&d);
    OCSP_REQUEST *oreq = parse_request(in, len, err, sizeof(err));
    if (oreq == NULL)
        return status_only(resp, 1);
    if (st == NULL || !st->ready) {
        OCSP_REQUEST_free(oreq);
        return status_only(resp, 3); /* tryLater */
    }
    pthread_rwlock_rdlock(&st->lock);
    locked = true;
    int n = OCSP_request_onereq_count(oreq);
    struct pki_issuer *signer = NULL;
    for (int i = 0; i < n && signer == NULL; i++) {
        ASN1_INTEGER *sn = NULL;
        signer = match_issuer(st, OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i)), &sn);
    }
    if (signer == NULL) {
        rc = status_only(resp, 6); /* unauthorized: not an issuer we answer for (§2.3) */
        goto out;
    }
    int64_t now = nhid_now();
    /* ResponseData (§4.2.1) */
    static const uint8_t by_key_hdr[] = {0xa2, 0x16, 0x04, 0x14};
    der_raw(&d, by_key_hdr, sizeof(by_key_hdr));
    der_raw(&d, signer->key_sha1, 20);
    der_gentime(&d, now);
    size_t responses = d.len;
    for (int i = 0; i < n; i++) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, i));
        ASN1_INTEGER *sn = NULL;
        struct pki_issuer *is = match_issuer(st, cid, &sn);
        enum cert_status s = ST_UNKNOWN;
        struct pki_revoked rv = {0};
        if (is == signer && sn)
            s = lookup(req, st, is, sn, &rv);
        size_t single = d.len;
        int cl = i2d_OCSP_CERTID(cid, &cid_der);
        if (cl <= 0)
            NHID_FAIL(NHID_ERR_CRYPTO);
        der_raw(&d, cid_der, (size_t)cl);
        OPENSSL_free(cid_der);
        cid_der = NULL;
        if (s == ST_GOOD) {
            der_raw(&d, "\x80\x00", 2);
        } else if (s == ST_UNKNOWN) {
            der_raw(&d, "\x82\x00", 2);
        } else {
            size_t r = d.len;
            der_gentime(&d, rv.revoked_at);
            if (rv.reason != PKI_REASON_UNSPECIFIED) {
                uint8_t reason[] = {0xa0, 0x03, 0x0a, 0x01, rv.reason};
                der_raw(&d, reason, sizeof(reason));
            }
            der_wrap(&d, r, 0xa1);
        }
        der_gentime(&d, now);
        size_t nu = d.len;
        der_gentime(&d, now + PKI_OCSP_VALIDITY);
        der_wrap(&d, nu, 0xa0);
        der_wrap(&d, single, 0x30);
    }
    der_wrap(&d, responses, 0x30);
    /* responseExtensions [1]: the nonce, echoed verbatim (RFC 8954 §2.1). */
    int ni = OCSP_REQUEST_get_ext_by_NID(oreq, NID_id_pkix_OCSP_Nonce, -1);
    if (ni >= 0) {
        ASN1_OCTET_STRING *nv = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(oreq, ni));
        if (nv == NULL || nv->length <= 0 || nv->length > NONCE_MAX) {
            rc = status_only(resp, 1);
            goto out;
        }
        size_t ext = d.len;
        static const uint8_t nonce_oid[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                            0x05, 0x07, 0x30, 0x01, 0x02};
        der_raw(&d, nonce_oid, sizeof(nonce_oid));
        der_tlv(&d, 0x04, nv->data, (size_t)nv->length);
        der_wrap(&d, ext, 0x30);
        der_wrap(&d, ext, 0x30);
        der_wrap(&d, ext, 0xa1);
    }
    der_wrap(&d, 0, 0x30);
    /* BasicOCSPResponse (§4.2.1): tbs, algorithm, signature, certs [0]. */
    NHID_TRY(der_append_signature(&d, signer->signer, signer->key_type));
    size_t certs = d.len;
    der_raw(&d, signer->cert_der, signer->cert_der_len);
    der_wrap(&d, certs, 0x30);
    der_wrap(&d, certs, 0xa0);
    der_wrap(&d, 0, 0x30);
    /* OCSPResponse: successful, responseBytes id-pkix-ocsp-basic. */
    der_wrap(&d, 0, 0x04);
    static const uint8_t basic_oid[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                        0x05, 0x07, 0x30, 0x01, 0x01};
    struct der h;
    der_init(&h);
    der_raw(&h, basic_oid, sizeof(basic_oid));
    der_raw(&h, d.p, d.len);
    der_wrap(&h, 0, 0x30);
    der_wrap(&h, 0, 0xa0);
    static const uint8_t ok[] = {0x0a, 0x01, 0x00};
    struct der o;
    der_init(&o);
    der_raw(&o, ok, sizeof(ok));
    der_raw(&o, h.p, h.len);
    der_wrap(&o, 0, 0x30);
    der_free(&h);
    if (o.oom || d.oom) {
        der_free(&o);
        NHID_FAIL(NHID_ERR_NOMEM);
    }
    resp->body = o.p;
    resp->body_len = o.len;
    snprintf(resp->content_type, sizeof(resp->content_type), "application/ocsp-response");
out:
    if (locked)
        pthread_rwlock_unlock(&st->lock);
    if (rc < 0 && resp->body == NULL)
        rc = status_only(resp, 2);
    OPENSSL_free(cid_der);
    der_free(&d);
    OCSP_REQUEST_free(oreq);
    return rc;
}

static int h_ocsp_get(struct nhid_request *req, struct nhid_response *resp)
{
    const char *param = nhid_req_param(req, "req");
    uint8_t *der = NULL;
    size_t len = 0;
    if (param == NULL || strlen(param) > PKI_OCSP_REQ_MAX * 2)
        return status_only(resp, 1);
    /* RFC 6960 §A.1: the base64 is URL-encoded, so its '/' arrives as %2F. */
    char *b64 = malloc(strlen(param) + 1);
    if (b64 == NULL)
        return NHID_ERR_NOMEM;
    size_t o = 0;
    for (const char *c = param; *c; c++) {
        if (c[0] == '%' && c[1] == '2' && (c[2] == 'F' || c[2] == 'f')) {
            b64[o++] = '/';
            c += 2;
        } else {
            b64[o++] = *c;
        }
    }
    b64[o] = '\0';
    int drc = nhid_base64_decode(b64, o, &der, &len);
    free(b64);
    if (drc < 0)
        return status_only(resp, 1);
    int rc = respond(req, resp, der, len);
    free(der);
    return rc;
}

static int h_ocsp_post(struct nhid_request *req, struct nhid_response *resp)
{
    return respond(req, resp, req->body_raw, req->body_len);
}

const struct nhid_route pki_ocsp_routes[] = {
    {"pki/ocsp", NHID_M_POST, NHID_ROUTE_UNAUTH | NHID_ROUTE_RAW_BODY | NHID_ROUTE_NO_AUDIT_DATA,
     h_ocsp_post, "read"},
    {"pki/ocsp/*req", NHID_M_GET,
     NHID_ROUTE_UNAUTH | NHID_ROUTE_NO_AUDIT_DATA | NHID_ROUTE_ENCODED_SLASH, h_ocsp_get, "read"},
};
const size_t pki_n_ocsp_routes = NHID_ARRAY_LEN(pki_ocsp_routes);
_Static_assert(NHID_ARRAY_LEN(pki_ocsp_routes) == PKI_N_OCSP_ROUTES,
               "update PKI_N_OCSP_ROUTES in pki_internal.h");
