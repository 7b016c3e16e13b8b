/* auth/token — token store, authenticator and the auth/token endpoints. */
#include "auth/token/token.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "core/cidr.h"
#include "core/json_text.h"
#include "identity/identity.h"
#include "store/store.h"

#define MOD "token"
#define TOKEN_PREFIX "nhs."
#define TOKEN_DEFAULT_TTL (15 * 60)    /* DESIGN.md: tokens live 15 minutes by default */
#define TOKEN_MAX_TTL (32 * 24 * 3600) /* system maximum, as Vault's default max */
#define TOKEN_REVOKE_MAX 100000        /* bound on one revocation tree */
#define HASH_HEX 65

struct token_state {
    uint8_t hash_key[32];
    bool ready;
};

static struct token_state *state(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "token");
    return slot ? *slot : NULL;
}

/*
 * Token layout: "nhs." and the base64url of 36 bytes, the creation time
 * in milliseconds (6 bytes, big-endian) then 30 random bytes (240 bits).
 * A token's store handle is that time as 12 hex digits followed by the
 * first 52 hex digits (208 bits) of the token's keyed hash. The handle
 * still cannot be derived without the barrier key, and the handles of
 * tokens issued together sort together: a group commit of many logins
 * rewrites a few B-tree pages instead of one random page per token and
 * per index (docs/dev/storage.md). Accessors carry the same time prefix.
 * Tokens of the earlier layout (32 random bytes, 43 characters) keep the
 * full keyed hash as their handle.
 */
#define TOKEN_TIME_BYTES 6
#define TOKEN_RANDOM_BYTES 30
#define TOKEN_BODY_CHARS 48 /* base64url of 36 bytes */
#define ACCESSOR_RANDOM_BYTES 12

static void put_time_ms(uint8_t out[TOKEN_TIME_BYTES], int64_t ms)
{
    for (int i = 0; i < TOKEN_TIME_BYTES; i++)
        out[i] = (uint8_t)((uint64_t)ms >> (8 * (TOKEN_TIME_BYTES - 1 - i)));
}

/* The creation time a token of the current layout carries; false for other strings. */
static bool token_time(const char *token, uint8_t out[TOKEN_TIME_BYTES])
{
    size_t plen = strlen(TOKEN_PREFIX);
    if (strncmp(token, TOKEN_PREFIX, plen) != 0 ||
        strnlen(token + plen, TOKEN_BODY_CHARS + 1) != TOKEN_BODY_CHARS)
        return false;
    /* The first 8 characters are exactly the 6 time bytes. */
    uint8_t *raw = NULL;
    size_t n = 0;
    if (nhid_base64_decode(token + plen, 8, &raw, &n) < 0)
        return false;
    bool ok = n == TOKEN_TIME_BYTES;
    if (ok)
        memcpy(out, raw, TOKEN_TIME_BYTES);
    free(raw);
    return ok;
}

/* The store handle of a token (see the layout above), as hex. */
static int token_hash(struct nhid_core *core, const char *token, char out[HASH_HEX])
{
    struct token_state *st = state(core);
    if (st == NULL || !st->ready)
        return NHID_ERR_SEALED;
    nhid_secret_hash_hex(st->hash_key, token, out);
    uint8_t t[TOKEN_TIME_BYTES];
    if (token_time(token, t)) {
        char th[2 * TOKEN_TIME_BYTES + 1];
        nhid_hex_encode(t, sizeof(t), th);
        memmove(out + 2 * TOKEN_TIME_BYTES, out, HASH_HEX - 1 - 2 * TOKEN_TIME_BYTES);
        memcpy(out, th, 2 * TOKEN_TIME_BYTES);
        out[HASH_HEX - 1] = '\0';
    }
    return NHID_OK;
}

/* A new token of the current layout, created at now_ms. */
static int token_new(int64_t now_ms, char out[NHID_TOKEN_MAX])
{
    int rc = NHID_OK;
    uint8_t raw[TOKEN_TIME_BYTES + TOKEN_RANDOM_BYTES];
    char *enc = NULL;
    put_time_ms(raw, now_ms);
    NHID_TRY(nhid_random_bytes(raw + TOKEN_TIME_BYTES, TOKEN_RANDOM_BYTES));
    NHID_TRY(nhid_base64url_encode(raw, sizeof(raw), &enc));
    snprintf(out, NHID_TOKEN_MAX, "%s%s", TOKEN_PREFIX, enc);
out:
    nhid_wipe(raw, sizeof(raw));
    if (enc)
        nhid_free_secret_str(enc);
    return rc;
}

static void key_id(char *out, size_t len, const char *hash)
{
    snprintf(out, len, "token/id/%s", hash);
}

static void key_expiry(char *out, size_t len, int64_t when, const char *hash)
{
    snprintf(out, len, "token/expiry/%020" PRId64 "/%s", when, hash);
}

static bool policies_include(json_t *policies, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(policies, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), name)) return true;
    return false;
}

