/*
 * pki_crl — revocation and the CRL (RFC 5280 §5).
 *
 * The revoked certificates of each issuer live in memory (an array, an
 * open-addressing hash on the serial for O(1) OCSP answers, and the
 * DER-encoded CRL entry of each, concatenated). A revocation appends one
 * entry; the CRL is then re-signed from the cached entry bytes (one
 * signature over the TBS, no re-encoding, no storage scan). Entries of
 * expired certificates are dropped by a periodic job (RFC 5280 §3.3
 * allows removal after expiry).
 *
 * Memory follows storage: a revocation is written in the request's
 * transaction and applied to memory by a follow-up store job, which runs
 * in the next batch, i.e. only once the revocation is durable, and reads
 * it back (a rolled-back revocation is never published).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "identity/identity.h"
#include "pki/pki_internal.h"

#define REV_VALUE_MAX 160
#define EXPIRED_DROP_BATCH 5000

/* ---- the revoked set ------------------------------------------------------------ */

void pki_revset_free(struct pki_revset *r)
{
    free(r->v);
    free(r->slots);
    free(r->der);
    memset(r, 0, sizeof(*r));
}

static uint64_t serial_hash(const uint8_t *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int rehash(struct pki_revset *r, size_t nslots)
{
    uint32_t *s = calloc(nslots, sizeof(*s));
    if (s == NULL)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < r->n; i++) {
        size_t k = serial_hash(r->v[i].serial, r->v[i].serial_len) & (nslots - 1);
        while (s[k])
            k = (k + 1) & (nslots - 1);
        s[k] = (uint32_t)(i + 1);
    }
    free(r->slots);
    r->slots = s;
    r->nslots = nslots;
    return NHID_OK;
}

static struct pki_revoked *revset_find(struct pki_revset *r, const uint8_t *serial, size_t n)
{
    if (r->nslots == 0)
        return NULL;
    size_t k = serial_hash(serial, n) & (r->nslots - 1);
    while (r->slots[k]) {
        struct pki_revoked *e = &r->v[r->slots[k] - 1];
        if (e->serial_len == n && memcmp(e->serial, serial, n) == 0)
            return e;
        k = (k + 1) & (r->nslots - 1);
    }
    return NULL;
}

/* The DER of one revokedCertificates entry (RFC 5280 §5.1.2.6, §5.3.1). */
static void encode_entry(struct der *d, const struct pki_revoked *e)
{
    size_t start = d->len;
    der_uint(d, e->serial, e->serial_len);
    der_utctime(d, e->revoked_at);
    /* reasonCode is omitted for unspecified (RFC 5280 §5.3.1 SHOULD). */
    if (e->reason != PKI_REASON_UNSPECIFIED) {
        static const uint8_t ext[] = {0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55,
                                      0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01};
        der_raw(d, ext, sizeof(ext));
        der_raw(d, &e->reason, 1);
    }
    der_wrap(d, start, 0x30);
}

static int revset_add(struct pki_revset *r, const struct pki_revoked *in)
{
    if (revset_find(r, in->serial, in->serial_len))
        return NHID_OK;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct pki_revoked *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL)
            return NHID_ERR_NOMEM;
        r->v = v;
        r->cap = cap;
    }
    if ((r->n + 1) * 2 > r->nslots) {
        int rc = rehash(r, r->nslots ? r->nslots * 2 : 128);
        if (rc < 0)
            return rc;
    }
    struct der d = {.p = r->der, .len = r->der_len, .cap = r->der_cap};
    struct pki_revoked e = *in;
    e.der_off = (uint32_t)d.len;
    encode_entry(&d, &e);
    r->der = d.p;
    r->der_cap = d.cap;
    if (d.oom)
        return NHID_ERR_NOMEM;
    e.der_len = (uint32_t)(d.len - e.der_off);
    r->der_len = d.len;
    r->v[r->n] = e;
    size_t k = serial_hash(e.serial, e.serial_len) & (r->nslots - 1);
    while (r->slots[k])
        k = (k + 1) & (r->nslots - 1);
    r->slots[k] = (uint32_t)(r->n + 1);
    r->n++;
    return NHID_OK;
}

