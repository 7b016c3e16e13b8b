/* lease — lease records, the ordered expiry index, the expiry job and sys/leases. */
#include "lease/lease.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "identity/identity.h"
#include "store/store.h"

#define MOD "lease"
#define KEY_ID "lease/id/"
#define KEY_EXPIRY "lease/expiry/"
#define KEY_MAX (NHID_LEASE_ID_MAX + 64)
#define RANDOM_LEN 24
#define LIST_MAX 10000             /* keys one LIST answers */
#define JOB_BUDGET_NS 500000000LL  /* the expiry job yields after ~0.5 s */
#define ERR_LEN 256

/* ---- lease types ----------------------------------------------------------- */

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct nhid_lease_type *types[NHID_LEASE_TYPES_MAX];
static size_t n_types;

int nhid_lease_register_type(const struct nhid_lease_type *t)
{
    if (t == NULL || t->prefix == NULL || t->revoke == NULL || !nhid_lease_id_valid(t->prefix, true))
        return NHID_ERR_INVALID;
    int rc = NHID_OK;
    pthread_mutex_lock(&types_lock);
    size_t i;
    for (i = 0; i < n_types; i++)
        if (strcmp(types[i]->prefix, t->prefix) == 0)
            break;
    if (i == n_types) {
        if (n_types == NHID_LEASE_TYPES_MAX)
            rc = NHID_ERR_TOO_LARGE;
        else
            n_types++;
    }
    if (rc == NHID_OK)
        types[i] = t;
    pthread_mutex_unlock(&types_lock);
    return rc;
}

/* The type with the longest prefix of id, or NULL. */
static const struct nhid_lease_type *type_for(const char *id)
{
    const struct nhid_lease_type *best = NULL;
    size_t best_len = 0;
    pthread_mutex_lock(&types_lock);
    for (size_t i = 0; i < n_types; i++) {
        size_t n = strlen(types[i]->prefix);
        if (n > best_len && strncmp(id, types[i]->prefix, n) == 0) {
            best = types[i];
            best_len = n;
        }
    }
    pthread_mutex_unlock(&types_lock);
    return best;
}

/* ---- ids ----------------------------------------------------------------- */

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool nhid_lease_id_valid(const char *id, bool prefix)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= NHID_LEASE_ID_MAX)
        return false;
    const char *seg = id;
    for (size_t i = 0; i <= n; i++) {
        if (id[i] == '/' || id[i] == '\0') {
            size_t len = (size_t)(id + i - seg);
            /* No empty segment; only a prefix may end with '/'. */
            if (len == 0 && !(prefix && id[i] == '\0'))
                return false;
            if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            seg = id + i + 1;
        } else if (!id_char(id[i])) {
            return false;
        }
    }
    return true;
}

int nhid_lease_id_new(const char *prefix, char out[NHID_LEASE_ID_MAX])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen == 0 || prefix[plen - 1] != '/' || !nhid_lease_id_valid(prefix, true) ||
        plen + RANDOM_LEN >= NHID_LEASE_ID_MAX)
        return NHID_ERR_INVALID;
    char rnd[RANDOM_LEN + 1];
    size_t got = 0;
    while (got < RANDOM_LEN) {
        uint8_t b[32];
        if (nhid_random_bytes(b, sizeof(b)) < 0)
            return NHID_ERR_CRYPTO;
        for (size_t i = 0; i < sizeof(b) && got < RANDOM_LEN; i++)
            if (b[i] < 248) /* 248 = 4 * 62: no modulo bias */
                rnd[got++] = alphabet[b[i] % 62];
    }
    rnd[RANDOM_LEN] = '\0';
    snprintf(out, NHID_LEASE_ID_MAX, "%s%s", prefix, rnd);
    return NHID_OK;
}

