/* auth/approle — roles, role IDs, secret IDs and login (Vault's API). */
#include "auth/approle/approle.h"
#include "core/cidr.h"

#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "identity/identity.h"
#include "store/store.h"

#define MOD "approle"
#define SECRET_PREFIX "nsi."
#define HASH_HEX 65
#define ROLE_ID_MAX 128
#define META_MAX 32
#define SECRET_IDS_LIST_MAX 10000
#define DENIED "permission denied: invalid role ID or secret ID"
#define CRED_TYPE "approle-secret-id"

struct approle_state {
    uint8_t key[32];
    bool ready;
};

static struct approle_state *state(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "approle");
    return slot ? *slot : NULL;
}

static int secret_hash(struct nhid_core *core, const char *secret, char out[HASH_HEX])
{
    struct approle_state *st = state(core);
    if (st == NULL || !st->ready)
        return NHID_ERR_SEALED;
    nhid_secret_hash_hex(st->key, secret, out);
    return NHID_OK;
}

/* Read a CIDR list field (array or comma-separated), validated. *out new reference. */
static int body_cidrs(struct nhid_request *req, struct nhid_response *resp, const char *field,
                      json_t **out)
{
    json_t *l = NULL;
    int rc = nhid_body_string_list(req, resp, field, &l);
    if (rc < 0)
        return rc;
    if (l == NULL)
        l = json_array();
    if (json_array_size(l) > NHID_APPROLE_CIDRS_MAX) {
        json_decref(l);
        return nhid_resp_error(resp, 400, "field \"%s\": more than %d CIDRs", field,
                               NHID_APPROLE_CIDRS_MAX);
    }
    size_t i;
    json_t *v;
    json_array_foreach(l, i, v)
    {
        struct nhid_cidr c;
        if (nhid_cidr_parse(json_string_value(v), &c) < 0) {
            rc = nhid_resp_error(resp, 400,
                                 "field \"%s\": \"%.64s\" is not a CIDR (e.g. 10.0.0.0/8 or "
                                 "2001:db8::/32)",
                                 field, json_string_value(v));
            json_decref(l);
            return rc;
        }
    }
    *out = l;
    return NHID_OK;
}

/* ---- roles ---------------------------------------------------------------- */

static int role_name(struct nhid_request *req, struct nhid_response *resp, const char **out)
{
    char msg[256];
    const char *name = nhid_req_param(req, "role_name");
    if (nhid_identity_name_valid("role name", name, msg, sizeof(msg)) < 0)
        return nhid_resp_error(resp, 400, "%s", msg);
    *out = name;
    return NHID_OK;
}

static int load_role(struct nhid_request *req, struct nhid_response *resp, const char *name,
                     json_t **out)
{
    char key[256];
    snprintf(key, sizeof(key), "approle/role/%s", name);
    int rc = nhid_core_load_json(req->core, req->txn, key, out);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no role named %s", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    return NHID_OK;
}

static const char *const role_fields[] = {"identity",
                                          "bind_secret_id",
                                          "secret_id_bound_cidrs",
                                          "secret_id_num_uses",
                                          "secret_id_ttl",
                                          "enable_local_secret_ids",
                                          "local_secret_ids",
                                          "token_ttl",
                                          "token_max_ttl",
                                          "token_policies",
                                          "policies",
                                          "token_bound_cidrs",
                                          "token_explicit_max_ttl",
                                          "token_no_default_policy",
                                          "token_num_uses",
                                          "token_period",
                                          "period",
                                          "token_type",
                                          "bound_cidr_list",
                                          "role_id",
                                          NULL};

static int valid_role_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ROLE_ID_MAX)
        return NHID_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || s[i] == '/')
            return NHID_ERR_INVALID;
    return NHID_OK;
}

