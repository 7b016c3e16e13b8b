/* auth/cert — certificate roles, mTLS login and tokenless mTLS authentication. */
#include "auth/cert/cert.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/cidr.h"
#include "identity/identity.h"
#include "store/store.h"

#define MOD "cert"
#define GEN_KEY "auth/cert/gen"
#define DENIED "permission denied: the client certificate is not trusted by any certificate role"

/* ---- role cache ------------------------------------------------------------- */

struct cached_role {
    json_t *role;
    X509_STORE *store;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached_role *cache;
static size_t cache_n;
static int64_t cache_gen = -1;

static void cache_free_locked(void)
{
    for (size_t i = 0; i < cache_n; i++) {
        json_decref(cache[i].role);
        X509_STORE_free(cache[i].store);
    }
    free(cache);
    cache = NULL;
    cache_n = 0;
    cache_gen = -1;
}

static int64_t read_gen(struct nhid_txn *txn)
{
    uint8_t *v = NULL;
    size_t len = 0;
    int64_t g = 0;
    if (nhid_txn_get(txn, GEN_KEY, &v, &len) == NHID_OK && len == 8)
        for (int i = 0; i < 8; i++)
            g = (g << 8) | v[i];
    free(v);
    return g;
}

static int bump_gen(struct nhid_txn *txn)
{
    int64_t g = read_gen(txn) + 1;
    uint8_t v[8];
    for (int i = 7; i >= 0; i--) {
        v[i] = (uint8_t)(g & 0xff);
        g >>= 8;
    }
    return nhid_txn_put(txn, GEN_KEY, v, sizeof(v));
}

/* Parse every certificate of a PEM bundle into a new store. NULL if none. */
static X509_STORE *store_from_pem(const char *pem, int *count)
{
    BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
    X509_STORE *st = X509_STORE_new();
    int n = 0;
    if (b == NULL || st == NULL)
        goto fail;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) != 1) {
            X509_free(x);
            goto fail;
        }
        X509_free(x);
        n++;
    }
    ERR_clear_error();
    BIO_free(b);
    if (n == 0) {
        X509_STORE_free(st);
        return NULL;
    }
    if (count)
        *count = n;
    return st;
fail:
    ERR_clear_error();
    BIO_free(b);
    X509_STORE_free(st);
    return NULL;
}

struct role_keys {
    char names[NHID_CERT_ROLES_MAX][160];
    size_t n;
};

static int collect_cb(const char *k, const uint8_t *v, size_t l, void *a)
{
    (void)v;
    (void)l;
    struct role_keys *kl = a;
    if (kl->n >= NHID_CERT_ROLES_MAX || strlen(k) >= sizeof(kl->names[0]))
        return 1;
    snprintf(kl->names[kl->n++], sizeof(kl->names[0]), "%s", k);
    return 0;
}