/* Drop entries whose certificate expired before `now`; returns how many. */
static size_t revset_drop_expired(struct pki_revset *r, int64_t now)
{
    size_t w = 0, dropped = 0, off = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct pki_revoked e = r->v[i];
        if (e.expires < now) {
            dropped++;
            continue;
        }
        memmove(r->der + off, r->der + e.der_off, e.der_len);
        e.der_off = (uint32_t)off;
        off += e.der_len;
        r->v[w++] = e;
    }
    if (dropped == 0)
        return 0;
    r->n = w;
    r->der_len = off;
    if (rehash(r, r->nslots ? r->nslots : 128) < 0) {
        free(r->slots);
        r->slots = NULL;
        r->nslots = 0;
    }
    return dropped;
}

bool pki_is_revoked(struct pki_state *st, struct pki_issuer *is, const uint8_t *serial, size_t len,
                    struct pki_revoked *rev)
{
    pthread_mutex_lock(&st->rev_lock);
    struct pki_revoked *e = revset_find(&is->rev, serial, len);
    if (e && rev)
        *rev = *e;
    pthread_mutex_unlock(&st->rev_lock);
    return e != NULL;
}

/* ---- stored form --------------------------------------------------------------- */

static int parse_value(const uint8_t *val, size_t len, char issuer[64], struct pki_revoked *e)
{
    char buf[REV_VALUE_MAX];
    long long at, exp;
    int reason;
    if (len == 0 || len >= sizeof(buf))
        return NHID_ERR_INVALID;
    memcpy(buf, val, len);
    buf[len] = '\0';
    if (sscanf(buf, "%63s %lld %lld %d", issuer, &at, &exp, &reason) != 4)
        return NHID_ERR_INVALID;
    e->revoked_at = at;
    e->expires = exp;
    e->reason = (uint8_t)reason;
    return NHID_OK;
}

static struct pki_issuer *issuer_by_id(struct pki_state *st, const char *id)
{
    for (size_t i = 0; i < st->n_issuers; i++)
        if (strcmp(st->issuers[i]->id, id) == 0)
            return st->issuers[i];
    return NULL;
}

/* Apply one stored revocation to memory (serial hex in key tail). Caller holds st->lock. */
static int apply_value(struct pki_state *st, const char *hex, const uint8_t *val, size_t len,
                       int64_t now)
{
    struct pki_revoked e = {0};
    char issuer[64];
    size_t n;
    if (parse_value(val, len, issuer, &e) < 0 || pki_serial_parse(hex, e.serial, &n) < 0)
        return NHID_ERR_INVALID;
    e.serial_len = (uint8_t)n;
    if (e.expires < now)
        return NHID_OK;
    struct pki_issuer *is = issuer_by_id(st, issuer);
    if (is == NULL)
        return NHID_OK;
    pthread_mutex_lock(&st->rev_lock);
    int rc = revset_add(&is->rev, &e);
    is->crl_dirty = true;
    pthread_mutex_unlock(&st->rev_lock);
    return rc;
}

struct load_ctx {
    struct pki_state *st;
    int64_t now;
    size_t n;
};

static int load_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct load_ctx *c = arg;
    if (apply_value(c->st, key + strlen("pki/revoked/"), val, len, c->now) == NHID_OK)
        c->n++;
    return 0;
}

int pki_revoked_load(struct pki_state *st, struct nhid_txn *txn)
{
    struct load_ctx c = {.st = st, .now = nhid_now()};
    int64_t t0 = nhid_mono_ns();
    int rc = nhid_txn_scan_prefix(txn, "pki/revoked/", NULL, 0, false, load_cb, &c);
    if (rc < 0)
        return rc;
    /* CRL numbers: the stored one, or the clock in ms if larger (monotonic across restarts). */
    for (size_t i = 0; i < st->n_issuers; i++) {
        struct pki_issuer *is = st->issuers[i];
        char key[128];
        uint8_t *v = NULL;
        size_t vl = 0;
        uint64_t num = 0;
        snprintf(key, sizeof(key), "pki/crl/%s", is->id);
        if (nhid_txn_get(txn, key, &v, &vl) == NHID_OK) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%.*s", (int)(vl < 31 ? vl : 31), (char *)v);
            num = strtoull(buf, NULL, 10);
            free(v);
        }
        uint64_t clock = (uint64_t)nhid_now_ns() / 1000000u;
        is->crl_number = num > clock ? num : clock;
        is->crl_dirty = true;
    }
    if (c.n)
        nhid_info(PKI_MOD, "loaded %zu revoked certificates in %.1f ms", c.n,
                  (double)(nhid_mono_ns() - t0) / 1e6);
    return NHID_OK;
}