int nhid_lease_cred_id(const char *lease_id, char *out, size_t outlen)
{
    size_t n = strlen(lease_id);
    if (n + 1 > outlen || n > 160)
        return NHID_ERR_TOO_LARGE;
    for (size_t i = 0; i <= n; i++)
        out[i] = lease_id[i] == '/' ? ':' : lease_id[i];
    return NHID_OK;
}

int nhid_lease_from_cred_id(const char *cred_id, char out[NHID_LEASE_ID_MAX])
{
    size_t n = strlen(cred_id);
    if (n >= NHID_LEASE_ID_MAX)
        return NHID_ERR_TOO_LARGE;
    for (size_t i = 0; i <= n; i++)
        out[i] = cred_id[i] == ':' ? '/' : cred_id[i];
    return nhid_lease_id_valid(out, false) ? NHID_OK : NHID_ERR_INVALID;
}

static void key_id(char *out, size_t len, const char *id)
{
    snprintf(out, len, KEY_ID "%s", id);
}

static void key_expiry(char *out, size_t len, int64_t due, const char *id)
{
    snprintf(out, len, KEY_EXPIRY "%020" PRId64 "/%s", due < 0 ? 0 : due, id);
}

/* ---- records ----------------------------------------------------------- */

int nhid_lease_get(struct nhid_core *core, struct nhid_txn *txn, const char *id, json_t **out)
{
    char key[KEY_MAX];
    if (!nhid_lease_id_valid(id, false))
        return NHID_ERR_NOT_FOUND;
    key_id(key, sizeof(key), id);
    return nhid_core_load_json(core, txn, key, out);
}

int nhid_lease_create(struct nhid_core *core, struct nhid_txn *txn,
                      const struct nhid_lease_params *p, json_t **out)
{
    int rc = NHID_OK;
    json_t *l = NULL;
    char key[KEY_MAX];
    if (p == NULL || !nhid_lease_id_valid(p->id, false) || p->ttl <= 0 || p->max_ttl < 0)
        return NHID_ERR_INVALID;
    int64_t now = nhid_now();
    int64_t max_ttl = p->max_ttl > 0 ? p->max_ttl : p->ttl;
    int64_t ttl = p->ttl > max_ttl ? max_ttl : p->ttl;
    int64_t exp = now + ttl;
    l = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:O, s:s, s:s, s:s, s:I}", "id",
                  p->id, "engine", p->engine ? p->engine : "", "issue_time", (json_int_t)now,
                  "expire_time", (json_int_t)exp, "last_renewal", (json_int_t)0, "ttl",
                  (json_int_t)ttl, "max_ttl", (json_int_t)max_ttl, "due", (json_int_t)exp,
                  "renewable", p->renewable, "data", p->data ? (json_t *)p->data : json_null(),
                  "entity_id", p->entity_id ? p->entity_id : "", "identity",
                  p->identity ? p->identity : "", "cred_type", p->cred_type ? p->cred_type : "",
                  "attempts", (json_int_t)0);
    NHID_CHECK_ALLOC(l);
    key_id(key, sizeof(key), p->id);
    NHID_TRY(nhid_core_save_json(core, txn, key, l));
    key_expiry(key, sizeof(key), exp, p->id);
    NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
    if (p->entity_id && *p->entity_id && p->cred_type && *p->cred_type) {
        char cid[NHID_LEASE_ID_MAX];
        NHID_TRY(nhid_lease_cred_id(p->id, cid, sizeof(cid)));
        json_t *meta = json_pack("{s:s, s:s}", "lease_id", p->id, "engine",
                                 p->engine ? p->engine : "");
        NHID_CHECK_ALLOC(meta);
        rc = nhid_identity_cred_record(core, txn, p->entity_id, p->cred_type, cid, now, exp, meta);
        json_decref(meta);
        NHID_TRY(rc);
    }
    if (out)
        *out = json_incref(l);
out:
    json_decref(l);
    return rc;
}