/* Reload the cache from txn if the generation changed. Call with cache_lock held. */
static int cache_refresh_locked(struct nhid_core *core, struct nhid_txn *txn)
{
    int64_t g = read_gen(txn);
    if (g == cache_gen)
        return NHID_OK;
    cache_free_locked();
    struct role_keys *kl = calloc(1, sizeof(*kl));
    if (kl == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_txn_scan_prefix(txn, "auth/cert/role/", NULL, NHID_CERT_ROLES_MAX, true,
                                  collect_cb, kl);
    if (rc == NHID_OK && kl->n) {
        cache = calloc(kl->n, sizeof(*cache));
        if (cache == NULL)
            rc = NHID_ERR_NOMEM;
    }
    for (size_t i = 0; rc == NHID_OK && i < kl->n; i++) {
        json_t *role = NULL;
        if (nhid_core_load_json(core, txn, kl->names[i], &role) < 0)
            continue;
        X509_STORE *st = store_from_pem(nhid_json_str(role, "certificate"), NULL);
        if (st == NULL) {
            json_decref(role);
            continue;
        }
        cache[cache_n].role = role;
        cache[cache_n].store = st;
        cache_n++;
    }
    free(kl);
    if (rc == NHID_OK)
        cache_gen = g;
    return rc;
}

/* ---- certificate facts ------------------------------------------------------- */

struct peer_facts {
    char spiffe[NHID_IDENTITY_SPIFFE_MAX + 1];
    char cn[256];
    char serial[80];
};

static void peer_facts(X509 *x, struct peer_facts *f)
{
    memset(f, 0, sizeof(*f));
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, f->cn, sizeof(f->cn));
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_URI)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
        /* SPIFFE X509-SVID §4.1: exactly one URI SAN, the SPIFFE ID. */
        if (len > 9 && len <= NHID_IDENTITY_SPIFFE_MAX && memcmp(d, "spiffe://", 9) == 0 &&
            memchr(d, 0, (size_t)len) == NULL) {
            memcpy(f->spiffe, d, (size_t)len);
            f->spiffe[len] = '\0';
            break;
        }
    }
    GENERAL_NAMES_free(sans);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(f->serial, sizeof(f->serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

static bool verify_chain(X509_STORE *store, X509 *leaf, STACK_OF(X509) * chain)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = false;
    if (ctx && X509_STORE_CTX_init(ctx, store, leaf, chain) == 1) {
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        ok = X509_verify_cert(ctx) == 1;
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static bool list_matches(const json_t *patterns, const char *value, bool empty_ok)
{
    if (json_array_size(patterns) == 0)
        return empty_ok;
    size_t i;
    json_t *v;
    json_array_foreach(patterns, i, v)
    {
        const char *p = json_string_value(v);
        /* '*' matches within one path segment (FNM_PATHNAME), e.g. spiffe://td/workload/x-* */
        if (p && fnmatch(p, value, FNM_PATHNAME) == 0)
            return true;
    }
    return false;
}

/*
 * Find a role (only `want` if non-empty) whose CA verifies the client's
 * chain and whose constraints the certificate meets. *role new reference.
 */
static int match_role(struct nhid_request *req, const char *want, struct peer_facts *f,
                      json_t **role)
{
    X509 *leaf = req->peer_cert;
    if (leaf == NULL)
        return NHID_ERR_DENIED;
    peer_facts(leaf, f);
    int rc = NHID_ERR_DENIED;
    pthread_mutex_lock(&cache_lock);
    if (cache_refresh_locked(req->core, req->txn) < 0) {
        pthread_mutex_unlock(&cache_lock);
        return NHID_ERR_INTERNAL;
    }
    for (size_t i = 0; i < cache_n; i++) {
        json_t *r = cache[i].role;
        if (want && *want && strcmp(nhid_json_str(r, "name"), want) != 0)
            continue;
        if (!verify_chain(cache[i].store, leaf, req->peer_chain))
            continue;
        if (!list_matches(json_object_get(r, "allowed_common_names"), f->cn, true))
            continue;
        if (!list_matches(json_object_get(r, "allowed_uri_sans"), f->spiffe, true))
            continue;
        if (!nhid_cidr_list_allows(json_object_get(r, "token_bound_cidrs"), req->remote_addr))
            continue;
        *role = json_incref(r);
        rc = NHID_OK;
        break;
    }
    pthread_mutex_unlock(&cache_lock);
    /*
     * nhid's own CA (the PKI engine's X509-SVIDs): trusted without a
     * configured role for SPIFFE IDs of this trust domain, as an implicit
     * role "nhid-pki" with the "default" policy.
     */
    if (rc < 0 && (want == NULL || *want == '\0' || strcmp(want, "nhid-pki") == 0) &&
        req->core->pki_trusted_cas && f->spiffe[0]) {
        char prefix[300];
        snprintf(prefix, sizeof(prefix), "spiffe://%s/", req->core->trust_domain);
        X509_STORE *st = X509_STORE_new();
        if (st && nhid_has_prefix(f->spiffe, prefix) &&
            req->core->pki_trusted_cas(req->core, st) == NHID_OK &&
            verify_chain(st, leaf, req->peer_chain)) {
            *role = json_pack("{s:s, s:[s], s:[], s:[]}", "name", "nhid-pki", "token_policies",
                              "default", "allowed_uri_sans", "allowed_common_names");
            rc = *role ? NHID_OK : NHID_ERR_NOMEM;
        }
        X509_STORE_free(st);
    }
    return rc;
}

/* ---- roles ------------------------------------------------------------------ */

static const char *const role_fields[] = {"name",
                                          "certificate",
                                          "allowed_common_names",
                                          "allowed_dns_sans",
                                          "allowed_email_sans",
                                          "allowed_uri_sans",
                                          "allowed_spiffe_ids",
                                          "allowed_organizational_units",
                                          "required_extensions",
                                          "display_name",
                                          "token_ttl",
                                          "token_max_ttl",
                                          "token_policies",
                                          "policies",
                                          "token_bound_cidrs",
                                          "token_explicit_max_ttl",
                                          "token_no_default_policy",
                                          "token_num_uses",
                                          "token_period",
                                          "token_type",
                                          "ttl",
                                          "max_ttl",
                                          NULL};

static int list_field(struct nhid_request *req, struct nhid_response *resp, const char *field,
                      json_t **out)
{
    json_t *l = NULL;
    int rc = nhid_body_string_list(req, resp, field, &l);
    if (rc < 0)
        return rc;
    if (l == NULL)
        l = json_array();
    if (json_array_size(l) > NHID_CERT_PATTERNS_MAX) {
        json_decref(l);
        return nhid_resp_error(resp, 400, "field \"%s\": more than %d entries", field,
                               NHID_CERT_PATTERNS_MAX);
    }
    *out = l;
    return NHID_OK;
}

static int h_role_write(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = nhid_req_param(req, "name"), *pem = NULL, *display = NULL, *ttype = NULL;
    json_t *cns = NULL, *uris = NULL, *pol = NULL, *cidrs = NULL, *role = NULL, *unsup = NULL;
    char msg[256], key[256];
    int64_t ttl, max_ttl, period, uses;
    if (nhid_identity_name_valid("certificate role name", name, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
    NHID_TRY(nhid_body_only(req, resp, role_fields));
    NHID_TRY(nhid_body_string(req, resp, "certificate", NULL, &pem));
    NHID_TRY(nhid_body_string(req, resp, "display_name", name, &display));
    NHID_TRY(nhid_body_string(req, resp, "token_type", "service", &ttype));
    NHID_TRY(nhid_body_duration(req, resp, "token_ttl", 0, &ttl));
    if (ttl == 0)
        NHID_TRY(nhid_body_duration(req, resp, "ttl", 0, &ttl));
    NHID_TRY(nhid_body_duration(req, resp, "token_max_ttl", 0, &max_ttl));
    if (max_ttl == 0)
        NHID_TRY(nhid_body_duration(req, resp, "max_ttl", 0, &max_ttl));
    NHID_TRY(nhid_body_duration(req, resp, "token_period", 0, &period));
    NHID_TRY(nhid_body_int(req, resp, "token_num_uses", 0, 0, INT32_MAX, &uses));
    NHID_TRY(list_field(req, resp, "allowed_common_names", &cns));
    if (json_object_get(req->body, "allowed_spiffe_ids"))
        NHID_TRY(list_field(req, resp, "allowed_spiffe_ids", &uris));
    else
        NHID_TRY(list_field(req, resp, "allowed_uri_sans", &uris));
    if (json_object_get(req->body, "token_policies"))
        NHID_TRY(list_field(req, resp, "token_policies", &pol));
    else
        NHID_TRY(list_field(req, resp, "policies", &pol));
    NHID_TRY(list_field(req, resp, "token_bound_cidrs", &cidrs));
    if (strcmp(ttype, "service") && strcmp(ttype, "default") && *ttype)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"token_type\": only \"service\" tokens are "
                                  "supported"));
    static const char *const unsupported[] = {"allowed_dns_sans", "allowed_email_sans",
                                              "allowed_organizational_units",
                                              "required_extensions"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(unsupported); i++) {
        NHID_TRY(list_field(req, resp, unsupported[i], &unsup));
        size_t n = json_array_size(unsup);
        json_decref(unsup);
        unsup = NULL;
        if (n)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"%s\": not supported (constrain by "
                                      "allowed_spiffe_ids or allowed_common_names)",
                                      unsupported[i]));
    }
    size_t i;
    json_t *v;
    json_array_foreach(cidrs, i, v)
    {
        struct nhid_cidr c;
        if (nhid_cidr_parse(json_string_value(v), &c) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"token_bound_cidrs\": \"%.64s\" is not "
                                      "a CIDR",
                                      json_string_value(v)));
    }
    json_array_foreach(uris, i, v)
    {
        const char *p = json_string_value(v);
        if (!nhid_has_prefix(p, "spiffe://") || strlen(p) > NHID_IDENTITY_SPIFFE_MAX)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"allowed_spiffe_ids\": \"%.80s\" is not a SPIFFE ID "
                                      "pattern (spiffe://trust-domain/path, '*' within a segment)",
                                      p));
    }
    if (pem == NULL || *pem == '\0')
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "missing field \"certificate\" (the trusted CA, "
                                  "PEM)"));
    if (strlen(pem) > NHID_CERT_PEM_MAX)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"certificate\": larger than %d bytes",
                                  NHID_CERT_PEM_MAX));
    int ncerts = 0;
    X509_STORE *st = store_from_pem(pem, &ncerts);
    if (st == NULL)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"certificate\": no PEM certificate could be "
                                  "parsed"));
    X509_STORE_free(st);
    role = json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:O, s:I, s:I, s:I, s:I}", "name", name,
                     "certificate", pem, "display_name", display, "allowed_common_names", cns,
                     "allowed_uri_sans", uris, "token_policies", pol, "token_bound_cidrs", cidrs,
                     "token_ttl", (json_int_t)ttl, "token_max_ttl", (json_int_t)max_ttl,
                     "token_period", (json_int_t)period, "token_num_uses", (json_int_t)uses);
    NHID_CHECK_ALLOC(role);
    snprintf(key, sizeof(key), "auth/cert/role/%s", name);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, role));
    NHID_TRY(bump_gen(req->txn));
