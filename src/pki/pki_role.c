/*
 * pki_role — roles (/v1/pki/roles/:name): which SPIFFE IDs, DNS names and
 * IP SANs a certificate may carry, its ttl/max_ttl, the key types and
 * sizes accepted, no_store, and whether callers may request certificates
 * for identities other than their own (allow_other_identities).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"

#define ROLE_PATTERNS_MAX 64
#define ROLE_PATTERN_LEN 512

/* '*' matches any run of characters (possibly empty); everything else literally. */
bool pki_glob_match(const char *p, const char *s)
{
    const char *star = NULL, *ss = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            ss = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++ss;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

void pki_role_clear(struct pki_role *r)
{
    json_decref(r->allowed_spiffe_ids);
    json_decref(r->allowed_dns_names);
    json_decref(r->allowed_ip_sans);
    memset(r, 0, sizeof(*r));
}

int pki_role_load(struct nhid_core *core, struct nhid_txn *txn, const char *name,
                  struct pki_role *out)
{
    char key[256];
    json_t *rec = NULL;
    if (nhid_fmt(key, sizeof(key), "pki/role/%s", name) < 0)
        return NHID_ERR_NOT_FOUND;
    /* Read-only here: the per-thread decoded copy (signing loads the role on every request). */
    int rc = nhid_core_load_json_shared(core, txn, key, &rec);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->allowed_spiffe_ids = json_incref(json_object_get(rec, "allowed_spiffe_ids"));
    out->allowed_dns_names = json_incref(json_object_get(rec, "allowed_dns_names"));
    out->allowed_ip_sans = json_incref(json_object_get(rec, "allowed_ip_sans"));
    out->ttl = json_integer_value(json_object_get(rec, "ttl"));
    out->max_ttl = json_integer_value(json_object_get(rec, "max_ttl"));
    snprintf(out->key_type, sizeof(out->key_type), "%s", pki_jstr(rec, "key_type"));
    out->key_bits = json_integer_value(json_object_get(rec, "key_bits"));
    out->no_store = json_is_true(json_object_get(rec, "no_store"));
    out->allow_other_identities = json_is_true(json_object_get(rec, "allow_other_identities"));
    snprintf(out->issuer_ref, sizeof(out->issuer_ref), "%s", pki_jstr(rec, "issuer_ref"));
    json_decref(rec);
    return NHID_OK;
}

static json_t *default_role(struct nhid_core *core)
{
    char pat[300];
    snprintf(pat, sizeof(pat), "spiffe://%s/*", core->trust_domain);
    return json_pack("{s:[s], s:[], s:[], s:I, s:I, s:s, s:I, s:b, s:b, s:s}", "allowed_spiffe_ids",
                     pat, "allowed_dns_names", "allowed_ip_sans", "ttl",
                     (json_int_t)PKI_DEFAULT_TTL, "max_ttl", (json_int_t)PKI_DEFAULT_MAX_TTL,
                     "key_type", "any", "key_bits", (json_int_t)0, "no_store", 0,
                     "allow_other_identities", 0, "issuer_ref", "default");
}

int pki_role_save_default(struct nhid_core *core, struct nhid_txn *txn)
{
    json_t *r = default_role(core);
    if (r == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_core_save_json(core, txn, "pki/role/default", r);
    json_decref(r);
    return rc;
}

static bool role_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Validate a list field: at most 64 entries of at most 512 bytes each. */
static int check_list(struct nhid_response *resp, const char *field, json_t *list)
{
    size_t i;
    json_t *v;
    if (json_array_size(list) > ROLE_PATTERNS_MAX)
        return nhid_resp_error(resp, 400, "field \"%s\": at most %d entries", field,
                               ROLE_PATTERNS_MAX);
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || *s == '\0' || strlen(s) > ROLE_PATTERN_LEN)
            return nhid_resp_error(resp, 400,
                                   "field \"%s\": entry %zu must be a non-empty "
                                   "string of at most %d bytes",
                                   field, i + 1, ROLE_PATTERN_LEN);
    }
    return NHID_OK;
}

