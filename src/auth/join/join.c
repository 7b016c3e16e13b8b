/* auth/join — one-time join tokens (issue, login, sweep). */
#include "auth/join/join.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "identity/identity.h"
#include "store/store.h"

#define MOD "join"
#define PREFIX "njt."
#define HASH_HEX 65
#define CRED_TYPE "join"
#define DENIED "permission denied: invalid or expired join token"
#define RATE_KEY "join/login"
#define SWEEP_BATCH 1000

struct join_state {
    uint8_t key[32];
    bool ready;
};

static struct join_state *state(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "join");
    return slot ? *slot : NULL;
}

static int join_hash(struct nhid_core *core, const char *tok, char out[HASH_HEX])
{
    struct join_state *st = state(core);
    if (st == NULL || !st->ready)
        return NHID_ERR_SEALED;
    nhid_secret_hash_hex(st->key, tok, out);
    return NHID_OK;
}

static void exp_key(char *out, size_t len, int64_t when, const char *hash)
{
    snprintf(out, len, "join/exp/%020" PRId64 "/%s", when, hash);
}

/* Remove a live join token's records (not the credential record). */
static int delete_token(struct nhid_txn *txn, const char *hash, const json_t *e)
{
    int rc = NHID_OK;
    char key[200];
    snprintf(key, sizeof(key), "join/tok/%s", hash);
    NHID_TRY(nhid_txn_delete(txn, key));
    snprintf(key, sizeof(key), "join/acc/%s", nhid_json_str(e, "accessor"));
    NHID_TRY(nhid_txn_delete(txn, key));
    exp_key(key, sizeof(key), nhid_json_int(e, "expires"), hash);
    NHID_TRY(nhid_txn_delete(txn, key));
out:
    return rc;
}

static int h_issue(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"ttl", NULL};
    int rc = NHID_OK;
    const char *name = nhid_req_param(req, "name");
    json_t *ident = NULL, *e = NULL, *cm = NULL;
    char tok[NHID_TOKEN_MAX] = "", hash[HASH_HEX], accessor[37], key[200], msg[256];
    int64_t ttl;
    if (nhid_identity_name_valid("identity name", name, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_duration(req, resp, "ttl", NHID_JOIN_TTL_DEFAULT, &ttl));
    if (ttl <= 0 || ttl > NHID_JOIN_TTL_MAX)
        NHID_FAIL(
            nhid_resp_error(resp, 400, "field \"ttl\": use 1s to %dh", NHID_JOIN_TTL_MAX / 3600));
    rc = nhid_identity_get(req->core, req->txn, name, &ident);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 404, "no identity named %s", name));
    NHID_TRY(rc);
    if (nhid_identity_may_authenticate(ident, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 409, "cannot issue a join token: %s", msg));
    NHID_TRY(nhid_random_token(PREFIX, tok));
    NHID_TRY(join_hash(req->core, tok, hash));
    NHID_TRY(nhid_uuid(accessor));
    int64_t now = nhid_now();
    e = json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name, "entity_id", nhid_json_str(ident, "id"),
                  "accessor", accessor, "created", (json_int_t)now, "expires",
                  (json_int_t)(now + ttl));
    NHID_CHECK_ALLOC(e);
    snprintf(key, sizeof(key), "join/tok/%s", hash);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, e));
    json_t *a = json_pack("{s:s}", "hash", hash);
    NHID_CHECK_ALLOC(a);
    snprintf(key, sizeof(key), "join/acc/%s", accessor);
    rc = nhid_core_save_json(req->core, req->txn, key, a);
    json_decref(a);
    NHID_TRY(rc);
    exp_key(key, sizeof(key), now + ttl, hash);
    NHID_TRY(nhid_txn_put(req->txn, key, (const uint8_t *)"", 0));
    NHID_TRY(nhid_identity_cred_record(req->core, req->txn, nhid_json_str(ident, "id"), CRED_TYPE, accessor,
                                       now, now + ttl, NULL));
    char et[NHID_RFC3339_LEN];
    nhid_time_format(now + ttl, et);
    resp->data = json_pack("{s:s, s:s, s:s, s:s, s:I}", "join_token", tok, "accessor", accessor,
                           "identity", name, "expires", et, "ttl", (json_int_t)ttl);
    NHID_CHECK_ALLOC(resp->data);
    cm = nhid_identity_audit_event(name, nhid_json_str(ident, "id"), "join_token_issued", "join", NULL,
                                   false, NULL);
    resp->audit_extra = cm;
    cm = NULL;