static int h_role_write(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL, *ident_name = NULL, *token_type = NULL, *role_id = NULL;
    json_t *old = NULL, *role = NULL, *pol = NULL, *scidrs = NULL, *tcidrs = NULL, *ident = NULL;
    char key[256], msg[256];
    bool bind = true, local = false, no_default = false;
    int64_t sid_uses, sid_ttl, ttl, max_ttl, exp_max, tuses, period;
    NHID_TRY(role_name(req, resp, &name));
    NHID_TRY(nhid_body_only(req, resp, role_fields));
    snprintf(key, sizeof(key), "approle/role/%s", name);
    rc = nhid_core_load_json(req->core, req->txn, key, &old);
    if (rc < 0 && rc != NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_fail(resp, rc, NULL));
    rc = NHID_OK;
    /* Defaults come from the existing role (Vault updates only the fields sent). */
#define OLD_INT(k, d) (old ? nhid_json_int(old, k) : (d))
    NHID_TRY(nhid_body_string(req, resp, "identity", old ? nhid_json_str(old, "identity") : name,
                              &ident_name));
    NHID_TRY(nhid_body_bool(req, resp, "bind_secret_id",
                            old ? json_is_true(json_object_get(old, "bind_secret_id")) : true,
                            &bind));
    NHID_TRY(nhid_body_bool(req, resp, "enable_local_secret_ids", false, &local));
    NHID_TRY(nhid_body_bool(req, resp, "token_no_default_policy", false, &no_default));
    NHID_TRY(nhid_body_int(req, resp, "secret_id_num_uses", OLD_INT("secret_id_num_uses", 0), 0,
                           INT32_MAX, &sid_uses));
    NHID_TRY(nhid_body_duration(req, resp, "secret_id_ttl", OLD_INT("secret_id_ttl", 0), &sid_ttl));
    NHID_TRY(nhid_body_duration(req, resp, "token_ttl", OLD_INT("token_ttl", 0), &ttl));
    NHID_TRY(nhid_body_duration(req, resp, "token_max_ttl", OLD_INT("token_max_ttl", 0), &max_ttl));
    NHID_TRY(nhid_body_duration(req, resp, "token_explicit_max_ttl",
                                OLD_INT("token_explicit_max_ttl", 0), &exp_max));
    NHID_TRY(nhid_body_int(req, resp, "token_num_uses", OLD_INT("token_num_uses", 0), 0, INT32_MAX,
                           &tuses));
    NHID_TRY(nhid_body_duration(req, resp, "token_period", OLD_INT("token_period", 0), &period));
    NHID_TRY(nhid_body_string(req, resp, "token_type", "service", &token_type));
    NHID_TRY(nhid_body_string(req, resp, "role_id", NULL, &role_id));
#undef OLD_INT
    if (strcmp(token_type, "service") && strcmp(token_type, "default"))
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"token_type\": only \"service\" tokens are "
                                  "supported"));
    if (sid_ttl < 0 || ttl < 0 || max_ttl < 0 || exp_max < 0 || period < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "TTL fields must not be negative"));
    if (max_ttl && ttl > max_ttl)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"token_ttl\": %lld s is longer than "
                                  "token_max_ttl (%lld s)",
                                  (long long)ttl, (long long)max_ttl));
    if (json_object_get(req->body, "token_policies"))
        NHID_TRY(nhid_body_string_list(req, resp, "token_policies", &pol));
    else if (json_object_get(req->body, "policies"))
        NHID_TRY(nhid_body_string_list(req, resp, "policies", &pol));
    else
        pol = old ? json_incref(json_object_get(old, "token_policies")) : json_array();
    if (json_object_get(req->body, "secret_id_bound_cidrs"))
        NHID_TRY(body_cidrs(req, resp, "secret_id_bound_cidrs", &scidrs));
    else if (json_object_get(req->body, "bound_cidr_list"))
        NHID_TRY(body_cidrs(req, resp, "bound_cidr_list", &scidrs));
    else
        scidrs = old ? json_incref(json_object_get(old, "secret_id_bound_cidrs")) : json_array();
    if (json_object_get(req->body, "token_bound_cidrs"))
        NHID_TRY(body_cidrs(req, resp, "token_bound_cidrs", &tcidrs));
    else
        tcidrs = old ? json_incref(json_object_get(old, "token_bound_cidrs")) : json_array();
    if (json_array_size(pol) > 64)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"token_policies\": more than 64 policies"));
    if (no_default == false && !json_array_size(pol)) {
        /* a login token always has at least "default" */
    }
    if (nhid_identity_name_valid("field \"identity\"", ident_name, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
    rc = nhid_identity_get(req->core, req->txn, ident_name, &ident);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"identity\": no identity named %s (register it with "
                                  "`nhid identity create %s -kind=...`, or set \"identity\")",
                                  ident_name, ident_name));
    NHID_TRY(rc);
    if (!bind && json_array_size(scidrs) == 0)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"bind_secret_id\": false needs "
                                  "secret_id_bound_cidrs (a role needs some constraint)"));
    char rid[ROLE_ID_MAX + 1];
    if (role_id) {
        if (valid_role_id(role_id) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400, "field \"role_id\": 1 to %d printable characters",
                                      ROLE_ID_MAX));
        snprintf(rid, sizeof(rid), "%s", role_id);
    } else if (old) {
        snprintf(rid, sizeof(rid), "%s", nhid_json_str(old, "role_id"));
    } else {
        NHID_TRY(nhid_uuid(rid));
    }
    char rkey[256];
    if (old && strcmp(rid, nhid_json_str(old, "role_id")) != 0) {
        snprintf(rkey, sizeof(rkey), "approle/role-id/%s", nhid_json_str(old, "role_id"));
        NHID_TRY(nhid_txn_delete(req->txn, rkey));
    }
    snprintf(rkey, sizeof(rkey), "approle/role-id/%s", rid);
    json_t *ref = NULL;
    if (nhid_core_load_json(req->core, req->txn, rkey, &ref) == NHID_OK) {
        bool other = strcmp(nhid_json_str(ref, "role"), name) != 0;
        json_decref(ref);
        if (other)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"role_id\": already used by another "
                                      "role"));
    }
    ref = json_pack("{s:s}", "role", name);
    NHID_CHECK_ALLOC(ref);
    rc = nhid_core_save_json(req->core, req->txn, rkey, ref);
    json_decref(ref);
    NHID_TRY(rc);
    role = json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:O, s:I, s:I, s:I, s:I, s:I, s:O, s:O, s:I, "
        "s:I, s:b, s:b, s:s}",
        "name", name, "role_id", rid, "identity", ident_name, "entity_id",
        nhid_json_str(ident, "id"), "bind_secret_id", bind, "secret_id_bound_cidrs", scidrs,
        "secret_id_num_uses", (json_int_t)sid_uses, "secret_id_ttl", (json_int_t)sid_ttl,
        "token_ttl", (json_int_t)ttl, "token_max_ttl", (json_int_t)max_ttl,
        "token_explicit_max_ttl", (json_int_t)exp_max, "token_policies", pol, "token_bound_cidrs",
        tcidrs, "token_num_uses", (json_int_t)tuses, "token_period", (json_int_t)period,
        "token_no_default_policy", no_default, "local_secret_ids", local, "token_type", "service");
    NHID_CHECK_ALLOC(role);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, role));