/* Vault's "auth" block for a token response. */
static json_t *auth_fields(const char *token, const char *accessor, json_t *pol, json_t *meta,
                           int64_t expire_time, bool renewable, const char *entity, bool orphan,
                           int64_t num_uses)
{
    int64_t dur = expire_time ? expire_time - nhid_now() : 0;
    if (dur < 0)
        dur = 0;
    return json_pack(
        "{s:s, s:s, s:O, s:O, s:[], s:O, s:I, s:b, s:s, s:s, s:b, s:I, s:n}", "client_token", token,
        "accessor", accessor, "policies", pol, "token_policies", pol, "identity_policies",
        "metadata", meta && json_object_size(meta) ? meta : json_null(), "lease_duration",
        (json_int_t)dur, "renewable", renewable, "entity_id", entity, "token_type", "service",
        "orphan", orphan, "num_uses", (json_int_t)num_uses, "mfa_requirement");
}

static json_t *auth_block(const char *token, json_t *e)
{
    return auth_fields(token, nhid_json_str(e, "accessor"), json_object_get(e, "policies"),
                       json_object_get(e, "meta"), nhid_json_int(e, "expire_time"),
                       json_is_true(json_object_get(e, "renewable")), nhid_json_str(e, "entity_id"),
                       nhid_json_str(e, "parent")[0] == '\0', nhid_json_int(e, "num_uses"));
}

static void text_str_field(struct nhid_text *t, const char *name, const char *v)
{
    nhid_text_lit(t, name);
    nhid_text_json_string(t, v, strlen(v));
}

static void text_int_field(struct nhid_text *t, const char *name, int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, v);
    nhid_text_lit(t, name);
    nhid_text_lit(t, num);
}

/*
 * A new token's stored entry, written as text in one pass (logins create
 * one per request): the same members, in the same order, as every reader
 * of "token/id/..." entries expects.
 */
static void entry_text(struct nhid_text *t, const struct nhid_token_params *p, const char *accessor,
                       int64_t now_ms, int64_t ttl, int64_t expire)
{
    text_str_field(t, "{\"accessor\":", accessor);
    nhid_text_lit(t, ",\"policies\":");
    nhid_text_json(t, p->policies);
    nhid_text_lit(t, ",\"meta\":");
    if (p->meta)
        nhid_text_json(t, p->meta);
    else
        nhid_text_lit(t, "{}");
    text_int_field(t, ",\"creation_time\":", now_ms / 1000);
    text_int_field(t, ",\"creation_ttl\":", p->no_expiry ? 0 : ttl);
    text_int_field(t, ",\"expire_time\":", expire);
    text_int_field(t, ",\"explicit_max_ttl\":", p->explicit_max_ttl);
    text_int_field(t, ",\"period\":", p->period);
    text_int_field(t, ",\"num_uses\":", p->num_uses);
    nhid_text_lit(t,
                  p->renewable && !p->no_expiry ? ",\"renewable\":true" : ",\"renewable\":false");
    text_str_field(t, ",\"parent\":", p->parent_hash ? p->parent_hash : "");
    text_str_field(t, ",\"display_name\":", p->display_name ? p->display_name : "token");
    text_str_field(t, ",\"path\":", p->path ? p->path : "auth/token/create");
    text_str_field(t, ",\"entity_id\":", p->entity_id ? p->entity_id : "");
    text_str_field(t, ",\"identity\":", p->identity ? p->identity : "");
    text_str_field(t, ",\"auth_method\":", p->auth_method ? p->auth_method : "token");
    if (expire)
        text_int_field(t, ",\"expire_ms\":", now_ms + ttl * 1000);
    if (json_array_size(p->bound_cidrs)) {
        nhid_text_lit(t, ",\"bound_cidrs\":");
        nhid_text_json(t, p->bound_cidrs);
    }
    nhid_text_lit(t, "}");
}