/* Delete a lease's record, index entry and mark its credential revoked (txn writable). */
static int delete_in_txn(struct nhid_core *core, struct nhid_txn *txn, const char *id,
                         const char *reason)
{
    int rc = NHID_OK;
    char key[KEY_MAX];
    json_t *l = NULL;
    rc = nhid_lease_get(core, txn, id, &l);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    NHID_TRY(rc);
    key_expiry(key, sizeof(key), nhid_json_int(l, "due"), id);
    NHID_TRY(nhid_txn_delete(txn, key));
    key_id(key, sizeof(key), id);
    NHID_TRY(nhid_txn_delete(txn, key));
    if (nhid_json_str(l, "entity_id")[0] && nhid_json_str(l, "cred_type")[0]) {
        char cid[NHID_LEASE_ID_MAX];
        if (nhid_lease_cred_id(id, cid, sizeof(cid)) == NHID_OK)
            NHID_TRY(nhid_identity_cred_revoked(core, txn, nhid_json_str(l, "entity_id"),
                                                nhid_json_str(l, "cred_type"), cid, reason));
    }
out:
    json_decref(l);
    return rc;
}

/* Move a lease's index entry to `due` and save the (changed) record (txn writable). */
static int move_due(struct nhid_core *core, struct nhid_txn *txn, json_t *l, int64_t due)
{
    int rc = NHID_OK;
    char key[KEY_MAX];
    const char *id = nhid_json_str(l, "id");
    key_expiry(key, sizeof(key), nhid_json_int(l, "due"), id);
    NHID_TRY(nhid_txn_delete(txn, key));
    json_object_set_new(l, "due", json_integer(due));
    key_expiry(key, sizeof(key), due, id);
    NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
    key_id(key, sizeof(key), id);
    NHID_TRY(nhid_core_save_json(core, txn, key, l));
out:
    return rc;
}

/* Record a failed revocation attempt and schedule the next one (txn writable). */
static int reschedule_in_txn(struct nhid_core *core, struct nhid_txn *txn, const char *id,
                             const char *err)
{
    json_t *l = NULL;
    int rc = nhid_lease_get(core, txn, id, &l);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    int64_t attempts = nhid_json_int(l, "attempts") + 1;
    int64_t backoff = attempts >= 9 ? NHID_LEASE_RETRY_MAX_S : (int64_t)1 << attempts;
    if (backoff > NHID_LEASE_RETRY_MAX_S)
        backoff = NHID_LEASE_RETRY_MAX_S;
    json_object_set_new(l, "attempts", json_integer(attempts));
    json_object_set_new(l, "last_error", json_string(err && *err ? err : "revocation failed"));
    rc = move_due(core, txn, l, nhid_now() + backoff);
    json_decref(l);
    return rc;
}

int nhid_lease_schedule_revoke(struct nhid_core *core, struct nhid_txn *txn, const char *id)
{
    json_t *l = NULL;
    int rc = nhid_lease_get(core, txn, id, &l);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    json_object_set_new(l, "revoke_requested", json_true());
    int64_t now = nhid_now();
    rc = move_due(core, txn, l, nhid_json_int(l, "due") < now ? nhid_json_int(l, "due") : now);
    json_decref(l);
    return rc;
}

int nhid_lease_cred_revoke_hook(struct nhid_core *core, struct nhid_txn *txn,
                                const char *entity_id, const char *cred_id)
{
    (void)entity_id;
    char id[NHID_LEASE_ID_MAX];
    if (nhid_lease_from_cred_id(cred_id, id) < 0)
        return NHID_OK; /* not one of ours: nothing to revoke */
    return nhid_lease_schedule_revoke(core, txn, id);
}

/* ---- revocation ------------------------------------------------------------ */

/* The external part: run the type's hook for lease l. */
static int call_revoke(struct nhid_core *core, const json_t *l, char *err, size_t errlen)
{
    const struct nhid_lease_type *t = type_for(nhid_json_str(l, "id"));
    if (t == NULL) {
        snprintf(err, errlen, "no engine handles leases like \"%.128s\" (is it unsealed?)",
                 nhid_json_str(l, "id"));
        return NHID_ERR_UNAVAILABLE;
    }
    err[0] = '\0';
    return t->revoke(core, l, err, errlen);
}