/* ---- applying committed revocations ---------------------------------------------- */

struct apply_arg {
    struct nhid_core *core;
    char hex[2 * PKI_SERIAL_MAX + 1];
};

static int apply_job(struct nhid_txn *txn, void *arg)
{
    struct apply_arg *a = arg;
    struct pki_state *st = pki_state(a->core);
    char key[128];
    uint8_t *v = NULL;
    size_t vl = 0;
    if (st == NULL || !st->ready)
        return NHID_OK;
    snprintf(key, sizeof(key), "pki/revoked/%s", a->hex);
    if (nhid_txn_get(txn, key, &v, &vl) != NHID_OK)
        return NHID_OK; /* the revoking transaction rolled back */
    pthread_rwlock_rdlock(&st->lock);
    int rc = apply_value(st, a->hex, v, vl, nhid_now());
    pthread_rwlock_unlock(&st->lock);
    free(v);
    if (rc < 0)
        nhid_error(PKI_MOD, "revocation of %s could not be applied in memory: %s", a->hex,
                   nhid_strerror(rc));
    return NHID_OK;
}

static void apply_done(int rc, void *arg)
{
    (void)rc;
    free(arg);
}

int pki_revoke_serial(struct nhid_core *core, struct nhid_txn *txn, const char *hex, int reason,
                      bool from_lifecycle, char *err, size_t errlen)
{
    int rc = NHID_OK;
    char key[128], val[REV_VALUE_MAX];
    json_t *rec = NULL;
    uint8_t *old = NULL;
    size_t ol = 0;
    NHID_TRY(nhid_fmt(key, sizeof(key), "pki/cert/%s", hex));
    rc = nhid_core_load_json(core, txn, key, &rec);
    if (rc == NHID_ERR_NOT_FOUND) {
        snprintf(err, errlen, "no certificate with serial %s", hex);
        goto out;
    }
    NHID_TRY(rc);
    NHID_TRY(nhid_fmt(key, sizeof(key), "pki/revoked/%s", hex));
    if (nhid_txn_get(txn, key, &old, &ol) == NHID_OK)
        goto out; /* already revoked: idempotent */
    int64_t now = nhid_now();
    int64_t exp = json_integer_value(json_object_get(rec, "not_after"));
    if (exp <= now) {
        snprintf(err, errlen, "certificate %s already expired", hex);
        rc = NHID_ERR_EXPIRED;
        goto out;
    }
    NHID_TRY(nhid_fmt(val, sizeof(val), "%s %" PRId64 " %" PRId64 " %d", pki_jstr(rec, "issuer"),
                      now, exp, reason));
    NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)val, strlen(val)));
    NHID_TRY(nhid_fmt(key, sizeof(key), "pki/revoked-by-expiry/%020" PRId64 "/%s", exp, hex));
    NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
    if (!from_lifecycle)
        NHID_TRY(nhid_identity_cred_revoked(core, txn, pki_jstr(rec, "entity_id"), PKI_CRED_TYPE,
                                            hex, "certificate revoked"));
    struct apply_arg *a = calloc(1, sizeof(*a));
    NHID_CHECK_ALLOC(a);
    a->core = core;
    snprintf(a->hex, sizeof(a->hex), "%s", hex);
    rc = nhid_store_submit(core->store, apply_job, apply_done, a);
    if (rc < 0) {
        free(a);
        goto out;
    }
out:
    free(old);
    json_decref(rec);
    return rc;
}

int pki_cred_revoke_hook(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                         const char *id)
{
    char err[200];
    (void)entity_id;
    /* RFC 5280 §5.3.1: the identity was decommissioned or suspended. */
    int rc = pki_revoke_serial(core, txn, id, PKI_REASON_CESSATION, true, err, sizeof(err));
    if (rc == NHID_ERR_EXPIRED)
        return NHID_OK;
    return rc;
}

/* ---- the CRL ----------------------------------------------------------------------- */