out:
    json_decref(old);
    json_decref(role);
    json_decref(pol);
    json_decref(scidrs);
    json_decref(tcidrs);
    json_decref(ident);
    return rc;
}

static int h_role_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    json_t *role = NULL;
    int rc = role_name(req, resp, &name);
    if (rc == NHID_OK)
        rc = load_role(req, resp, name, &role);
    if (rc < 0)
        return rc;
    json_object_del(role, "role_id"); /* read through role-id, as Vault */
    json_object_del(role, "name");
    json_object_set(role, "policies", json_object_get(role, "token_policies"));
    json_object_set(role, "period", json_object_get(role, "token_period"));
    resp->data = role;
    return NHID_OK;
}

static int h_role_list(struct nhid_request *req, struct nhid_response *resp);

/* Delete one secret ID entry (and its indexes), marking its credential record. */
static int delete_secret(struct nhid_core *core, struct nhid_txn *txn, const char *role,
                         const char *hash, const char *why)
{
    int rc = NHID_OK;
    char key[400];
    json_t *e = NULL;
    snprintf(key, sizeof(key), "approle/sid/%s/%s", role, hash);
    rc = nhid_core_load_json(core, txn, key, &e);
    if (rc < 0)
        return rc;
    NHID_TRY(nhid_txn_delete(txn, key));
    snprintf(key, sizeof(key), "approle/acc/%s", nhid_json_str(e, "accessor"));
    NHID_TRY(nhid_txn_delete(txn, key));
    snprintf(key, sizeof(key), "approle/sid-acc/%s/%s", role, nhid_json_str(e, "accessor"));
    NHID_TRY(nhid_txn_delete(txn, key));
    NHID_TRY(nhid_identity_cred_revoked(core, txn, nhid_json_str(e, "entity_id"), CRED_TYPE,
                                        nhid_json_str(e, "accessor"), why));
out:
    json_decref(e);
    return rc;
}

struct sid_list {
    char (*acc)[64];
    size_t n, cap;
    size_t plen;
};

static int sid_list_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct sid_list *l = arg;
    if (l->n >= l->cap)
        return 1;
    snprintf(l->acc[l->n++], 64, "%s", key + l->plen);
    return 0;
}

static int secret_by_accessor(struct nhid_core *core, struct nhid_txn *txn, const char *accessor,
                              char role[160], char hash[HASH_HEX])
{
    char key[200];
    json_t *a = NULL;
    if (strlen(accessor) > 64)
        return NHID_ERR_NOT_FOUND;
    snprintf(key, sizeof(key), "approle/acc/%s", accessor);
    int rc = nhid_core_load_json(core, txn, key, &a);
    if (rc < 0)
        return rc;
    snprintf(role, 160, "%s", nhid_json_str(a, "role"));
    snprintf(hash, HASH_HEX, "%s", nhid_json_str(a, "hash"));
    json_decref(a);
    return NHID_OK;
}