int nhid_token_create(struct nhid_core *core, struct nhid_txn *txn,
                      const struct nhid_token_params *p, char token_out[NHID_TOKEN_MAX],
                      json_t **auth_out)
{
    int rc = NHID_OK;
    char token[NHID_TOKEN_MAX];
    char hash[HASH_HEX];
    char accessor[NHID_TOKEN_MAX];
    char key[256];
    struct nhid_text entry = {0};
    int64_t now_ms = nhid_now_ns() / 1000000;
    NHID_TRY(token_new(now_ms, token));
    NHID_TRY(token_hash(core, token, hash));
    /* The accessor is a second handle that can look up/revoke but not use: time, 96 random bits. */
    uint8_t acc_raw[TOKEN_TIME_BYTES + ACCESSOR_RANDOM_BYTES];
    put_time_ms(acc_raw, now_ms);
    NHID_TRY(nhid_random_bytes(acc_raw + TOKEN_TIME_BYTES, ACCESSOR_RANDOM_BYTES));
    nhid_hex_encode(acc_raw, sizeof(acc_raw), accessor);

    int64_t now = now_ms / 1000;
    int64_t ttl = p->ttl > 0 ? p->ttl : TOKEN_DEFAULT_TTL;
    if (p->period > 0)
        ttl = p->period;
    if (p->explicit_max_ttl > 0 && ttl > p->explicit_max_ttl)
        ttl = p->explicit_max_ttl;
    if (ttl > TOKEN_MAX_TTL)
        ttl = TOKEN_MAX_TTL;
    int64_t expire = p->no_expiry ? 0 : now + ttl;

    entry_text(&entry, p, accessor, now_ms, ttl, expire);
    if (entry.failed)
        NHID_FAIL(NHID_ERR_NOMEM);
    key_id(key, sizeof(key), hash);
    NHID_TRY(nhid_barrier_put(core->barrier, txn, key, (const uint8_t *)entry.buf, entry.len));
    snprintf(key, sizeof(key), "token/accessor/%s", accessor);
    json_t *acc = json_pack("{s:s}", "hash", hash);
    NHID_CHECK_ALLOC(acc);
    rc = nhid_core_save_json(core, txn, key, acc);
    json_decref(acc);
    NHID_TRY(rc);
    if (p->parent_hash && *p->parent_hash) {
        snprintf(key, sizeof(key), "token/parent/%s/%s", p->parent_hash, hash);
        NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
    }
    if (expire) {
        key_expiry(key, sizeof(key), expire, hash);
        NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
    }
    /* A token bound to an identity is one of its credentials (inventory, decommission). */
    if (p->entity_id && *p->entity_id && expire) {
        json_t *cm =
            json_pack("{s:s, s:s}", "auth_method", p->auth_method ? p->auth_method : "token",
                      "path", p->path ? p->path : "auth/token/create");
        NHID_CHECK_ALLOC(cm);
        rc = nhid_identity_cred_record(core, txn, p->entity_id, "token", accessor, now, expire, cm);
        json_decref(cm);
        NHID_TRY(rc);
    }
    if (auth_out) {
        *auth_out = auth_fields(token, accessor, p->policies, p->meta, expire,
                                p->renewable && !p->no_expiry, p->entity_id ? p->entity_id : "",
                                !(p->parent_hash && *p->parent_hash), p->num_uses);
        NHID_CHECK_ALLOC(*auth_out);
    }
    memcpy(token_out, token, NHID_TOKEN_MAX);
out:
    nhid_wipe(token, sizeof(token));
    nhid_text_free(&entry);
    return rc;
}

int nhid_token_create_root(struct nhid_core *core, struct nhid_txn *txn,
                           char token_out[NHID_TOKEN_MAX])
{
    json_t *pol = json_pack("[s]", "root");
    if (pol == NULL)
        return NHID_ERR_NOMEM;
    struct nhid_token_params p = {.policies = pol,
                                  .no_expiry = true,
                                  .display_name = "root",
                                  .path = "auth/token/root",
                                  .auth_method = "token"};
    int rc = nhid_token_create(core, txn, &p, token_out, NULL);
    json_decref(pol);
    return rc;
}

static int load_entry(struct nhid_core *core, struct nhid_txn *txn, const char *hash, json_t **e)
{
    char key[128];
    key_id(key, sizeof(key), hash);
    return nhid_core_load_json(core, txn, key, e);
}

/* Delete one token's records (not its children). */
static int delete_one(struct nhid_core *core, struct nhid_txn *txn, const char *hash, json_t *e)
{
    int rc = NHID_OK;
    char key[256];
    if (nhid_json_str(e, "entity_id")[0])
        NHID_TRY(nhid_identity_cred_revoked(core, txn, nhid_json_str(e, "entity_id"), "token",
                                            nhid_json_str(e, "accessor"), "token revoked"));
    key_id(key, sizeof(key), hash);
    NHID_TRY(nhid_txn_delete(txn, key));
    snprintf(key, sizeof(key), "token/accessor/%s", nhid_json_str(e, "accessor"));
    NHID_TRY(nhid_txn_delete(txn, key));
    if (nhid_json_int(e, "expire_time")) {
        key_expiry(key, sizeof(key), nhid_json_int(e, "expire_time"), hash);
        NHID_TRY(nhid_txn_delete(txn, key));
    }
    if (nhid_json_str(e, "parent")[0]) {
        snprintf(key, sizeof(key), "token/parent/%s/%s", nhid_json_str(e, "parent"), hash);
        NHID_TRY(nhid_txn_delete(txn, key));
    }
out:
    return rc;
}

struct child_list {
    char (*hashes)[HASH_HEX];
    size_t n, cap;
    size_t prefix_len;
};

static int collect_child(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct child_list *l = arg;
    const char *child = key + l->prefix_len;
    if (strlen(child) != HASH_HEX - 1)
        return 0;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        if (ncap > TOKEN_REVOKE_MAX)
            return 1;
        void *nh = realloc(l->hashes, ncap * sizeof(*l->hashes));
        if (nh == NULL)
            return 1;
        l->hashes = nh;
        l->cap = ncap;
    }
    memcpy(l->hashes[l->n++], child, HASH_HEX);
    return 0;
}