/* Parse "10.0.0.0/8", "2001:db8::/32" or a single address. */
int pki_cidr_parse(const char *s, uint8_t addr[16], int *family, int *prefix)
{
    char buf[64];
    if (strlen(s) >= sizeof(buf))
        return NHID_ERR_INVALID;
    snprintf(buf, sizeof(buf), "%s", s);
    char *slash = strchr(buf, '/');
    int pl = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || v < 0 || v > 128)
            return NHID_ERR_INVALID;
        pl = (int)v;
    }
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        if (pl > 32)
            return NHID_ERR_INVALID;
        *prefix = pl < 0 ? 32 : pl;
        return NHID_OK;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        *prefix = pl < 0 ? 128 : pl;
        return NHID_OK;
    }
    return NHID_ERR_INVALID;
}

static const char *const role_fields[] = {"allowed_spiffe_ids",
                                          "allowed_dns_names",
                                          "allowed_ip_sans",
                                          "ttl",
                                          "max_ttl",
                                          "key_type",
                                          "key_bits",
                                          "no_store",
                                          "allow_other_identities",
                                          "issuer_ref",
                                          NULL};

static int h_role_write(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = nhid_req_param(req, "name");
    json_t *spiffe = NULL, *dns = NULL, *ips = NULL, *rec = NULL, *old = NULL;
    int64_t ttl, max_ttl, bits;
    const char *kt, *issuer;
    bool no_store, other;
    char key[256], pat[300];
    if (!role_name_ok(name))
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "role name \"%s\": use 1 to 128 letters, digits, "
                                  "'-', '_', '.'",
                                  name));
    NHID_TRY(nhid_fmt(key, sizeof(key), "pki/role/%s", name));
    /* Vault semantics: a write replaces the role; absent fields take defaults. */
    (void)old;
    NHID_TRY(nhid_body_only(req, resp, role_fields));
    NHID_TRY(nhid_body_string_list(req, resp, "allowed_spiffe_ids", &spiffe));
    NHID_TRY(nhid_body_string_list(req, resp, "allowed_dns_names", &dns));
    NHID_TRY(nhid_body_string_list(req, resp, "allowed_ip_sans", &ips));
    NHID_TRY(nhid_body_duration(req, resp, "ttl", PKI_DEFAULT_TTL, &ttl));
    NHID_TRY(nhid_body_duration(req, resp, "max_ttl", PKI_DEFAULT_MAX_TTL, &max_ttl));
    NHID_TRY(nhid_body_string(req, resp, "key_type", "any", &kt));
    NHID_TRY(nhid_body_int(req, resp, "key_bits", 0, 0, 8192, &bits));
    NHID_TRY(nhid_body_bool(req, resp, "no_store", false, &no_store));
    NHID_TRY(nhid_body_bool(req, resp, "allow_other_identities", false, &other));
    NHID_TRY(nhid_body_string(req, resp, "issuer_ref", "default", &issuer));
    if (json_array_size(spiffe) == 0) {
        snprintf(pat, sizeof(pat), "spiffe://%s/*", req->core->trust_domain);
        json_array_append_new(spiffe, json_string(pat));
    }
    NHID_TRY(check_list(resp, "allowed_spiffe_ids", spiffe));
    NHID_TRY(check_list(resp, "allowed_dns_names", dns));
    NHID_TRY(check_list(resp, "allowed_ip_sans", ips));
    size_t i;
    json_t *v;
    json_array_foreach(spiffe, i, v)
    {
        if (!nhid_has_prefix(json_string_value(v), "spiffe://"))
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"allowed_spiffe_ids\": \"%s\" must "
                                      "start with spiffe://",
                                      json_string_value(v)));
    }
    json_array_foreach(ips, i, v)
    {
        uint8_t a[16];
        int fam, pl;
        if (pki_cidr_parse(json_string_value(v), a, &fam, &pl) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"allowed_ip_sans\": \"%s\" is not an IP "
                                      "address or CIDR (e.g. 10.0.0.0/8)",
                                      json_string_value(v)));
    }
    if (ttl <= 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"ttl\": must be positive"));
    if (max_ttl <= 0 || max_ttl > 365 * 24 * 3600)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"max_ttl\": must be between 1s and 8760h"));
    if (ttl > max_ttl)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"ttl\": %" PRId64 "s is more than max_ttl "
                                  "%" PRId64 "s",
                                  ttl, max_ttl));
    if (strcmp(kt, "any") && strcmp(kt, "ec") && strcmp(kt, "rsa") && strcmp(kt, "ed25519"))
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"key_type\": \"%s\" is not supported (use "
                                  "any, ec, rsa, ed25519)",
                                  kt));
    if (!strcmp(kt, "rsa") && bits != 0 && bits != 2048 && bits != 3072 && bits != 4096)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"key_bits\": %" PRId64 " for rsa (use 2048, "
                                  "3072 or 4096 as the minimum)",
                                  bits));
    if (!strcmp(kt, "ec") && bits != 0 && bits != 256 && bits != 384)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"key_bits\": %" PRId64 " for ec (use 256 "
                                  "or 384)",
                                  bits));
    if ((!strcmp(kt, "any") || !strcmp(kt, "ed25519")) && bits != 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"key_bits\": only with key_type ec or rsa"));
    rec =
        json_pack("{s:O, s:O, s:O, s:I, s:I, s:s, s:I, s:b, s:b, s:s}", "allowed_spiffe_ids",
                  spiffe, "allowed_dns_names", dns, "allowed_ip_sans", ips, "ttl", (json_int_t)ttl,
                  "max_ttl", (json_int_t)max_ttl, "key_type", kt, "key_bits", (json_int_t)bits,
                  "no_store", no_store, "allow_other_identities", other, "issuer_ref", issuer);
    NHID_CHECK_ALLOC(rec);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, rec));
    resp->data = json_incref(rec);