static int h_role_delete(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL;
    json_t *role = NULL;
    char key[256];
    struct sid_list l = {0};
    NHID_TRY(role_name(req, resp, &name));
    snprintf(key, sizeof(key), "approle/role/%s", name);
    if (nhid_core_load_json(req->core, req->txn, key, &role) < 0)
        return NHID_OK; /* idempotent */
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "approle/sid-acc/%s/", name);
    l.cap = 100000;
    l.acc = calloc(l.cap, sizeof(*l.acc));
    NHID_CHECK_ALLOC(l.acc);
    l.plen = strlen(prefix);
    NHID_TRY(nhid_txn_scan_prefix(req->txn, prefix, NULL, 0, true, sid_list_cb, &l));
    for (size_t i = 0; i < l.n; i++) {
        char r[160], h[HASH_HEX];
        if (secret_by_accessor(req->core, req->txn, l.acc[i], r, h) == NHID_OK)
            NHID_TRY(delete_secret(req->core, req->txn, r, h, "role deleted"));
    }
    NHID_TRY(nhid_txn_delete_prefix(req->txn, prefix, NULL));
    snprintf(key, sizeof(key), "approle/role-id/%s", nhid_json_str(role, "role_id"));
    NHID_TRY(nhid_txn_delete(req->txn, key));
    snprintf(key, sizeof(key), "approle/role/%s", name);
    NHID_TRY(nhid_txn_delete(req->txn, key));
out:
    free(l.acc);
    json_decref(role);
    return rc;
}

static int h_role_id_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    json_t *role = NULL;
    int rc = role_name(req, resp, &name);
    if (rc == NHID_OK)
        rc = load_role(req, resp, name, &role);
    if (rc < 0)
        return rc;
    resp->data = json_pack("{s:s}", "role_id", nhid_json_str(role, "role_id"));
    json_decref(role);
    return NHID_OK;
}

static int h_role_id_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"role_id", NULL};
    const char *name = NULL, *rid = NULL;
    json_t *role = NULL;
    int rc = role_name(req, resp, &name);
    if (rc == NHID_OK)
        rc = nhid_body_only(req, resp, fields);
    if (rc == NHID_OK)
        rc = nhid_body_string(req, resp, "role_id", NULL, &rid);
    if (rc < 0)
        return rc;
    if (rid == NULL || valid_role_id(rid) < 0)
        return nhid_resp_error(resp, 400, "field \"role_id\": 1 to %d printable characters",
                               ROLE_ID_MAX);
    rc = load_role(req, resp, name, &role);
    if (rc < 0)
        return rc;
    char key[256];
    json_t *ref = NULL;
    snprintf(key, sizeof(key), "approle/role-id/%s", rid);
    if (nhid_core_load_json(req->core, req->txn, key, &ref) == NHID_OK) {
        bool other = strcmp(nhid_json_str(ref, "role"), name) != 0;
        json_decref(ref);
        if (other) {
            json_decref(role);
            return nhid_resp_error(resp, 400, "field \"role_id\": already used by another role");
        }
    }
    snprintf(key, sizeof(key), "approle/role-id/%s", nhid_json_str(role, "role_id"));
    rc = nhid_txn_delete(req->txn, key);
    if (rc == NHID_OK) {
        json_object_set_new(role, "role_id", json_string(rid));
        snprintf(key, sizeof(key), "approle/role/%s", name);
        rc = nhid_core_save_json(req->core, req->txn, key, role);
    }
    if (rc == NHID_OK) {
        ref = json_pack("{s:s}", "role", name);
        snprintf(key, sizeof(key), "approle/role-id/%s", rid);
        rc = ref ? nhid_core_save_json(req->core, req->txn, key, ref) : NHID_ERR_NOMEM;
        json_decref(ref);
    }
    json_decref(role);
    return rc;
}

/* ---- secret IDs ---------------------------------------------------------------- */

static const char *const sid_fields[] = {"metadata", "cidr_list", "token_bound_cidrs",
                                         "ttl",      "num_uses",  NULL};