int nhid_token_revoke_hash(struct nhid_core *core, struct nhid_txn *txn, const char *hash,
                           unsigned *revoked)
{
    /* Breadth-first over the tree with an explicit work list (no recursion). */
    int rc = NHID_OK;
    struct child_list work = {0};
    unsigned count = 0;
    char prefix[128];
    work.prefix_len = 0;
    if (collect_child(hash, NULL, 0, &work) != 0)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < work.n && i < TOKEN_REVOKE_MAX; i++) {
        char h[HASH_HEX];
        memcpy(h, work.hashes[i], HASH_HEX);
        snprintf(prefix, sizeof(prefix), "token/parent/%s/", h);
        work.prefix_len = strlen(prefix);
        NHID_TRY(nhid_txn_scan_prefix(txn, prefix, NULL, 0, true, collect_child, &work));
        json_t *e = NULL;
        rc = load_entry(core, txn, h, &e);
        if (rc == NHID_ERR_NOT_FOUND) {
            rc = NHID_OK;
            NHID_TRY(nhid_txn_delete_prefix(txn, prefix, NULL));
            continue;
        }
        NHID_TRY(rc);
        rc = delete_one(core, txn, h, e);
        json_decref(e);
        NHID_TRY(rc);
        NHID_TRY(nhid_txn_delete_prefix(txn, prefix, NULL));
        count++;
    }
    if (revoked)
        *revoked = count;
out:
    free(work.hashes);
    return rc;
}

static int hash_for_accessor(struct nhid_core *core, struct nhid_txn *txn, const char *accessor,
                             char out[HASH_HEX])
{
    char key[160];
    if (strlen(accessor) > 64)
        return NHID_ERR_NOT_FOUND;
    snprintf(key, sizeof(key), "token/accessor/%s", accessor);
    json_t *a = NULL;
    int rc = nhid_core_load_json(core, txn, key, &a);
    if (rc < 0)
        return rc;
    snprintf(out, HASH_HEX, "%s", nhid_json_str(a, "hash"));
    json_decref(a);
    return NHID_OK;
}

int nhid_token_revoke_by_accessor(struct nhid_core *core, struct nhid_txn *txn,
                                  const char *accessor, unsigned *revoked)
{
    char hash[HASH_HEX];
    int rc = hash_for_accessor(core, txn, accessor, hash);
    if (rc < 0)
        return rc;
    return nhid_token_revoke_hash(core, txn, hash, revoked);
}

int nhid_token_count(struct nhid_core *core, struct nhid_txn *txn, uint64_t *count)
{
    (void)core;
    return nhid_txn_count_prefix(txn, "token/accessor/", count);
}

/* ---- authenticator ------------------------------------------------------ */

static int consume_use(struct nhid_request *req, struct nhid_response *resp)
{
    json_t *e = NULL;
    int rc = load_entry(req->core, req->txn, req->auth.token_hash, &e);
    if (rc < 0)
        return nhid_resp_error(resp, 403, "permission denied: token has no uses left");
    int64_t uses = nhid_json_int(e, "num_uses");
    /* The handler sees the token with this use already counted (as Vault). */
    if (req->auth.token && uses > 0)
        json_object_set_new(req->auth.token, "num_uses", json_integer(uses - 1));
    if (uses == 1) {
        /* Last use: the token is revoked as this request is served (Vault semantics). */
        rc = nhid_token_revoke_hash(req->core, req->txn, req->auth.token_hash, NULL);
    } else if (uses > 1) {
        json_object_set_new(e, "num_uses", json_integer(uses - 1));
        char key[128];
        key_id(key, sizeof(key), req->auth.token_hash);
        rc = nhid_core_save_json(req->core, req->txn, key, e);
    }
    json_decref(e);
    return rc;
}

static int token_authenticate(struct nhid_request *req, struct nhid_response *resp)
{
    if (req->client_token == NULL)
        return NHID_OK;
    char hash[HASH_HEX];
    int rc = token_hash(req->core, req->client_token, hash);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    json_t *e = NULL;
    char key[128];
    key_id(key, sizeof(key), hash);
    rc = nhid_core_load_json_shared(req->core, req->txn, key, &e);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 403, "permission denied: invalid or revoked token");
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    if (nhid_json_int(e, "num_uses") > 0) {
        /* consume_use() updates the request's copy: it must be private. */
        json_t *own = json_deep_copy(e);
        json_decref(e);
        if (own == NULL)
            return nhid_resp_fail(resp, NHID_ERR_NOMEM, NULL);
        e = own;
    }
    int64_t exp = nhid_json_int(e, "expire_time");
    /* expire_ms gives the exact instant; expire_time (seconds) is Vault's field. */
    int64_t exp_ms = nhid_json_int(e, "expire_ms");
    if (exp_ms ? exp_ms <= nhid_now_ns() / 1000000 : (exp && exp <= nhid_now())) {
        json_decref(e);
        return nhid_resp_error(resp, 403, "permission denied: token expired");
    }
    /* token_bound_cidrs of the role it came from: usable only from those addresses, every use. */
    if (!nhid_cidr_list_allows(json_object_get(e, "bound_cidrs"), req->remote_addr)) {
        json_decref(e);
        return nhid_resp_error(resp, 403,
                               "permission denied: this token cannot be used from %s (outside its "
                               "bound_cidrs)",
                               req->remote_addr ? req->remote_addr : "an unknown address");
    }
    /* A token bound to a suspended or decommissioned identity stops working at once. */
    const char *entity = nhid_json_str(e, "entity_id");
    if (*entity && req->core->identity_gate) {
        char msg[256];
        if (req->core->identity_gate(req->core, entity, msg, sizeof(msg)) < 0) {
            json_decref(e);
            return nhid_resp_error(resp, 403, "%s", msg);
        }
    }
    if (*entity)
        nhid_identity_cred_used(req->core, entity, "token", nhid_json_str(e, "accessor"),
                                req->remote_addr);
    struct nhid_auth *a = &req->auth;
    a->authenticated = true;
    a->method = "token";
    snprintf(a->accessor, sizeof(a->accessor), "%s", nhid_json_str(e, "accessor"));
    memcpy(a->token_hash, hash, HASH_HEX);
    snprintf(a->entity_id, sizeof(a->entity_id), "%s", nhid_json_str(e, "entity_id"));
    snprintf(a->identity, sizeof(a->identity), "%s", nhid_json_str(e, "identity"));
    a->policies = json_incref(json_object_get(e, "policies"));
    a->metadata = json_incref(json_object_get(e, "meta"));
    a->root = policies_include(a->policies, "root");
    a->expires_at = exp;
    a->token = e;
    if (nhid_json_int(e, "num_uses") > 0)
        a->consume = consume_use;
    return NHID_OK;
}