struct one_ctx {
    const char *id;
    const char *err;
    bool ok;
};

static int revoke_one_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct one_ctx *c = arg;
    return c->ok ? delete_in_txn(core, txn, c->id, "lease revoked")
                 : reschedule_in_txn(core, txn, c->id, c->err);
}

static int load_once(struct nhid_core *core, const char *id, json_t **out)
{
    struct nhid_txn *txn = NULL;
    int rc = nhid_store_read_begin(core->store, &txn);
    if (rc < 0)
        return rc;
    rc = nhid_lease_get(core, txn, id, out);
    nhid_store_read_end(txn);
    return rc;
}

int nhid_lease_revoke(struct nhid_core *core, const char *id, char *err, size_t errlen)
{
    json_t *l = NULL;
    char e[ERR_LEN] = "";
    int rc = load_once(core, id, &l);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    int hrc = call_revoke(core, l, e, sizeof(e));
    json_decref(l);
    struct one_ctx c = {id, e, hrc == NHID_OK};
    rc = nhid_core_write(core, revoke_one_txn, &c);
    if (hrc < 0) {
        if (err)
            snprintf(err, errlen, "%s", e[0] ? e : nhid_strerror(hrc));
        return hrc;
    }
    return rc;
}

/* ---- the expiry walk ------------------------------------------------------- */

struct due_entry {
    char key[KEY_MAX];
    const char *id;  /* points into key */
    json_t *lease;   /* NULL: stale index entry */
    int rc;
    char err[ERR_LEN];
};

struct due_batch {
    struct due_entry *e;
    size_t n, cap;
};

static int due_collect(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct due_batch *b = arg;
    if (b->n >= b->cap)
        return 1;
    size_t klen = strlen(key);
    size_t pre = strlen(KEY_EXPIRY) + 21; /* "<20 digits>/" */
    if (klen <= pre || klen >= KEY_MAX)
        return 0;
    struct due_entry *d = &b->e[b->n++];
    memcpy(d->key, key, klen + 1);
    d->id = d->key + pre;
    d->lease = NULL;
    d->rc = NHID_OK;
    d->err[0] = '\0';
    return 0;
}

static int due_apply_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct due_batch *b = arg;
    int rc = NHID_OK;
    for (size_t i = 0; i < b->n && rc == NHID_OK; i++) {
        struct due_entry *d = &b->e[i];
        if (d->lease == NULL)
            rc = nhid_txn_delete(txn, d->key); /* stale: the lease is gone or moved */
        else if (d->rc == NHID_OK)
            rc = delete_in_txn(core, txn, d->id, "lease expired");
        else
            rc = reschedule_in_txn(core, txn, d->id, d->err);
    }
    return rc;
}