out:
    json_decref(cns);
    json_decref(uris);
    json_decref(pol);
    json_decref(cidrs);
    json_decref(role);
    return rc;
}

static int h_role_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = nhid_req_param(req, "name");
    char key[256], msg[256];
    json_t *role = NULL;
    if (nhid_identity_name_valid("certificate role name", name, msg, sizeof(msg)) < 0)
        return nhid_resp_error(resp, 400, "%s", msg);
    snprintf(key, sizeof(key), "auth/cert/role/%s", name);
    int rc = nhid_core_load_json(req->core, req->txn, key, &role);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no certificate role named %s", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    json_object_set(role, "allowed_spiffe_ids", json_object_get(role, "allowed_uri_sans"));
    json_object_set(role, "policies", json_object_get(role, "token_policies"));
    resp->data = role;
    return NHID_OK;
}

static int h_role_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = nhid_req_param(req, "name");
    char key[256], msg[256];
    if (nhid_identity_name_valid("certificate role name", name, msg, sizeof(msg)) < 0)
        return nhid_resp_error(resp, 400, "%s", msg);
    snprintf(key, sizeof(key), "auth/cert/role/%s", name);
    int rc = nhid_txn_delete(req->txn, key);
    if (rc == NHID_OK)
        rc = bump_gen(req->txn);
    return rc;
}