/* ---- endpoints ---------------------------------------------------------- */

static json_t *lookup_data(json_t *e, const char *token)
{
    char ct[NHID_RFC3339_LEN], et[NHID_RFC3339_LEN];
    int64_t exp = nhid_json_int(e, "expire_time");
    nhid_time_format(nhid_json_int(e, "creation_time"), ct);
    if (exp)
        nhid_time_format(exp, et);
    int64_t ttl = exp ? exp - nhid_now() : 0;
    json_t *d = json_pack(
        "{s:s, s:I, s:I, s:s, s:s, s:o, s:I, s:s, s:O, s:I, s:b, s:s, s:O, s:b, s:I, s:s}",
        "accessor", nhid_json_str(e, "accessor"), "creation_time",
        (json_int_t)nhid_json_int(e, "creation_time"), "creation_ttl",
        (json_int_t)nhid_json_int(e, "creation_ttl"), "display_name",
        nhid_json_str(e, "display_name"), "entity_id", nhid_json_str(e, "entity_id"), "expire_time",
        exp ? json_string(et) : json_null(), "explicit_max_ttl",
        (json_int_t)nhid_json_int(e, "explicit_max_ttl"), "issue_time", ct, "meta",
        json_object_size(json_object_get(e, "meta")) ? json_object_get(e, "meta") : json_null(),
        "num_uses", (json_int_t)nhid_json_int(e, "num_uses"), "orphan",
        nhid_json_str(e, "parent")[0] == '\0', "path", nhid_json_str(e, "path"), "policies",
        json_object_get(e, "policies"), "renewable", json_is_true(json_object_get(e, "renewable")),
        "ttl", (json_int_t)(ttl > 0 ? ttl : 0), "type", "service");
    if (d && token)
        json_object_set_new(d, "id", json_string(token));
    if (d && nhid_json_str(e, "identity")[0])
        json_object_set_new(d, "identity", json_string(nhid_json_str(e, "identity")));
    if (d && json_array_size(json_object_get(e, "bound_cidrs")))
        json_object_set(d, "bound_cidrs", json_object_get(e, "bound_cidrs"));
    if (d && nhid_json_int(e, "period"))
        json_object_set_new(d, "period", json_integer(nhid_json_int(e, "period")));
    return d;
}

static const char *const create_fields[] = {"policies",
                                            "ttl",
                                            "explicit_max_ttl",
                                            "num_uses",
                                            "renewable",
                                            "no_parent",
                                            "meta",
                                            "display_name",
                                            "period",
                                            "type",
                                            "no_default_policy",
                                            "entity_alias",
                                            "lease",
                                            NULL};