out:
    nhid_wipe(tok, sizeof(tok));
    json_decref(ident);
    json_decref(e);
    json_decref(cm);
    return rc;
}

static int h_login(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"join_token", "csr", NULL};
    int rc = NHID_OK;
    const char *tok = NULL, *csr = NULL;
    json_t *e = NULL, *ident = NULL, *used = NULL, *cert = NULL;
    char hash[HASH_HEX], key[200];
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "join_token", NULL, &tok));
    NHID_TRY(nhid_body_string(req, resp, "csr", NULL, &csr));
    if (tok == NULL || *tok == '\0')
        NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"join_token\""));
    if (csr && *csr && req->core->pki_issue_for_identity == NULL)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"csr\": certificate enrollment needs the "
                                  "PKI engine, which is not enabled"));
    NHID_TRY(nhid_identity_login_precheck(req, resp, "join", RATE_KEY));
    if (strlen(tok) >= NHID_TOKEN_MAX)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "join", RATE_KEY, NULL, DENIED,
                                           "malformed join token", false));
    NHID_TRY(join_hash(req->core, tok, hash));
    snprintf(key, sizeof(key), "join/tok/%s", hash);
    rc = nhid_core_load_json(req->core, req->txn, key, &e);
    if (rc == NHID_ERR_NOT_FOUND) {
        /* Was it a token already consumed? Then this is a replay: flag it. */
        snprintf(key, sizeof(key), "join/used/%s", hash);
        if (nhid_core_load_json(req->core, req->txn, key, &used) == NHID_OK) {
            char why[256], t[NHID_RFC3339_LEN];
            nhid_time_format(nhid_json_int(used, "used_at"), t);
            snprintf(why, sizeof(why), "join token reused (first used at %s from %s)", t,
                     nhid_json_str(used, "source"));
            NHID_FAIL(nhid_identity_login_fail(req, resp, "join", RATE_KEY, nhid_json_str(used, "name"),
                                               DENIED, why, true));
        }
        NHID_FAIL(nhid_identity_login_fail(req, resp, "join", RATE_KEY, NULL, DENIED,
                                           "unknown join token", false));
    }
    NHID_TRY(rc);
    const char *name = nhid_json_str(e, "name");
    if (nhid_json_int(e, "expires") <= nhid_now())
        NHID_FAIL(nhid_identity_login_fail(req, resp, "join", RATE_KEY, name, DENIED,
                                           "expired join token", false));
    rc = nhid_identity_get(req->core, req->txn, name, &ident);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_identity_login_fail(req, resp, "join", RATE_KEY, name, DENIED,
                                           "identity deleted", false));
    NHID_TRY(rc);
    /* Consume: delete the token and leave a tombstone, in this transaction. */
    NHID_TRY(delete_token(req->txn, hash, e));
    int64_t now = nhid_now();
    used = json_pack("{s:s, s:I, s:s}", "name", name, "used_at", (json_int_t)now, "source",
                     req->remote_addr ? req->remote_addr : "");
    NHID_CHECK_ALLOC(used);
    snprintf(key, sizeof(key), "join/used/%s", hash);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, used));
    exp_key(key, sizeof(key), now + NHID_JOIN_TOMBSTONE_S, hash);
    NHID_TRY(nhid_txn_put(req->txn, key, (const uint8_t *)"", 0));
    NHID_TRY(nhid_identity_cred_revoked(req->core, req->txn, nhid_json_str(e, "entity_id"), CRED_TYPE,
                                        nhid_json_str(e, "accessor"), "join token consumed"));
    nhid_identity_cred_used(req->core, nhid_json_str(e, "entity_id"), CRED_TYPE, nhid_json_str(e, "accessor"),
                            req->remote_addr);
    struct nhid_identity_login l = {
        .method = "join",
        .path = "auth/join/login",
    };
    NHID_TRY(nhid_identity_login_issue(req, resp, ident, &l, RATE_KEY));
    if (csr && *csr) {
        /* The first certificate, in the same transaction: all or nothing. */
        char err[256] = "";
        rc = req->core->pki_issue_for_identity(
            req->core, req->txn, name, json_string_value(json_object_get(ident, "spiffe_id")), csr,
            &cert, err, sizeof(err));
        if (rc < 0) {
            json_decref(resp->auth);
            resp->auth = NULL;
            NHID_FAIL(nhid_resp_error(resp, rc == NHID_ERR_INVALID ? 400 : 500, "field \"csr\": %s",
                                      err[0] ? err : nhid_strerror(rc)));
        }
        resp->data = cert;
        cert = NULL;
    }