static int h_secret_id_generate(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL;
    json_t *role = NULL, *cidrs = NULL, *tcidrs = NULL, *meta = NULL, *e = NULL, *cm = NULL;
    char secret[NHID_TOKEN_MAX] = "", hash[HASH_HEX], accessor[37], key[400];
    int64_t ttl, uses;
    NHID_TRY(role_name(req, resp, &name));
    NHID_TRY(nhid_body_only(req, resp, sid_fields));
    NHID_TRY(load_role(req, resp, name, &role));
    NHID_TRY(body_cidrs(req, resp, "cidr_list", &cidrs));
    NHID_TRY(body_cidrs(req, resp, "token_bound_cidrs", &tcidrs));
    NHID_TRY(nhid_body_duration(req, resp, "ttl", nhid_json_int(role, "secret_id_ttl"), &ttl));
    NHID_TRY(nhid_body_int(req, resp, "num_uses", nhid_json_int(role, "secret_id_num_uses"), 0,
                           INT32_MAX, &uses));
    if (ttl < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"ttl\": must not be negative"));
    if (ttl == 0)
        ttl = NHID_APPROLE_SECRET_ID_TTL_DEFAULT;
    if (nhid_json_int(role, "secret_id_ttl") > 0 && ttl > nhid_json_int(role, "secret_id_ttl"))
        ttl = nhid_json_int(role, "secret_id_ttl");
    /* A secret ID's CIDRs must lie within the role's (Vault: a subset). */
    json_t *mv = json_object_get(req->body, "metadata");
    if (mv == NULL || json_is_null(mv) || (json_is_string(mv) && !*json_string_value(mv))) {
        meta = json_object();
    } else if (json_is_object(mv)) {
        meta = json_incref(mv);
    } else if (json_is_string(mv)) {
        meta = json_loads(json_string_value(mv), 0, NULL); /* hvac sends a JSON string */
        if (!json_is_object(meta))
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"metadata\": expected a JSON object of "
                                      "strings"));
    } else {
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"metadata\": expected a JSON object of "
                                  "strings"));
    }
    NHID_CHECK_ALLOC(meta);
    if (json_object_size(meta) > META_MAX)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"metadata\": more than %d keys", META_MAX));
    {
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v) if (!json_is_string(v) || strlen(k) > 128 ||
                                            strlen(json_string_value(v)) > 512)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"metadata\": value of \"%.64s\" must be "
                                      "a string of at most 512 bytes",
                                      k));
    }
    NHID_TRY(nhid_random_token(SECRET_PREFIX, secret));
    NHID_TRY(secret_hash(req->core, secret, hash));
    NHID_TRY(nhid_uuid(accessor));
    int64_t now = nhid_now();
    e = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:O, s:O, s:O}", "accessor", accessor,
                  "role", name, "entity_id", nhid_json_str(role, "entity_id"), "identity",
                  nhid_json_str(role, "identity"), "created", (json_int_t)now, "expires",
                  (json_int_t)(now + ttl), "ttl", (json_int_t)ttl, "num_uses", (json_int_t)uses,
                  "cidr_list", cidrs, "token_bound_cidrs", tcidrs, "metadata", meta);
    NHID_CHECK_ALLOC(e);
    snprintf(key, sizeof(key), "approle/sid/%s/%s", name, hash);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, e));
    json_t *a = json_pack("{s:s, s:s}", "role", name, "hash", hash);
    NHID_CHECK_ALLOC(a);
    snprintf(key, sizeof(key), "approle/acc/%s", accessor);
    rc = nhid_core_save_json(req->core, req->txn, key, a);
    json_decref(a);
    NHID_TRY(rc);
    snprintf(key, sizeof(key), "approle/sid-acc/%s/%s", name, accessor);
    NHID_TRY(nhid_txn_put(req->txn, key, (const uint8_t *)"", 0));
    cm = json_pack("{s:s}", "role", name);
    NHID_CHECK_ALLOC(cm);
    NHID_TRY(nhid_identity_cred_record(req->core, req->txn, nhid_json_str(role, "entity_id"),
                                       CRED_TYPE, accessor, now, now + ttl, cm));
    resp->data =
        json_pack("{s:s, s:s, s:I, s:I}", "secret_id", secret, "secret_id_accessor", accessor,
                  "secret_id_ttl", (json_int_t)ttl, "secret_id_num_uses", (json_int_t)uses);
    NHID_CHECK_ALLOC(resp->data);
out:
    nhid_wipe(secret, sizeof(secret));
    json_decref(role);
    json_decref(cidrs);
    json_decref(tcidrs);
    json_decref(meta);
    json_decref(e);
    json_decref(cm);
    return rc;
}

static int h_secret_id_list(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    json_t *role = NULL;
    int rc = role_name(req, resp, &name);
    if (rc == NHID_OK)
        rc = load_role(req, resp, name, &role);
    if (rc < 0)
        return rc;
    json_decref(role);
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "approle/sid-acc/%s/", name);
    struct sid_list l = {calloc(SECRET_IDS_LIST_MAX, 64), 0, SECRET_IDS_LIST_MAX, strlen(prefix)};
    if (l.acc == NULL)
        return NHID_ERR_NOMEM;
    rc = nhid_txn_scan_prefix(req->txn, prefix, NULL, 0, true, sid_list_cb, &l);
    if (rc == NHID_OK) {
        json_t *keys = json_array();
        for (size_t i = 0; keys && i < l.n; i++)
            json_array_append_new(keys, json_string(l.acc[i]));
        resp->data = json_pack("{s:o*}", "keys", keys);
        if (l.n == 0) {
            json_decref(resp->data);
            resp->data = NULL;
            nhid_resp_error(resp, 404, "no secret IDs for role %s", name);
            rc = NHID_ERR_NOT_FOUND;
        }
    }
    free(l.acc);
    return rc;
}