static int create_common(struct nhid_request *req, struct nhid_response *resp, bool orphan)
{
    int rc = NHID_OK;
    json_t *pol = NULL;
    struct nhid_token_params p = {0};
    const char *type = NULL;
    bool no_parent = false;
    char token[NHID_TOKEN_MAX] = "";
    NHID_TRY(nhid_body_only(req, resp, create_fields));
    NHID_TRY(nhid_body_string_list(req, resp, "policies", &pol));
    NHID_TRY(nhid_body_duration(req, resp, "ttl", 0, &p.ttl));
    NHID_TRY(nhid_body_duration(req, resp, "explicit_max_ttl", 0, &p.explicit_max_ttl));
    NHID_TRY(nhid_body_duration(req, resp, "period", 0, &p.period));
    NHID_TRY(nhid_body_int(req, resp, "num_uses", 0, 0, INT32_MAX, &p.num_uses));
    NHID_TRY(nhid_body_bool(req, resp, "renewable", true, &p.renewable));
    NHID_TRY(nhid_body_bool(req, resp, "no_parent", false, &no_parent));
    NHID_TRY(nhid_body_string(req, resp, "display_name", "token", &p.display_name));
    NHID_TRY(nhid_body_string(req, resp, "type", "service", &type));
    if (strcmp(type, "service") != 0)
        NHID_FAIL(
            nhid_resp_error(resp, 400, "field \"type\": only \"service\" tokens are supported"));
    json_t *meta = json_object_get(req->body, "meta");
    if (meta && !json_is_null(meta)) {
        const char *k;
        json_t *v;
        if (!json_is_object(meta))
            NHID_FAIL(nhid_resp_error(resp, 400, "field \"meta\": expected an object of strings"));
        json_object_foreach(meta, k, v) if (!json_is_string(v)) NHID_FAIL(
            nhid_resp_error(resp, 400, "field \"meta\": value of \"%s\" is not a string", k));
        p.meta = meta;
    }
    if (strlen(p.display_name) > 128)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"display_name\": longer than 128 characters"));
    if (json_array_size(pol) > 64)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"policies\": more than 64 policies"));
    /* A child token may not hold policies its parent lacks (unless the parent is root). */
    if (json_array_size(pol) == 0) {
        json_decref(pol);
        pol = json_deep_copy(req->auth.policies);
    } else if (!req->auth.root) {
        size_t i;
        json_t *v;
        json_array_foreach(pol, i,
                           v) if (!policies_include(req->auth.policies, json_string_value(v)))
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"policies\": \"%s\" is not a policy of the calling "
                                      "token; a child token can only narrow its parent's policies",
                                      json_string_value(v)));
    }
    if ((orphan || no_parent) && !req->auth.root && !orphan)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"no_parent\": only a root token may create orphan "
                                  "tokens here; use auth/token/create-orphan"));
    /* root policy only from a root token */
    if (policies_include(pol, "root") && !req->auth.root)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"policies\": only root may grant \"root\""));
    p.policies = pol;
    p.parent_hash = (orphan || no_parent) ? NULL : req->auth.token_hash;
    p.path = orphan ? "auth/token/create-orphan" : "auth/token/create";
    p.auth_method = "token";
    /* A child token inherits the caller's identity binding. */
    p.entity_id = req->auth.entity_id[0] ? req->auth.entity_id : NULL;
    p.identity = req->auth.identity[0] ? req->auth.identity : NULL;
    json_t *auth = NULL;
    NHID_TRY(nhid_token_create(req->core, req->txn, &p, token, &auth));
    resp->auth = auth;
out:
    nhid_wipe(token, sizeof(token));
    json_decref(pol);
    return rc;
}

static int h_create(struct nhid_request *req, struct nhid_response *resp)
{
    return create_common(req, resp, false);
}

static int h_create_orphan(struct nhid_request *req, struct nhid_response *resp)
{
    return create_common(req, resp, true);
}

static int h_lookup_self(struct nhid_request *req, struct nhid_response *resp)
{
    if (req->auth.token == NULL)
        return nhid_resp_error(resp, 400, "lookup-self needs a token (this request has none)");
    resp->data = lookup_data(req->auth.token, req->client_token);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

/* Resolve the "token" or "accessor" field to an entry. */
static int entry_from_body(struct nhid_request *req, struct nhid_response *resp, bool by_accessor,
                           char hash[HASH_HEX], json_t **e)
{
    const char *field = by_accessor ? "accessor" : "token";
    const char *val = NULL;
    int rc = nhid_body_string(req, resp, field, NULL, &val);
    if (rc < 0)
        return rc;
    if (val == NULL || *val == '\0')
        return nhid_resp_error(resp, 400, "missing field \"%s\"", field);
    rc = by_accessor ? hash_for_accessor(req->core, req->txn, val, hash)
                     : token_hash(req->core, val, hash);
    if (rc == NHID_OK)
        rc = load_entry(req->core, req->txn, hash, e);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, by_accessor ? 400 : 403,
                               by_accessor ? "invalid accessor" : "bad token");
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    return NHID_OK;
}

static int h_lookup(struct nhid_request *req, struct nhid_response *resp)
{
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = entry_from_body(req, resp, false, hash, &e);
    if (rc < 0)
        return rc;
    const char *tok = json_string_value(json_object_get(req->body, "token"));
    resp->data = lookup_data(e, tok);
    json_decref(e);
    return NHID_OK;
}

static int h_lookup_accessor(struct nhid_request *req, struct nhid_response *resp)
{
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = entry_from_body(req, resp, true, hash, &e);
    if (rc < 0)
        return rc;
    resp->data = lookup_data(e, NULL);
    json_object_set_new(resp->data, "id", json_string(""));
    json_decref(e);
    return NHID_OK;
}