int nhid_lease_expire_due(struct nhid_core *core, size_t max_batches, size_t *revoked)
{
    int rc = NHID_OK;
    size_t total = 0;
    int64_t start = nhid_mono_ns();
    struct due_batch b = {calloc(NHID_LEASE_BATCH, sizeof(struct due_entry)), 0, NHID_LEASE_BATCH};
    if (b.e == NULL)
        return NHID_ERR_NOMEM;
    for (size_t batch = 0; batch < max_batches; batch++) {
        char end[64];
        struct nhid_txn *txn = NULL;
        b.n = 0;
        snprintf(end, sizeof(end), KEY_EXPIRY "%020" PRId64 "/", nhid_now() + 1);
        NHID_TRY(nhid_store_read_begin(core->store, &txn));
        rc = nhid_txn_scan(txn, KEY_EXPIRY, end, b.cap, true, due_collect, &b);
        for (size_t i = 0; rc == NHID_OK && i < b.n; i++) {
            struct due_entry *d = &b.e[i];
            rc = nhid_lease_get(core, txn, d->id, &d->lease);
            if (rc == NHID_ERR_NOT_FOUND) {
                rc = NHID_OK;
                d->lease = NULL;
            } else if (rc == NHID_OK) {
                char want[KEY_MAX];
                key_expiry(want, sizeof(want), nhid_json_int(d->lease, "due"), d->id);
                if (strcmp(want, d->key) != 0) {
                    json_decref(d->lease);
                    d->lease = NULL;
                }
            }
        }
        nhid_store_read_end(txn);
        NHID_TRY(rc);
        if (b.n == 0)
            break;
        /* External revocations, outside every transaction. */
        size_t ok = 0;
        for (size_t i = 0; i < b.n; i++) {
            struct due_entry *d = &b.e[i];
            if (d->lease == NULL)
                continue;
            d->rc = call_revoke(core, d->lease, d->err, sizeof(d->err));
            if (d->rc == NHID_OK)
                ok++;
            else
                nhid_warn(MOD, "revoking lease %s failed (will retry): %s", d->id,
                          d->err[0] ? d->err : nhid_strerror(d->rc));
        }
        rc = nhid_core_write(core, due_apply_txn, &b);
        for (size_t i = 0; i < b.n; i++) {
            json_decref(b.e[i].lease);
            b.e[i].lease = NULL;
        }
        NHID_TRY(rc);
        total += ok;
        if (b.n < b.cap || nhid_mono_ns() - start > JOB_BUDGET_NS)
            break;
    }
out:
    if (total)
        nhid_info(MOD, "revoked %zu expired lease(s)", total);
    free(b.e);
    if (revoked && rc == NHID_OK)
        *revoked = total;
    return rc;
}

static int expiry_job(struct nhid_core *core)
{
    return nhid_lease_expire_due(core, 64, NULL);
}

/* ---- endpoints ------------------------------------------------------------- */

static json_t *lookup_data(const json_t *l)
{
    char it[NHID_RFC3339_LEN], et[NHID_RFC3339_LEN], lr[NHID_RFC3339_LEN];
    int64_t now = nhid_now();
    int64_t exp = nhid_json_int(l, "expire_time");
    nhid_time_format(nhid_json_int(l, "issue_time"), it);
    nhid_time_format(exp, et);
    if (nhid_json_int(l, "last_renewal"))
        nhid_time_format(nhid_json_int(l, "last_renewal"), lr);
    json_t *d = json_pack("{s:s, s:s, s:s, s:o, s:b, s:I}", "id", nhid_json_str(l, "id"), "issue_time", it,
                          "expire_time", et, "last_renewal",
                          nhid_json_int(l, "last_renewal") ? json_string(lr) : json_null(), "renewable",
                          json_is_true(json_object_get(l, "renewable")) &&
                              !json_is_true(json_object_get(l, "revoke_requested")),
                          "ttl", (json_int_t)(exp > now ? exp - now : 0));
    if (d && nhid_json_str(l, "identity")[0])
        json_object_set_new(d, "identity", json_string(nhid_json_str(l, "identity")));
    if (d && nhid_json_int(l, "attempts") > 0) {
        json_object_set_new(d, "revoke_attempts", json_integer(nhid_json_int(l, "attempts")));
        json_object_set_new(d, "last_error", json_string(nhid_json_str(l, "last_error")));
    }
    return d;
}

/* The lease id from the body field "lease_id" (Vault) or the route's *lease_id. */
static int lease_id_arg(struct nhid_request *req, struct nhid_response *resp, const char **out)
{
    const char *id = nhid_req_param(req, "lease_id");
    if (id == NULL) {
        int rc = nhid_body_string(req, resp, "lease_id", NULL, &id);
        if (rc < 0)
            return rc;
    }
    if (id == NULL || *id == '\0')
        return nhid_resp_error(resp, 400, "missing field \"lease_id\"");
    if (!nhid_lease_id_valid(id, false))
        return nhid_resp_error(resp, 400,
                               "lease_id \"%.128s\": not a lease id (segments of letters, digits, "
                               "'.', '_', '-' joined by '/')",
                               id);
    *out = id;
    return NHID_OK;
}