static json_t *secret_lookup_data(const json_t *e)
{
    char ct[NHID_RFC3339_LEN], et[NHID_RFC3339_LEN];
    nhid_time_format(nhid_json_int(e, "created"), ct);
    nhid_time_format(nhid_json_int(e, "expires"), et);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:O, s:O, s:O}", "secret_id_accessor",
        nhid_json_str(e, "accessor"), "creation_time", ct, "expiration_time", et,
        "last_updated_time", ct, "secret_id_num_uses", (json_int_t)nhid_json_int(e, "num_uses"),
        "secret_id_ttl", (json_int_t)nhid_json_int(e, "ttl"), "cidr_list",
        json_object_get(e, "cidr_list"), "token_bound_cidrs",
        json_object_get(e, "token_bound_cidrs"), "metadata", json_object_get(e, "metadata"));
}

/* Find the entry for the body's secret_id (or secret_id_accessor) under this role. */
static int secret_from_body(struct nhid_request *req, struct nhid_response *resp, bool by_accessor,
                            const char **role_out, char hash[HASH_HEX], json_t **e)
{
    static const char *const f1[] = {"secret_id", NULL};
    static const char *const f2[] = {"secret_id_accessor", NULL};
    const char *field = by_accessor ? "secret_id_accessor" : "secret_id";
    const char *name = NULL, *val = NULL;
    int rc = role_name(req, resp, &name);
    if (rc == NHID_OK)
        rc = nhid_body_only(req, resp, by_accessor ? f2 : f1);
    if (rc == NHID_OK)
        rc = nhid_body_string(req, resp, field, NULL, &val);
    if (rc < 0)
        return rc;
    if (val == NULL || *val == '\0')
        return nhid_resp_error(resp, 400, "missing field \"%s\"", field);
    if (by_accessor) {
        char r[160];
        rc = secret_by_accessor(req->core, req->txn, val, r, hash);
        if (rc == NHID_OK && strcmp(r, name) != 0)
            rc = NHID_ERR_NOT_FOUND;
    } else {
        rc = secret_hash(req->core, val, hash);
    }
    char key[400];
    if (rc == NHID_OK) {
        snprintf(key, sizeof(key), "approle/sid/%s/%s", name, hash);
        rc = nhid_core_load_json(req->core, req->txn, key, e);
    }
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no such secret ID for role %s", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    *role_out = name;
    return NHID_OK;
}

/* Lookup of a secret ID named by its value or (by_accessor) its accessor. */
static int secret_lookup(struct nhid_request *req, struct nhid_response *resp, bool by_accessor)
{
    const char *role;
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = secret_from_body(req, resp, by_accessor, &role, hash, &e);
    if (rc < 0)
        return rc;
    resp->data = secret_lookup_data(e);
    json_decref(e);
    return NHID_OK;
}

/*
 * Destroy a secret ID named by its value or its accessor. Vault answers
 * success for an unknown secret ID value, 404 for an unknown accessor.
 */
static int secret_destroy(struct nhid_request *req, struct nhid_response *resp, bool by_accessor)
{
    const char *role;
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = secret_from_body(req, resp, by_accessor, &role, hash, &e);
    if (rc == NHID_ERR_NOT_FOUND && !by_accessor) {
        nhid_response_clear(resp);
        return NHID_OK;
    }
    if (rc < 0)
        return rc;
    json_decref(e);
    return delete_secret(req->core, req->txn, role, hash, "secret ID destroyed");
}

static int h_secret_lookup(struct nhid_request *req, struct nhid_response *resp)
{
    return secret_lookup(req, resp, false);
}

static int h_secret_destroy(struct nhid_request *req, struct nhid_response *resp)
{
    return secret_destroy(req, resp, false);
}

static int h_accessor_lookup(struct nhid_request *req, struct nhid_response *resp)
{
    return secret_lookup(req, resp, true);
}

static int h_accessor_destroy(struct nhid_request *req, struct nhid_response *resp)
{
    return secret_destroy(req, resp, true);
}

/* ---- login -------------------------------------------------------------------- */