out:
    json_decref(e);
    json_decref(ident);
    json_decref(used);
    json_decref(cert);
    return rc;
}

/* Credential-registry hook: delete the live join token with this accessor. */
static int cred_revoke(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                       const char *accessor)
{
    (void)entity_id;
    char key[200];
    json_t *a = NULL, *e = NULL;
    if (strlen(accessor) > 64)
        return NHID_OK;
    snprintf(key, sizeof(key), "join/acc/%s", accessor);
    int rc = nhid_core_load_json(core, txn, key, &a);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    char hash[HASH_HEX];
    snprintf(hash, sizeof(hash), "%s", nhid_json_str(a, "hash"));
    json_decref(a);
    snprintf(key, sizeof(key), "join/tok/%s", hash);
    rc = nhid_core_load_json(core, txn, key, &e);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc == NHID_OK)
        rc = delete_token(txn, hash, e);
    json_decref(e);
    return rc;
}

/* ---- sweep: expired tokens and old tombstones ------------------------------------ */

struct sweep {
    char (*keys)[128];
    size_t n;
};

static int sweep_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct sweep *s = arg;
    if (s->n >= SWEEP_BATCH || strlen(key) >= 128)
        return 1;
    snprintf(s->keys[s->n++], 128, "%s", key);
    return 0;
}

static int sweep_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct sweep *s = arg;
    char end[64];
    snprintf(end, sizeof(end), "join/exp/%020" PRId64 "/", nhid_now());
    int rc = nhid_txn_scan(txn, "join/exp/", end, SWEEP_BATCH, true, sweep_cb, s);
    for (size_t i = 0; rc == NHID_OK && i < s->n; i++) {
        const char *hash = strrchr(s->keys[i], '/');
        char key[200];
        json_t *e = NULL;
        if (hash == NULL)
            continue;
        hash++;
        snprintf(key, sizeof(key), "join/tok/%s", hash);
        if (nhid_core_load_json(core, txn, key, &e) == NHID_OK) {
            rc = delete_token(txn, hash, e);
            json_decref(e);
        }
        snprintf(key, sizeof(key), "join/used/%s", hash);
        if (rc == NHID_OK)
            rc = nhid_txn_delete(txn, key);
        if (rc == NHID_OK)
            rc = nhid_txn_delete(txn, s->keys[i]);
    }
    return rc;
}

static int sweep_job(struct nhid_core *core)
{
    struct sweep s = {calloc(SWEEP_BATCH, 128), 0};
    if (s.keys == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_core_write(core, sweep_txn, &s);
    free(s.keys);
    return rc;
}

static int join_on_unseal(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "join");
    if (slot == NULL)
        return NHID_ERR_INTERNAL;
    if (*slot == NULL) {
        *slot = calloc(1, sizeof(struct join_state));
        if (*slot == NULL)
            return NHID_ERR_NOMEM;
    }
    struct join_state *st = *slot;
    int rc = nhid_barrier_derive_key(core->barrier, "join-token", st->key);
    if (rc < 0)
        return rc;
    st->ready = true;
    return nhid_identity_cred_register_type(CRED_TYPE, cred_revoke);
}

static void join_on_seal(struct nhid_core *core)
{
    struct join_state *st = state(core);
    if (st) {
        st->ready = false;
        nhid_wipe(st->key, sizeof(st->key));
    }
}

static const struct nhid_route join_routes[] = {
    {"identity/machine/:name/join-token", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_NO_AUDIT_DATA,
     h_issue, "issue_join_token"},
    {"auth/join/login", NHID_M_WRITE, NHID_ROUTE_UNAUTH | NHID_ROUTE_WRITE, h_login, "login"},
};

static const struct nhid_job join_jobs[] = {
    {"join-sweep", 60, sweep_job},
};

const struct nhid_engine nhid_join_engine = {
    .name = "join",
    .routes = join_routes,
    .n_routes = NHID_ARRAY_LEN(join_routes),
    .jobs = join_jobs,
    .n_jobs = NHID_ARRAY_LEN(join_jobs),
    .on_unseal = join_on_unseal,
    .on_seal = join_on_seal,
};