static int h_lookup(struct nhid_request *req, struct nhid_response *resp)
{
    const char *id = NULL;
    int rc = lease_id_arg(req, resp, &id);
    if (rc < 0)
        return rc;
    json_t *l = NULL;
    rc = nhid_lease_get(req->core, req->txn, id, &l);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 400, "invalid lease: %s is not a live lease", id);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    resp->data = lookup_data(l);
    json_decref(l);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

struct list_ctx {
    json_t *keys;
    size_t plen;
    char next[KEY_MAX + 2];
    bool found;
};

static int list_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct list_ctx *c = arg;
    const char *rest = key + c->plen;
    const char *slash = strchr(rest, '/');
    c->found = true;
    if (slash) {
        /* A folder: list it once and jump past everything below it ('/' + 1 == '0'). */
        json_array_append_new(c->keys, json_stringn(rest, (size_t)(slash - rest) + 1));
        snprintf(c->next, sizeof(c->next), "%.*s0", (int)(slash - key), key);
    } else {
        json_array_append_new(c->keys, json_string(rest));
        snprintf(c->next, sizeof(c->next), "%s%c", key, '\x01');
    }
    return 1;
}

static int h_list(struct nhid_request *req, struct nhid_response *resp)
{
    const char *prefix = nhid_req_param(req, "prefix");
    char pkey[KEY_MAX];
    if (prefix == NULL)
        prefix = "";
    if (*prefix && !nhid_lease_id_valid(prefix, true))
        return nhid_resp_error(resp, 400, "prefix \"%.128s\": not a lease id prefix", prefix);
    if (*prefix && prefix[strlen(prefix) - 1] != '/')
        return nhid_resp_error(resp, 400, "prefix \"%.128s\": a LIST prefix ends with '/'", prefix);
    snprintf(pkey, sizeof(pkey), KEY_ID "%s", prefix);
    struct list_ctx c = {json_array(), strlen(pkey), "", false};
    if (c.keys == NULL)
        return NHID_ERR_NOMEM;
    /* Prefix end: the prefix with its last byte ('/') incremented. */
    char end[KEY_MAX];
    snprintf(end, sizeof(end), "%s", pkey);
    end[strlen(end) - 1]++;
    snprintf(c.next, sizeof(c.next), "%s", pkey);
    int rc = NHID_OK;
    while (json_array_size(c.keys) < LIST_MAX) {
        char start[KEY_MAX + 2];
        snprintf(start, sizeof(start), "%s", c.next);
        c.found = false;
        rc = nhid_txn_scan(req->txn, start, end, 1, true, list_one, &c);
        if (rc < 0 || !c.found)
            break;
    }
    if (rc < 0) {
        json_decref(c.keys);
        return nhid_resp_fail(resp, rc, NULL);
    }
    if (json_array_size(c.keys) == 0) {
        json_decref(c.keys);
        return nhid_resp_error(resp, 404, "no leases under \"%s\"", prefix);
    }
    resp->data = json_pack("{s:o}", "keys", c.keys);
    return NHID_OK;
}

struct renew_ctx {
    const char *id;
    int64_t new_exp;
    json_t *out;
};

static int renew_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct renew_ctx *c = arg;
    json_t *l = NULL;
    int rc = nhid_lease_get(core, txn, c->id, &l);
    if (rc < 0)
        return rc;
    if (json_is_true(json_object_get(l, "revoke_requested"))) {
        json_decref(l);
        return NHID_ERR_CONFLICT;
    }
    json_object_set_new(l, "expire_time", json_integer(c->new_exp));
    json_object_set_new(l, "last_renewal", json_integer(nhid_now()));
    rc = move_due(core, txn, l, c->new_exp);
    if (rc == NHID_OK)
        c->out = json_incref(l);
    json_decref(l);
    return rc;
}