static int h_login(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"role_id", "secret_id", NULL};
    int rc = NHID_OK;
    const char *role_id = NULL, *secret = NULL;
    json_t *ref = NULL, *role = NULL, *e = NULL, *ident = NULL;
    char key[400], hash[HASH_HEX], rate_key[200];
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "role_id", NULL, &role_id));
    NHID_TRY(nhid_body_string(req, resp, "secret_id", "", &secret));
    if (role_id == NULL || *role_id == '\0')
        NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"role_id\""));
    if (valid_role_id(role_id) < 0)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", NULL, NULL, DENIED,
                                           "malformed role ID", false));
    snprintf(rate_key, sizeof(rate_key), "approle/%s", role_id);
    NHID_TRY(nhid_identity_login_precheck(req, resp, "approle", rate_key));
    snprintf(key, sizeof(key), "approle/role-id/%s", role_id);
    /* Shared, read-only entries (the per-thread entry cache): a login decodes nothing twice. */
    rc = nhid_core_load_json_shared(req->core, req->txn, key, &ref);
    if (rc == NHID_OK) {
        snprintf(key, sizeof(key), "approle/role/%s", nhid_json_str(ref, "role"));
        rc = nhid_core_load_json_shared(req->core, req->txn, key, &role);
    }
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, NULL, DENIED,
                                           "unknown role ID", false));
    NHID_TRY(rc);
    const char *rname = nhid_json_str(role, "name");
    const char *iname = nhid_json_str(role, "identity");
    if (!nhid_cidr_list_allows(json_object_get(role, "secret_id_bound_cidrs"), req->remote_addr) ||
        !nhid_cidr_list_allows(json_object_get(role, "token_bound_cidrs"), req->remote_addr))
        NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, iname, DENIED,
                                           "source address outside the role's bound CIDRs", false));
    bool bind = json_is_true(json_object_get(role, "bind_secret_id"));
    const char *accessor = NULL;
    if (bind) {
        if (*secret == '\0' || strlen(secret) >= NHID_TOKEN_MAX)
            NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, iname, DENIED,
                                               "missing or malformed secret ID", false));
        NHID_TRY(secret_hash(req->core, secret, hash));
        snprintf(key, sizeof(key), "approle/sid/%s/%s", rname, hash);
        rc = nhid_core_load_json_shared(req->core, req->txn, key, &e);
        /* The lookup is by keyed hash; the compare below is constant-time as well. */
        if (rc == NHID_OK) {
            char stored[HASH_HEX];
            json_t *a = NULL;
            char akey[200];
            snprintf(akey, sizeof(akey), "approle/acc/%s", nhid_json_str(e, "accessor"));
            rc = nhid_core_load_json_shared(req->core, req->txn, akey, &a);
            snprintf(stored, sizeof(stored), "%s", a ? nhid_json_str(a, "hash") : "");
            json_decref(a);
            if (rc == NHID_OK && !nhid_secure_equal(stored, strlen(stored), hash, strlen(hash)))
                rc = NHID_ERR_NOT_FOUND;
        }
        if (rc == NHID_ERR_NOT_FOUND)
            NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, iname, DENIED,
                                               "wrong secret ID", false));
        NHID_TRY(rc);
        accessor = nhid_json_str(e, "accessor");
        if (nhid_json_int(e, "expires") <= nhid_now()) {
            NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, iname, DENIED,
                                               "expired secret ID", false));
        }
        if (!nhid_cidr_list_allows(json_object_get(e, "cidr_list"), req->remote_addr) ||
            !nhid_cidr_list_allows(json_object_get(e, "token_bound_cidrs"), req->remote_addr))
            NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, iname, DENIED,
                                               "source address outside the secret ID's CIDRs",
                                               false));
    }
    rc = nhid_identity_get_shared(req->core, req->txn, iname, &ident);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "approle", rate_key, iname,
                                           "permission denied: the role's identity no longer "
                                           "exists",
                                           "identity deleted", false));
    NHID_TRY(rc);
    if (e && nhid_json_int(e, "num_uses") > 0) {
        int64_t left = nhid_json_int(e, "num_uses") - 1;
        if (left == 0) {
            NHID_TRY(delete_secret(req->core, req->txn, rname, hash, "secret ID used up"));
        } else {
            json_t *own = json_deep_copy(e); /* e is shared: change a copy */
            NHID_CHECK_ALLOC(own);
            json_decref(e);
            e = own;
            json_object_set_new(e, "num_uses", json_integer(left));
            NHID_TRY(nhid_core_save_json(req->core, req->txn, key, e));
        }
    }
    json_t *meta = json_object();
    NHID_CHECK_ALLOC(meta);
    json_object_set_new(meta, "role_name", json_string(rname));
    if (e) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(e, "metadata"), k, v) json_object_set(meta, k, v);
    }
    struct nhid_identity_login l = {
        .method = "approle",
        .path = "auth/approle/login",
        .role = rname,
        .policies = json_object_get(role, "token_policies"),
        .meta = meta,
        .ttl = nhid_json_int(role, "token_ttl"),
        .max_ttl = nhid_json_int(role, "token_explicit_max_ttl")
                       ? nhid_json_int(role, "token_explicit_max_ttl")
                       : nhid_json_int(role, "token_max_ttl"),
        .period = nhid_json_int(role, "token_period"),
        .num_uses = nhid_json_int(role, "token_num_uses"),
        /* The secret ID's own token_bound_cidrs narrow the role's (Vault). */
        .bound_cidrs = json_array_size(json_object_get(e, "token_bound_cidrs"))
                           ? json_object_get(e, "token_bound_cidrs")
                           : json_object_get(role, "token_bound_cidrs"),
    };
    rc = nhid_identity_login_issue(req, resp, ident, &l, rate_key);
    json_decref(meta);
    NHID_TRY(rc);
    if (accessor)
        nhid_identity_cred_used(req->core, nhid_json_str(ident, "id"), CRED_TYPE, accessor,
                                req->remote_addr);