out:
    json_decref(spiffe);
    json_decref(dns);
    json_decref(ips);
    json_decref(rec);
    return rc;
}

static int h_role_read(struct nhid_request *req, struct nhid_response *resp)
{
    char key[256];
    json_t *rec = NULL;
    const char *name = nhid_req_param(req, "name");
    if (nhid_fmt(key, sizeof(key), "pki/role/%s", name) < 0)
        return nhid_resp_error(resp, 404, "no role \"%s\"", name);
    int rc = nhid_core_load_json(req->core, req->txn, key, &rec);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no role \"%s\"", name);
    if (rc < 0)
        return rc;
    resp->data = rec;
    return NHID_OK;
}

static int h_role_delete(struct nhid_request *req, struct nhid_response *resp)
{
    char key[256];
    const char *name = nhid_req_param(req, "name");
    if (nhid_fmt(key, sizeof(key), "pki/role/%s", name) < 0)
        return nhid_resp_error(resp, 404, "no role \"%s\"", name);
    resp->status = 204;
    return nhid_txn_delete(req->txn, key);
}

static int list_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    json_array_append_new(arg, json_string(key + strlen("pki/role/")));
    return 0;
}

static int h_role_list(struct nhid_request *req, struct nhid_response *resp)
{
    json_t *keys = json_array();
    int rc = nhid_txn_scan_prefix(req->txn, "pki/role/", NULL, 10000, true, list_cb, keys);
    if (rc < 0) {
        json_decref(keys);
        return rc;
    }
    resp->data = json_pack("{s:o}", "keys", keys);
    return NHID_OK;
}

const struct nhid_route pki_role_routes[] = {
    {"pki/roles", NHID_M_LIST, 0, h_role_list, "list"},
    {"pki/roles/:name", NHID_M_GET, 0, h_role_read, "read"},
    {"pki/roles/:name", NHID_M_WRITE, NHID_ROUTE_WRITE, h_role_write, "update"},
    {"pki/roles/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_role_delete, "delete"},
};
const size_t pki_n_role_routes = NHID_ARRAY_LEN(pki_role_routes);
_Static_assert(NHID_ARRAY_LEN(pki_role_routes) == PKI_N_ROLE_ROUTES,
               "update PKI_N_ROLE_ROUTES in pki_internal.h");