static int crl_build(struct pki_issuer *is, int64_t now)
{
    int rc = NHID_OK;
    struct der d;
    size_t alen;
    const uint8_t *alg = pki_sigalg_der(is->key_type, &alen);
    der_init(&d);
    /* Size once: the entries dominate (a million entries is ~40 MB). */
    if (!d.oom) {
        d.p = malloc(is->rev.der_len + 4096);
        d.cap = d.p ? is->rev.der_len + 4096 : 0;
        if (d.p == NULL)
            NHID_FAIL(NHID_ERR_NOMEM);
    }
    is->crl_number++;
    /* TBSCertList (RFC 5280 §5.1.2) */
    static const uint8_t v2[] = {0x02, 0x01, 0x01};
    der_raw(&d, v2, sizeof(v2));
    der_raw(&d, alg, alen);
    der_raw(&d, is->name_der, is->name_der_len);
    der_utctime(&d, now);
    der_utctime(&d, now + PKI_CRL_VALIDITY);
    if (is->rev.n) {
        der_hdr(&d, 0x30, is->rev.der_len);
        der_raw(&d, is->rev.der, is->rev.der_len);
    }
    size_t ext0 = d.len;
    /* authorityKeyIdentifier (§5.2.1) */
    size_t e = d.len;
    static const uint8_t aki_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x23};
    der_raw(&d, aki_oid, sizeof(aki_oid));
    size_t os = d.len;
    der_tlv(&d, 0x80, is->ski, is->ski_len);
    der_wrap(&d, os, 0x30);
    der_wrap(&d, os, 0x04);
    der_wrap(&d, e, 0x30);
    /* cRLNumber (§5.2.3) */
    e = d.len;
    static const uint8_t num_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x14};
    der_raw(&d, num_oid, sizeof(num_oid));
    os = d.len;
    der_uint64(&d, is->crl_number);
    der_wrap(&d, os, 0x04);
    der_wrap(&d, e, 0x30);
    der_wrap(&d, ext0, 0x30);
    der_wrap(&d, ext0, 0xa0);
    der_wrap(&d, 0, 0x30);
    NHID_TRY(der_append_signature(&d, is->signer, is->key_type));
    der_wrap(&d, 0, 0x30);
    if (d.oom)
        NHID_FAIL(NHID_ERR_NOMEM);
    free(is->crl_der);
    is->crl_der = d.p;
    is->crl_der_len = d.len;
    d.p = NULL;
    is->crl_this_update = now;
    is->crl_dirty = false;
out:
    der_free(&d);
    return rc;
}

int pki_crl_get(struct pki_state *st, struct pki_issuer *is, uint8_t **der, size_t *len)
{
    int rc = NHID_OK;
    int64_t now = nhid_now();
    pthread_mutex_lock(&st->rev_lock);
    if (is->crl_der == NULL || is->crl_dirty ||
        now - is->crl_this_update >= PKI_CRL_VALIDITY - PKI_CRL_REFRESH)
        rc = crl_build(is, now);
    if (rc == NHID_OK) {
        *der = malloc(is->crl_der_len);
        if (*der == NULL) {
            rc = NHID_ERR_NOMEM;
        } else {
            memcpy(*der, is->crl_der, is->crl_der_len);
            *len = is->crl_der_len;
        }
    }
    pthread_mutex_unlock(&st->rev_lock);
    return rc;
}

static int send_crl(struct nhid_request *req, struct nhid_response *resp, const char *ref, bool pem)
{
    struct pki_state *st = pki_state(req->core);
    uint8_t *der = NULL;
    size_t len = 0;
    int rc;
    pthread_rwlock_rdlock(&st->lock);
    struct pki_issuer *is = pki_issuer_find(st, ref);
    rc = is ? pki_crl_get(st, is, &der, &len) : NHID_ERR_NOT_FOUND;
    pthread_rwlock_unlock(&st->lock);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no issuer \"%s\"", ref ? ref : "default");
    if (rc < 0)
        return rc;
    if (!pem) {
        resp->body = der;
        resp->body_len = len;
        snprintf(resp->content_type, sizeof(resp->content_type), "application/pkix-crl");
        return NHID_OK;
    }
    char *b64 = NULL;
    rc = nhid_base64_encode(der, len, &b64);
    free(der);
    if (rc < 0)
        return rc;
    size_t bl = strlen(b64);
    size_t cap = bl + bl / 64 + 64;
    char *out = malloc(cap);
    if (out == NULL) {
        free(b64);
        return NHID_ERR_NOMEM;
    }
    size_t o = (size_t)snprintf(out, cap, "-----BEGIN X509 CRL-----\n");
    for (size_t i = 0; i < bl; i += 64) {
        size_t n = bl - i < 64 ? bl - i : 64;
        memcpy(out + o, b64 + i, n);
        o += n;
        out[o++] = '\n';
    }
    o += (size_t)snprintf(out + o, cap - o, "-----END X509 CRL-----\n");
    free(b64);
    resp->body = (uint8_t *)out;
    resp->body_len = o;
    snprintf(resp->content_type, sizeof(resp->content_type), "application/x-pem-file");
    return NHID_OK;
}