out:
    json_decref(ref);
    json_decref(role);
    json_decref(e);
    json_decref(ident);
    return rc;
}

/* ---- list roles, lifecycle ------------------------------------------------------- */

struct key_list {
    json_t *keys;
    size_t plen;
};

static int key_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct key_list *k = arg;
    if (json_array_size(k->keys) >= 10000)
        return 1;
    json_array_append_new(k->keys, json_string(key + k->plen));
    return 0;
}

static int h_role_list(struct nhid_request *req, struct nhid_response *resp)
{
    struct key_list k = {json_array(), strlen("approle/role/")};
    if (k.keys == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_txn_scan_prefix(req->txn, "approle/role/", NULL, 0, true, key_cb, &k);
    if (rc < 0) {
        json_decref(k.keys);
        return rc;
    }
    resp->data = json_pack("{s:o}", "keys", k.keys);
    return NHID_OK;
}

/* Credential-registry hook: destroy the secret ID with this accessor. */
static int cred_revoke(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                       const char *accessor)
{
    (void)entity_id;
    char role[160], hash[HASH_HEX];
    int rc = secret_by_accessor(core, txn, accessor, role, hash);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    rc = delete_secret(core, txn, role, hash, "identity decommissioned");
    return rc == NHID_ERR_NOT_FOUND ? NHID_OK : rc;
}

static int approle_on_unseal(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "approle");
    if (slot == NULL)
        return NHID_ERR_INTERNAL;
    if (*slot == NULL) {
        *slot = calloc(1, sizeof(struct approle_state));
        if (*slot == NULL)
            return NHID_ERR_NOMEM;
    }
    struct approle_state *st = *slot;
    int rc = nhid_barrier_derive_key(core->barrier, "approle-secret-id", st->key);
    if (rc < 0)
        return rc;
    st->ready = true;
    return nhid_identity_cred_register_type(CRED_TYPE, cred_revoke);
}

static void approle_on_seal(struct nhid_core *core)
{
    struct approle_state *st = state(core);
    if (st) {
        st->ready = false;
        nhid_wipe(st->key, sizeof(st->key));
    }
}

static const struct nhid_route approle_routes[] = {
    {"auth/approle/login", NHID_M_WRITE,
     NHID_ROUTE_UNAUTH | NHID_ROUTE_WRITE | NHID_ROUTE_OPTIMISTIC, h_login, "login"},
    {"auth/approle/role", NHID_M_LIST | NHID_M_GET, 0, h_role_list, "list"},
    {"auth/approle/role/:role_name", NHID_M_WRITE, NHID_ROUTE_WRITE, h_role_write, "update"},
    {"auth/approle/role/:role_name", NHID_M_GET, 0, h_role_read, "read"},
    {"auth/approle/role/:role_name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_role_delete, "delete"},
    {"auth/approle/role/:role_name/role-id", NHID_M_GET, 0, h_role_id_read, "read"},
    {"auth/approle/role/:role_name/role-id", NHID_M_WRITE, NHID_ROUTE_WRITE, h_role_id_write,
     "update"},
    {"auth/approle/role/:role_name/secret-id", NHID_M_WRITE,
     NHID_ROUTE_WRITE | NHID_ROUTE_NO_AUDIT_DATA, h_secret_id_generate, "issue"},
    {"auth/approle/role/:role_name/secret-id", NHID_M_LIST, 0, h_secret_id_list, "list"},
    {"auth/approle/role/:role_name/secret-id/lookup", NHID_M_WRITE, 0, h_secret_lookup, "read"},
    {"auth/approle/role/:role_name/secret-id/destroy", NHID_M_WRITE | NHID_M_DELETE,
     NHID_ROUTE_WRITE, h_secret_destroy, "revoke"},
    {"auth/approle/role/:role_name/secret-id-accessor/lookup", NHID_M_WRITE, 0, h_accessor_lookup,
     "read"},
    {"auth/approle/role/:role_name/secret-id-accessor/destroy", NHID_M_WRITE | NHID_M_DELETE,
     NHID_ROUTE_WRITE, h_accessor_destroy, "revoke"},
};

const struct nhid_engine nhid_approle_engine = {
    .name = "approle",
    .routes = approle_routes,
    .n_routes = NHID_ARRAY_LEN(approle_routes),
    .on_unseal = approle_on_unseal,
    .on_seal = approle_on_seal,
};