static int h_renew(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *id = NULL;
    json_t *l = NULL;
    int64_t inc = 0;
    char err[ERR_LEN] = "";
    NHID_TRY(lease_id_arg(req, resp, &id));
    NHID_TRY(nhid_body_duration(req, resp, "increment", 0, &inc));
    if (inc < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"increment\": must not be negative"));
    rc = load_once(req->core, id, &l);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "lease not found: %s", id));
    NHID_TRY(rc);
    if (!json_is_true(json_object_get(l, "renewable")))
        NHID_FAIL(nhid_resp_error(resp, 400, "lease is not renewable"));
    if (json_is_true(json_object_get(l, "revoke_requested")))
        NHID_FAIL(nhid_resp_error(resp, 400, "lease is being revoked and cannot be renewed"));
    int64_t now = nhid_now();
    /* Vault: the increment counts from now; default the lease's original TTL. */
    int64_t new_exp = now + (inc > 0 ? inc : nhid_json_int(l, "ttl"));
    int64_t cap = nhid_json_int(l, "issue_time") + nhid_json_int(l, "max_ttl");
    bool capped = false;
    if (new_exp > cap) {
        new_exp = cap;
        capped = true;
    }
    if (new_exp <= now)
        NHID_FAIL(nhid_resp_error(resp, 400, "lease has reached its max TTL and cannot be renewed"));
    const struct nhid_lease_type *t = type_for(id);
    if (t && t->renew) {
        rc = t->renew(req->core, l, new_exp, err, sizeof(err));
        if (rc < 0)
            NHID_FAIL(nhid_resp_error(resp, nhid_err_http_status(rc), "renewing lease %s: %s", id,
                                      err[0] ? err : nhid_strerror(rc)));
    }
    struct renew_ctx c = {id, new_exp, NULL};
    rc = nhid_core_write(req->core, renew_txn, &c);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "lease not found: %s (revoked meanwhile)", id));
    if (rc == NHID_ERR_CONFLICT)
        NHID_FAIL(nhid_resp_error(resp, 400, "lease is being revoked and cannot be renewed"));
    NHID_TRY(rc);
    json_decref(c.out);
    resp->lease_id = nhid_strdup(id);
    NHID_CHECK_ALLOC(resp->lease_id);
    resp->lease_duration = new_exp - now;
    resp->renewable = true;
    resp->status = 200; /* Vault answers the lease fields with data null */
    if (capped)
        resp->warnings = json_pack("[s]", "TTL of the renewed lease is capped by its max TTL");
out:
    json_decref(l);
    return rc;
}

static int h_revoke(struct nhid_request *req, struct nhid_response *resp)
{
    const char *id = NULL;
    char err[ERR_LEN] = "";
    int rc = lease_id_arg(req, resp, &id);
    if (rc < 0)
        return rc;
    rc = nhid_lease_revoke(req->core, id, err, sizeof(err));
    if (rc < 0)
        return nhid_resp_error(resp, nhid_err_http_status(rc), "revoking lease %s: %s (nhid will "
                               "retry it)", id, err[0] ? err : nhid_strerror(rc));
    return NHID_OK;
}

struct ids_ctx {
    char (*ids)[NHID_LEASE_ID_MAX];
    size_t n, cap, strip;
};

static int collect_id(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct ids_ctx *c = arg;
    if (c->n >= c->cap)
        return 1;
    snprintf(c->ids[c->n++], NHID_LEASE_ID_MAX, "%s", key + c->strip);
    return 0;
}

static int force_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct ids_ctx *c = arg;
    int rc = NHID_OK;
    for (size_t i = 0; i < c->n && rc == NHID_OK; i++)
        rc = delete_in_txn(core, txn, c->ids[i], "lease force-revoked");
    return rc;
}