static int h_crl(struct nhid_request *req, struct nhid_response *resp)
{
    return send_crl(req, resp, "default", false);
}
static int h_crl_pem(struct nhid_request *req, struct nhid_response *resp)
{
    return send_crl(req, resp, "default", true);
}
static int h_issuer_crl(struct nhid_request *req, struct nhid_response *resp)
{
    return send_crl(req, resp, nhid_req_param(req, "ref"), false);
}
static int h_issuer_crl_pem(struct nhid_request *req, struct nhid_response *resp)
{
    return send_crl(req, resp, nhid_req_param(req, "ref"), true);
}

static int parse_reason(const char *s, int *out)
{
    static const struct {
        const char *name;
        int code;
    } map[] = {{"unspecified", 0},
               {"key_compromise", 1},
               {"keyCompromise", 1},
               {"ca_compromise", 2},
               {"affiliation_changed", 3},
               {"superseded", 4},
               {"cessation_of_operation", 5},
               {"cessationOfOperation", 5},
               {"privilege_withdrawn", 9}};
    for (size_t i = 0; i < NHID_ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].code;
            return NHID_OK;
        }
    return NHID_ERR_INVALID;
}

/* POST pki/revoke {serial_number[, reason]} */
static int h_revoke(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"serial_number", "reason", NULL};
    int rc = NHID_OK;
    const char *s, *rs;
    uint8_t bin[PKI_SERIAL_MAX];
    size_t n;
    int reason;
    char hex[2 * PKI_SERIAL_MAX + 1], err[200];
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "serial_number", "", &s));
    NHID_TRY(nhid_body_string(req, resp, "reason", "unspecified", &rs));
    if (pki_serial_parse(s, bin, &n) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"serial_number\": \"%s\": expected hex, "
                                  "optionally colon-separated (e.g. 3a:bc:...)",
                                  s));
    if (parse_reason(rs, &reason) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"reason\": \"%s\" (use unspecified, "
                                  "key_compromise, ca_compromise, affiliation_changed, "
                                  "superseded, cessation_of_operation, "
                                  "privilege_withdrawn)",
                                  rs));
    pki_serial_hex(bin, n, hex);
    err[0] = '\0';
    rc = pki_revoke_serial(req->core, req->txn, hex, reason, false, err, sizeof(err));
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 404, "%s", err));
    if (rc == NHID_ERR_EXPIRED) {
        rc = NHID_OK;
        resp->warnings = json_pack("[s]", err);
    }
    NHID_TRY(rc);
    int64_t at = nhid_now();
    char key[128];
    uint8_t *v = NULL;
    size_t vl = 0;
    snprintf(key, sizeof(key), "pki/revoked/%s", hex);
    if (nhid_txn_get(req->txn, key, &v, &vl) == NHID_OK) {
        char iss[64];
        struct pki_revoked e;
        if (parse_value(v, vl, iss, &e) == NHID_OK)
            at = e.revoked_at;
        free(v);
    }
    char t[NHID_RFC3339_LEN];
    nhid_time_format(at, t);
    resp->data = json_pack("{s:I, s:s, s:s}", "revocation_time", (json_int_t)at,
                           "revocation_time_rfc3339", t, "serial_number", s);
out:
    return rc;
}

/* GET pki/crl/rotate: re-sign now (Vault's endpoint). */
static int h_crl_rotate(struct nhid_request *req, struct nhid_response *resp)
{
    struct pki_state *st = pki_state(req->core);
    int rc = NHID_OK;
    pthread_rwlock_rdlock(&st->lock);
    pthread_mutex_lock(&st->rev_lock);
    for (size_t i = 0; i < st->n_issuers && rc == NHID_OK; i++)
        rc = crl_build(st->issuers[i], nhid_now());
    pthread_mutex_unlock(&st->rev_lock);
    pthread_rwlock_unlock(&st->lock);
    if (rc == NHID_OK)
        resp->data = json_pack("{s:b}", "success", 1);
    return rc;
}