/* Renew: new expiry = now + increment (default: the creation TTL), capped by explicit max. */
static int renew_entry(struct nhid_request *req, struct nhid_response *resp, const char *hash,
                       json_t *e, const char *token)
{
    int rc = NHID_OK;
    if (!json_is_true(json_object_get(e, "renewable")))
        return nhid_resp_error(resp, 400, "token is not renewable");
    int64_t inc = 0;
    NHID_TRY(nhid_body_duration(req, resp, "increment", 0, &inc));
    if (nhid_json_int(e, "period") > 0)
        inc = nhid_json_int(e, "period");
    if (inc <= 0)
        inc = nhid_json_int(e, "creation_ttl");
    int64_t now = nhid_now();
    int64_t new_exp = now + inc;
    int64_t maxttl = nhid_json_int(e, "explicit_max_ttl");
    if (maxttl > 0 && new_exp > nhid_json_int(e, "creation_time") + maxttl)
        new_exp = nhid_json_int(e, "creation_time") + maxttl;
    if (new_exp > nhid_json_int(e, "creation_time") + TOKEN_MAX_TTL)
        new_exp = nhid_json_int(e, "creation_time") + TOKEN_MAX_TTL;
    int64_t old_exp = nhid_json_int(e, "expire_time");
    if (new_exp < old_exp)
        new_exp = old_exp; /* renewal never shortens a token */
    char key[256];
    if (old_exp) {
        key_expiry(key, sizeof(key), old_exp, hash);
        NHID_TRY(nhid_txn_delete(req->txn, key));
    }
    json_object_set_new(e, "expire_time", json_integer(new_exp));
    json_object_set_new(e, "expire_ms",
                        json_integer(nhid_now_ns() / 1000000 + (new_exp - now) * 1000));
    key_expiry(key, sizeof(key), new_exp, hash);
    NHID_TRY(nhid_txn_put(req->txn, key, (const uint8_t *)"", 0));
    key_id(key, sizeof(key), hash);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, e));
    resp->auth = auth_block(token ? token : "", e);
    if (new_exp - now < inc) {
        resp->warnings = json_pack("[s]", "TTL of the renewed token is capped by its "
                                          "explicit max TTL");
    }
out:
    return rc;
}

static int h_renew_self(struct nhid_request *req, struct nhid_response *resp)
{
    json_t *e = NULL;
    int rc = load_entry(req->core, req->txn, req->auth.token_hash, &e);
    if (rc < 0)
        return nhid_resp_error(resp, 403, "permission denied: invalid or revoked token");
    rc = renew_entry(req, resp, req->auth.token_hash, e, req->client_token);
    json_decref(e);
    return rc;
}

static int h_renew(struct nhid_request *req, struct nhid_response *resp)
{
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = entry_from_body(req, resp, false, hash, &e);
    if (rc < 0)
        return rc;
    rc = renew_entry(req, resp, hash, e, json_string_value(json_object_get(req->body, "token")));
    json_decref(e);
    return rc;
}

static int h_renew_accessor(struct nhid_request *req, struct nhid_response *resp)
{
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = entry_from_body(req, resp, true, hash, &e);
    if (rc < 0)
        return rc;
    rc = renew_entry(req, resp, hash, e, "");
    json_decref(e);
    return rc;
}

static int h_revoke_self(struct nhid_request *req, struct nhid_response *resp)
{
    (void)resp;
    return nhid_token_revoke_hash(req->core, req->txn, req->auth.token_hash, NULL);
}

static int h_revoke(struct nhid_request *req, struct nhid_response *resp)
{
    const char *tok = NULL;
    int rc = nhid_body_string(req, resp, "token", NULL, &tok);
    if (rc < 0)
        return rc;
    if (tok == NULL || *tok == '\0')
        return nhid_resp_error(resp, 400, "missing field \"token\"");
    char hash[HASH_HEX];
    rc = token_hash(req->core, tok, hash);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    /* Revoking an unknown token succeeds (idempotent, as Vault). */
    return nhid_token_revoke_hash(req->core, req->txn, hash, NULL);
}

static int h_revoke_accessor(struct nhid_request *req, struct nhid_response *resp)
{
    char hash[HASH_HEX];
    json_t *e = NULL;
    int rc = entry_from_body(req, resp, true, hash, &e);
    if (rc < 0)
        return rc;
    json_decref(e);
    return nhid_token_revoke_hash(req->core, req->txn, hash, NULL);
}

struct key_list {
    json_t *keys;
    size_t prefix_len;
};

static int list_key(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct key_list *l = arg;
    json_array_append_new(l->keys, json_string(key + l->prefix_len));
    return 0;
}

static int h_accessors(struct nhid_request *req, struct nhid_response *resp)
{
    struct key_list l = {json_array(), strlen("token/accessor/")};
    if (l.keys == NULL)
        return NHID_ERR_NOMEM;
    char *after = nhid_req_query(req, "after");
    char *limit_s = nhid_req_query(req, "limit");
    size_t limit = limit_s ? strtoul(limit_s, NULL, 10) : 0;
    if (limit == 0 || limit > 10000)
        limit = 10000;
    char afterkey[160] = "";
    if (after && strlen(after) < 64)
        snprintf(afterkey, sizeof(afterkey), "token/accessor/%s", after);
    int rc = nhid_txn_scan_prefix(req->txn, "token/accessor/", afterkey[0] ? afterkey : NULL, limit,
                                  true, list_key, &l);
    free(after);
    free(limit_s);
    if (rc < 0) {
        json_decref(l.keys);
        return rc;
    }
    resp->data = json_pack("{s:o}", "keys", l.keys);
    return NHID_OK;
}