/* revoke-prefix (external revocation of each) and revoke-force (records only). */
static int revoke_prefix(struct nhid_request *req, struct nhid_response *resp, bool force)
{
    int rc = NHID_OK;
    const char *prefix = nhid_req_param(req, "prefix");
    if (prefix == NULL || !nhid_lease_id_valid(prefix, true))
        return nhid_resp_error(resp, 400, "prefix \"%.128s\": not a lease id prefix",
                               prefix ? prefix : "");
    char pkey[KEY_MAX], after[KEY_MAX] = "";
    snprintf(pkey, sizeof(pkey), KEY_ID "%s", prefix);
    struct ids_ctx c = {calloc(NHID_LEASE_BATCH, NHID_LEASE_ID_MAX), 0, NHID_LEASE_BATCH,
                        strlen(KEY_ID)};
    if (c.ids == NULL)
        return NHID_ERR_NOMEM;
    size_t revoked = 0, failed = 0;
    char first_err[ERR_LEN] = "";
    for (;;) {
        struct nhid_txn *txn = NULL;
        c.n = 0;
        NHID_TRY(nhid_store_read_begin(req->core->store, &txn));
        rc = nhid_txn_scan_prefix(txn, pkey, after[0] ? after : NULL, c.cap, true, collect_id,
                                  &c);
        nhid_store_read_end(txn);
        NHID_TRY(rc);
        if (c.n == 0)
            break;
        snprintf(after, sizeof(after), KEY_ID "%s", c.ids[c.n - 1]);
        if (force) {
            NHID_TRY(nhid_core_write(req->core, force_txn, &c));
            revoked += c.n;
        } else {
            for (size_t i = 0; i < c.n; i++) {
                char err[ERR_LEN] = "";
                if (nhid_lease_revoke(req->core, c.ids[i], err, sizeof(err)) == NHID_OK) {
                    revoked++;
                } else {
                    if (failed++ == 0)
                        snprintf(first_err, sizeof(first_err), "%.120s: %.120s", c.ids[i], err);
                }
            }
        }
        if (c.n < c.cap)
            break;
    }
    if (failed)
        rc = nhid_resp_error(resp, 502,
                             "revoked %zu lease(s); %zu failed and will be retried (first: %s)",
                             revoked, failed, first_err);
    else if (revoked)
        nhid_info(MOD, "%s %zu lease(s) under %s", force ? "force-revoked" : "revoked", revoked,
                  prefix);
out:
    free(c.ids);
    return rc;
}

static int h_revoke_prefix(struct nhid_request *req, struct nhid_response *resp)
{
    return revoke_prefix(req, resp, false);
}

static int h_revoke_force(struct nhid_request *req, struct nhid_response *resp)
{
    return revoke_prefix(req, resp, true);
}

static const struct nhid_route lease_routes[] = {
    {"sys/leases/lookup", NHID_M_WRITE, 0, h_lookup, "read"},
    {"sys/leases/lookup", NHID_M_LIST, 0, h_list, "list"},
    {"sys/leases/lookup/*prefix", NHID_M_LIST, 0, h_list, "list"},
    {"sys/leases/renew", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_renew, "renew"},
    {"sys/leases/renew/*lease_id", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_renew, "renew"},
    {"sys/leases/revoke", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_revoke, "revoke"},
    {"sys/leases/revoke/*lease_id", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_revoke, "revoke"},
    {"sys/leases/revoke-prefix/*prefix", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_revoke_prefix,
     "revoke"},
    {"sys/leases/revoke-force/*prefix", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_revoke_force, "revoke"},
};

static const struct nhid_job lease_jobs[] = {
    {"lease-expiry", 1, expiry_job},
};

const struct nhid_engine nhid_lease_engine = {
    .name = "lease",
    .routes = lease_routes,
    .n_routes = NHID_ARRAY_LEN(lease_routes),
    .jobs = lease_jobs,
    .n_jobs = NHID_ARRAY_LEN(lease_jobs),
};