const struct nhid_route pki_crl_routes[] = {
    {"pki/revoke", NHID_M_WRITE, NHID_ROUTE_WRITE, h_revoke, "revoke"},
    {"pki/crl", NHID_M_GET, NHID_ROUTE_UNAUTH, h_crl, "read"},
    {"pki/crl/pem", NHID_M_GET, NHID_ROUTE_UNAUTH, h_crl_pem, "read"},
    {"pki/crl/rotate", NHID_M_GET | NHID_M_WRITE, 0, h_crl_rotate, "rotate"},
    {"pki/issuer/:ref/crl", NHID_M_GET, NHID_ROUTE_UNAUTH, h_issuer_crl, "read"},
    {"pki/issuer/:ref/crl/der", NHID_M_GET, NHID_ROUTE_UNAUTH, h_issuer_crl, "read"},
    {"pki/issuer/:ref/crl/pem", NHID_M_GET, NHID_ROUTE_UNAUTH, h_issuer_crl_pem, "read"},
};
const size_t pki_n_crl_routes = NHID_ARRAY_LEN(pki_crl_routes);
_Static_assert(NHID_ARRAY_LEN(pki_crl_routes) == PKI_N_CRL_ROUTES,
               "update PKI_N_CRL_ROUTES in pki_internal.h");

/* ---- periodic job ------------------------------------------------------------------ */

struct tidy_ctx {
    char keys[EXPIRED_DROP_BATCH][128];
    size_t n;
    int64_t now;
};

static int tidy_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct tidy_ctx *c = arg;
    long long ts = strtoll(key + strlen("pki/revoked-by-expiry/"), NULL, 10);
    if (ts >= c->now || c->n >= EXPIRED_DROP_BATCH)
        return 1;
    snprintf(c->keys[c->n++], sizeof(c->keys[0]), "%s", key);
    return 0;
}

static int tidy_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    (void)core;
    struct tidy_ctx *c = arg;
    int rc = NHID_OK;
    c->n = 0;
    NHID_TRY(nhid_txn_scan_prefix(txn, "pki/revoked-by-expiry/", NULL, EXPIRED_DROP_BATCH, true,
                                  tidy_cb, c));
    for (size_t i = 0; i < c->n; i++) {
        const char *slash = strrchr(c->keys[i], '/');
        char rk[128];
        NHID_TRY(nhid_fmt(rk, sizeof(rk), "pki/revoked/%s", slash + 1));
        NHID_TRY(nhid_txn_delete(txn, rk));
        NHID_TRY(nhid_txn_delete(txn, c->keys[i]));
    }
    /* Persist the CRL numbers so they keep increasing across restarts. */
    struct pki_state *st = pki_state(core);
    pthread_rwlock_rdlock(&st->lock);
    for (size_t i = 0; i < st->n_issuers && rc == NHID_OK; i++) {
        char k[128], v[32];
        pthread_mutex_lock(&st->rev_lock);
        snprintf(v, sizeof(v), "%" PRIu64, st->issuers[i]->crl_number);
        pthread_mutex_unlock(&st->rev_lock);
        snprintf(k, sizeof(k), "pki/crl/%s", st->issuers[i]->id);
        rc = nhid_txn_put(txn, k, (const uint8_t *)v, strlen(v));
    }
    pthread_rwlock_unlock(&st->lock);
out:
    return rc;
}

static int job_crl(struct nhid_core *core)
{
    struct pki_state *st = pki_state(core);
    if (st == NULL || !st->ready)
        return NHID_OK;
    int64_t now = nhid_now();
    pthread_rwlock_rdlock(&st->lock);
    pthread_mutex_lock(&st->rev_lock);
    for (size_t i = 0; i < st->n_issuers; i++) {
        struct pki_issuer *is = st->issuers[i];
        if (revset_drop_expired(&is->rev, now))
            is->crl_dirty = true;
        /* Keep nextUpdate ahead: re-sign when the CRL is dirty or half its validity passed. */
        if (is->crl_dirty || is->crl_der == NULL ||
            now - is->crl_this_update >= PKI_CRL_VALIDITY - PKI_CRL_REFRESH)
            (void)crl_build(is, now);
    }
    pthread_mutex_unlock(&st->rev_lock);
    pthread_rwlock_unlock(&st->lock);
    struct tidy_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NHID_ERR_NOMEM;
    c->now = now;
    int rc = nhid_core_write(core, tidy_txn, c);
    free(c);
    return rc;
}

const struct nhid_job pki_jobs[] = {
    {"pki-crl", 60, job_crl},
};
const size_t pki_n_jobs = NHID_ARRAY_LEN(pki_jobs);