/* ---- expiry sweeper ----------------------------------------------------- */

#define SWEEP_KEY 128
struct sweep_ctx {
    char (*keys)[SWEEP_KEY];
    size_t n;
    size_t cap;
};

static int sweep_collect(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct sweep_ctx *s = arg;
    if (s->n >= s->cap)
        return 1;
    if (strlen(key) < SWEEP_KEY)
        snprintf(s->keys[s->n++], SWEEP_KEY, "%s", key);
    return 0;
}

static int sweep_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct sweep_ctx *s = arg;
    char end[64];
    snprintf(end, sizeof(end), "token/expiry/%020" PRId64 "/", nhid_now() + 1);
    int rc = nhid_txn_scan(txn, "token/expiry/", end, s->cap, true, sweep_collect, s);
    for (size_t i = 0; rc == NHID_OK && i < s->n; i++) {
        const char *slash = strrchr(s->keys[i], '/');
        if (slash && strlen(slash + 1) == HASH_HEX - 1)
            rc = nhid_token_revoke_hash(core, txn, slash + 1, NULL);
        /* Also drops an index entry whose token is already gone. */
        if (rc == NHID_OK)
            rc = nhid_txn_delete(txn, s->keys[i]);
    }
    return rc;
}

/* Expired tokens are already refused at authentication; this removes them. */
static int sweep_job(struct nhid_core *core)
{
    char(*buf)[SWEEP_KEY] = calloc(1000, SWEEP_KEY);
    if (buf == NULL)
        return NHID_ERR_NOMEM;
    int rc;
    size_t total = 0;
    do {
        struct sweep_ctx s = {buf, 0, 1000};
        rc = nhid_core_write(core, sweep_txn, &s);
        total += s.n;
        if (s.n < s.cap)
            break;
    } while (rc == NHID_OK && total < 100000);
    if (total)
        nhid_debug(MOD, "swept %zu expired tokens", total);
    free(buf);
    return rc;
}

/* Credential-registry hook: revoke the token with this accessor (and its children). */
static int token_cred_revoke(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                             const char *accessor)
{
    (void)entity_id;
    int rc = nhid_token_revoke_by_accessor(core, txn, accessor, NULL);
    return rc == NHID_ERR_NOT_FOUND ? NHID_OK : rc;
}

static int token_on_unseal(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "token");
    if (slot == NULL)
        return NHID_ERR_INTERNAL;
    struct token_state *st = *slot;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return NHID_ERR_NOMEM;
        *slot = st;
    }
    int rc = nhid_barrier_derive_key(core->barrier, "token-hash", st->hash_key);
    if (rc == NHID_OK)
        st->ready = true;
    if (rc == NHID_OK)
        rc = nhid_identity_cred_register_type("token", token_cred_revoke);
    return rc;
}

static void token_on_seal(struct nhid_core *core)
{
    struct token_state *st = state(core);
    if (st) {
        st->ready = false;
        nhid_wipe(st->hash_key, sizeof(st->hash_key));
    }
}

static const struct nhid_route token_routes[] = {
    {"auth/token/create", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_OPTIMISTIC, h_create,
     "create"},
    {"auth/token/create-orphan", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_OPTIMISTIC,
     h_create_orphan, "create"},
    {"auth/token/lookup-self", NHID_M_GET | NHID_M_WRITE, NHID_ROUTE_SELF, h_lookup_self, "read"},
    {"auth/token/lookup", NHID_M_WRITE, 0, h_lookup, "read"},
    {"auth/token/lookup-accessor", NHID_M_WRITE, 0, h_lookup_accessor, "read"},
    {"auth/token/renew-self", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_SELF, h_renew_self,
     "renew"},
    {"auth/token/renew", NHID_M_WRITE, NHID_ROUTE_WRITE, h_renew, "renew"},
    {"auth/token/renew-accessor", NHID_M_WRITE, NHID_ROUTE_WRITE, h_renew_accessor, "renew"},
    {"auth/token/revoke-self", NHID_M_WRITE, NHID_ROUTE_WRITE | NHID_ROUTE_SELF, h_revoke_self,
     "revoke"},
    {"auth/token/revoke", NHID_M_WRITE, NHID_ROUTE_WRITE, h_revoke, "revoke"},
    {"auth/token/revoke-accessor", NHID_M_WRITE, NHID_ROUTE_WRITE, h_revoke_accessor, "revoke"},
    {"auth/token/accessors", NHID_M_LIST | NHID_M_GET, 0, h_accessors, "list"},
};

static const struct nhid_job token_jobs[] = {
    {"token-expiry-sweep", 5, sweep_job},
};

const struct nhid_engine nhid_token_engine = {
    .name = "token",
    .routes = token_routes,
    .n_routes = NHID_ARRAY_LEN(token_routes),
    .authenticate = token_authenticate,
    .jobs = token_jobs,
    .n_jobs = NHID_ARRAY_LEN(token_jobs),
    .on_unseal = token_on_unseal,
    .on_seal = token_on_seal,
};