struct names {
    json_t *keys;
};

static int names_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct names *n = arg;
    json_array_append_new(n->keys, json_string(key + strlen("auth/cert/role/")));
    return 0;
}

static int h_role_list(struct nhid_request *req, struct nhid_response *resp)
{
    struct names n = {json_array()};
    if (n.keys == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_txn_scan_prefix(req->txn, "auth/cert/role/", NULL, NHID_CERT_ROLES_MAX, true,
                                  names_cb, &n);
    if (rc < 0) {
        json_decref(n.keys);
        return rc;
    }
    resp->data = json_pack("{s:o}", "keys", n.keys);
    return NHID_OK;
}

/* ---- login and tokenless mTLS ---------------------------------------------------- */

static json_t *cert_meta(const json_t *role, const struct peer_facts *f)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "cert_name", nhid_json_str(role, "name"),
                     "common_name", f->cn, "spiffe_id", f->spiffe, "serial_number", f->serial);
}

static int h_login(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"name", NULL};
    int rc = NHID_OK;
    const char *want = NULL;
    json_t *role = NULL, *ident = NULL, *meta = NULL;
    struct peer_facts f;
    char name[NHID_IDENTITY_NAME_MAX + 1];
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "name", NULL, &want));
    NHID_TRY(nhid_identity_login_precheck(req, resp, "cert", NULL));
    if (req->peer_cert == NULL)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "cert", NULL, NULL,
                                           "permission denied: no client certificate presented "
                                           "(log in over mTLS)",
                                           "no client certificate", false));
    rc = match_role(req, want, &f, &role);
    if (rc == NHID_ERR_INTERNAL)
        NHID_FAIL(nhid_resp_fail(resp, rc, NULL));
    if (rc < 0)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "cert", NULL, NULL, DENIED,
                                           "certificate not trusted by any role", false));
    if (f.spiffe[0] == '\0' || nhid_identity_by_spiffe(req->core, req->txn, f.spiffe, name) < 0)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "cert", NULL, NULL,
                                           "permission denied: the certificate's SPIFFE ID names "
                                           "no registered identity",
                                           f.spiffe[0] ? f.spiffe : "no SPIFFE ID", false));
    NHID_TRY(nhid_identity_get(req->core, req->txn, name, &ident));
    req->mtls = true;
    meta = cert_meta(role, &f);
    NHID_CHECK_ALLOC(meta);
    struct nhid_identity_login l = {
        .method = "cert",
        .path = "auth/cert/login",
        .role = nhid_json_str(role, "name"),
        .policies = json_object_get(role, "token_policies"),
        .meta = meta,
        .ttl = nhid_json_int(role, "token_ttl"),
        .max_ttl = nhid_json_int(role, "token_max_ttl"),
        .period = nhid_json_int(role, "token_period"),
        .num_uses = nhid_json_int(role, "token_num_uses"),
        .bound_cidrs = json_object_get(role, "token_bound_cidrs"),
    };
    NHID_TRY(nhid_identity_login_issue(req, resp, ident, &l, NULL));
out:
    json_decref(role);
    json_decref(ident);
    json_decref(meta);
    return rc;
}

static int cert_authenticate(struct nhid_request *req, struct nhid_response *resp)
{
    if (req->client_token != NULL || req->peer_cert == NULL)
        return NHID_OK;
    if (req->path && strcmp(req->path, "auth/cert/login") == 0)
        return NHID_OK; /* the login handler does its own checks */
    json_t *role = NULL, *ident = NULL;
    struct peer_facts f;
    char name[NHID_IDENTITY_NAME_MAX + 1], msg[256];
    /* An untrusted certificate is simply no credential (sys/health must still answer). */
    if (match_role(req, NULL, &f, &role) < 0)
        return NHID_OK;
    int rc = NHID_OK;
    if (f.spiffe[0] == '\0' || nhid_identity_by_spiffe(req->core, req->txn, f.spiffe, name) < 0 ||
        nhid_identity_get(req->core, req->txn, name, &ident) < 0) {
        json_decref(role);
        return NHID_OK;
    }
    if (nhid_identity_may_authenticate(ident, msg, sizeof(msg)) < 0 ||
        (req->core->identity_gate &&
         req->core->identity_gate(req->core, nhid_json_str(ident, "id"), msg, sizeof(msg)) < 0)) {
        nhid_identity_note_auth(req->core, name, "cert", req->remote_addr, false);
        rc = nhid_resp_error(resp, 403, "permission denied: %s",
                             nhid_has_prefix(msg, "permission denied: ") ? msg + 19 : msg);
        goto out;
    }
    struct nhid_auth *a = &req->auth;
    a->authenticated = true;
    a->method = "cert";
    snprintf(a->entity_id, sizeof(a->entity_id), "%s", nhid_json_str(ident, "id"));
    snprintf(a->identity, sizeof(a->identity), "%s", name);
    a->policies = json_deep_copy(json_object_get(role, "token_policies"));
    if (a->policies == NULL || json_array_size(a->policies) == 0) {
        json_decref(a->policies);
        a->policies = json_pack("[s]", "default");
    }
    a->metadata = cert_meta(role, &f);
    a->root = false;
    req->mtls = true;
    nhid_identity_note_auth(req->core, name, "cert", req->remote_addr, true);
out:
    json_decref(role);
    json_decref(ident);
    return rc;
}

static void cert_on_seal(struct nhid_core *core)
{
    (void)core;
    pthread_mutex_lock(&cache_lock);
    cache_free_locked();
    pthread_mutex_unlock(&cache_lock);
}

/*
 * An identity using mTLS alone reads its own record (the identity-self
 * route); other routes need a policy (core->authorize) as for tokens.
 */
static int h_self(struct nhid_request *req, struct nhid_response *resp)
{
    json_t *rec = NULL;
    if (req->auth.identity[0] == '\0')
        return nhid_resp_error(resp, 400, "this request carries no identity");
    int rc = nhid_identity_get(req->core, req->txn, req->auth.identity, &rec);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    resp->data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O*, s:b}", "name", req->auth.identity,
                           "entity_id", req->auth.entity_id, "spiffe_id",
                           nhid_json_str(rec, "spiffe_id"), "state", nhid_json_str(rec, "state"),
                           "auth_method", req->auth.method ? req->auth.method : "", "policies",
                           req->auth.policies, "mtls", req->mtls);
    json_decref(rec);
    return NHID_OK;
}

static const struct nhid_route cert_routes[] = {
    {"auth/cert/login", NHID_M_WRITE, NHID_ROUTE_UNAUTH | NHID_ROUTE_WRITE, h_login, "login"},
    {"auth/cert/certs", NHID_M_LIST | NHID_M_GET, 0, h_role_list, "list"},
    {"auth/cert/certs/:name", NHID_M_WRITE, NHID_ROUTE_WRITE, h_role_write, "update"},
    {"auth/cert/certs/:name", NHID_M_GET, 0, h_role_read, "read"},
    {"auth/cert/certs/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_role_delete, "delete"},
    {"identity/self", NHID_M_GET, NHID_ROUTE_SELF, h_self, "read_self"},
};

const struct nhid_engine nhid_cert_engine = {
    .name = "cert",
    .routes = cert_routes,
    .n_routes = NHID_ARRAY_LEN(cert_routes),
    .authenticate = cert_authenticate,
    .on_seal = cert_on_seal,
};
