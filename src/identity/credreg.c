/*
 * credreg — the credential registry: every credential an identity holds
 * (tokens, AppRole secret IDs, join tokens, and later certificates, OAuth
 * clients, dynamic logins) is recorded against it with its expiry, and
 * every credential type registers a revocation hook, so decommissioning
 * can revoke all of them in one transaction without knowing the engines.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "barrier/barrier.h"
#include "core/json_text.h"
#include "identity/identity_internal.h"

#define CRED_REVOKE_MAX 100000 /* credentials revoked in one decommission */
#define CRED_TYPE_MAX 32
#define CRED_ID_MAX 160

struct cred_type {
    char name[CRED_TYPE_MAX];
    nhid_cred_revoke_fn fn;
};

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cred_type types[NHID_CRED_TYPES_MAX];
static size_t n_types;

static bool type_name_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n >= CRED_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '-'))
            return false;
    return true;
}

int nhid_identity_cred_register_type(const char *type, nhid_cred_revoke_fn fn)
{
    if (!type_name_ok(type) || fn == NULL)
        return NHID_ERR_INVALID;
    int rc = NHID_OK;
    pthread_mutex_lock(&types_lock);
    size_t i;
    for (i = 0; i < n_types; i++)
        if (strcmp(types[i].name, type) == 0)
            break;
    if (i == n_types) {
        if (n_types == NHID_CRED_TYPES_MAX) {
            rc = NHID_ERR_TOO_LARGE;
            goto out;
        }
        snprintf(types[i].name, sizeof(types[i].name), "%s", type);
        n_types++;
    }
    types[i].fn = fn;
out:
    pthread_mutex_unlock(&types_lock);
    return rc;
}

static nhid_cred_revoke_fn hook_for(const char *type)
{
    nhid_cred_revoke_fn fn = NULL;
    pthread_mutex_lock(&types_lock);
    for (size_t i = 0; i < n_types; i++)
        if (strcmp(types[i].name, type) == 0)
            fn = types[i].fn;
    pthread_mutex_unlock(&types_lock);
    return fn;
}

static bool id_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || (unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static int cred_keys(const char *entity_id, const char *type, const char *id, int64_t expires,
                     char *key, size_t keylen, char *xkey, size_t xkeylen)
{
    if (!id_ok(entity_id, 64) || !type_name_ok(type) || !id_ok(id, CRED_ID_MAX))
        return NHID_ERR_INVALID;
    int n = snprintf(key, keylen, "identity/cred/%s/%s/%s", entity_id, type, id);
    if (n < 0 || (size_t)n >= keylen)
        return NHID_ERR_TOO_LARGE;
    if (xkey) {
        n = snprintf(xkey, xkeylen, "identity/cred-expiry/%020" PRId64 "/%s/%s/%s", expires,
                     entity_id, type, id);
        if (n < 0 || (size_t)n >= xkeylen)
            return NHID_ERR_TOO_LARGE;
    }
    return NHID_OK;
}

int nhid_identity_cred_record(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                              const char *type, const char *id, int64_t issued, int64_t expires,
                              const json_t *meta)
{
    int rc = NHID_OK;
    char key[512], xkey[600];
    struct nhid_text rec = {0};
    /* DESIGN.md: nothing is issued without an expiry. */
    if (expires <= issued)
        return NHID_ERR_INVALID;
    NHID_TRY(cred_keys(entity_id, type, id, expires, key, sizeof(key), xkey, sizeof(xkey)));
    /* Written as text in one pass (a login records one): the members of every record. */
    char num[96];
    nhid_text_lit(&rec, "{\"type\":");
    nhid_text_json_string(&rec, type, strlen(type));
    nhid_text_lit(&rec, ",\"id\":");
    nhid_text_json_string(&rec, id, strlen(id));
    snprintf(num, sizeof(num), ",\"issued\":%" PRId64 ",\"expires\":%" PRId64, issued, expires);
    nhid_text_lit(&rec, num);
    nhid_text_lit(&rec, ",\"last_used\":0,\"use_count\":0,\"revoked\":false,\"networks\":[]");
    if (meta && json_object_size(meta)) {
        nhid_text_lit(&rec, ",\"meta\":");
        nhid_text_json(&rec, meta);
    }
    nhid_text_lit(&rec, "}");
    if (rec.failed)
        NHID_FAIL(NHID_ERR_NOMEM);
    NHID_TRY(nhid_barrier_put(core->barrier, txn, key, (const uint8_t *)rec.buf, rec.len));
    NHID_TRY(idm_put_empty(txn, xkey));
out:
    nhid_text_free(&rec);
    return rc;
}

/* Mark the record at key revoked (unless expired); drops its expiry index entry. */
static int mark_revoked(struct nhid_core *core, struct nhid_txn *txn, const char *key, json_t *rec,
                        const char *entity_id, const char *reason)
{
    int rc = NHID_OK;
    char xkey[600], tmp[512];
    int64_t now = nhid_now();
    int64_t exp = idm_jint(rec, "expires");
    if (json_is_true(json_object_get(rec, "revoked")))
        return NHID_OK;
    NHID_TRY(cred_keys(entity_id, idm_jstr(rec, "type"), idm_jstr(rec, "id"), exp, tmp, sizeof(tmp),
                       xkey, sizeof(xkey)));
    NHID_TRY(nhid_txn_delete(txn, xkey));
    if (exp > now) {
        json_object_set_new(rec, "revoked", json_true());
        json_object_set_new(rec, "revoked_at", json_integer(now));
        json_object_set_new(rec, "revoke_reason", json_string(reason ? reason : "revoked"));
        NHID_TRY(nhid_core_save_json(core, txn, key, rec));
    }
out:
    return rc;
}

int nhid_identity_cred_revoked(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                               const char *type, const char *id, const char *reason)
{
    char key[512];
    json_t *rec = NULL;
    int rc = cred_keys(entity_id, type, id, 0, key, sizeof(key), NULL, 0);
    if (rc < 0)
        return NHID_OK; /* not a credential we could have recorded */
    rc = nhid_core_load_json(core, txn, key, &rec);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    rc = mark_revoked(core, txn, key, rec, entity_id, reason);
    json_decref(rec);
    return rc;
}

struct key_list {
    char **keys;
    size_t n, cap, max;
};

static int collect_key(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct key_list *l = arg;
    if (l->n >= l->max)
        return 1;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        char **nk = realloc(l->keys, ncap * sizeof(*nk));
        if (nk == NULL)
            return 1;
        l->keys = nk;
        l->cap = ncap;
    }
    l->keys[l->n] = strdup(key);
    if (l->keys[l->n] == NULL)
        return 1;
    l->n++;
    return 0;
}

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
}

int nhid_identity_cred_revoke_all(struct nhid_core *core, struct nhid_txn *txn,
                                  const char *entity_id, const char *reason, unsigned *revoked)
{
    int rc = NHID_OK;
    char prefix[128];
    struct key_list l = {.max = CRED_REVOKE_MAX};
    unsigned count = 0;
    if (!id_ok(entity_id, 64))
        return NHID_ERR_INVALID;
    snprintf(prefix, sizeof(prefix), "identity/cred/%s/", entity_id);
    NHID_TRY(nhid_txn_scan_prefix(txn, prefix, NULL, 0, true, collect_key, &l));
    for (size_t i = 0; i < l.n; i++) {
        json_t *rec = NULL;
        rc = nhid_core_load_json(core, txn, l.keys[i], &rec);
        if (rc == NHID_ERR_NOT_FOUND) {
            rc = NHID_OK;
            continue;
        }
        NHID_TRY(rc);
        if (json_is_true(json_object_get(rec, "revoked"))) {
            json_decref(rec);
            continue;
        }
        const char *type = idm_jstr(rec, "type");
        nhid_cred_revoke_fn fn = hook_for(type);
        if (fn == NULL) {
            nhid_error(IDM_MOD, "no revocation hook for credential type \"%s\"", type);
            json_decref(rec);
            NHID_FAIL(NHID_ERR_INTERNAL);
        }
        rc = fn(core, txn, entity_id, idm_jstr(rec, "id"));
        if (rc == NHID_ERR_NOT_FOUND)
            rc = NHID_OK;
        if (rc == NHID_OK) {
            /* The hook may have updated the record already: reload before marking. */
            json_t *now_rec = NULL;
            if (nhid_core_load_json(core, txn, l.keys[i], &now_rec) == NHID_OK) {
                json_decref(rec);
                rec = now_rec;
            }
            rc = mark_revoked(core, txn, l.keys[i], rec, entity_id, reason);
        }
        json_decref(rec);
        NHID_TRY(rc);
        count++;
    }
    if (l.n >= l.max)
        nhid_warn(IDM_MOD, "identity %s holds more than %d credentials; revoked the first %d",
                  entity_id, CRED_REVOKE_MAX, CRED_REVOKE_MAX);
    if (revoked)
        *revoked = count;
out:
    key_list_free(&l);
    return rc;
}

/* Apply pending use counters to credential records (called by idm_flush). */
int idm_flush_uses(struct nhid_core *core, struct nhid_txn *txn, struct hmap *m);
int idm_flush_uses(struct nhid_core *core, struct nhid_txn *txn, struct hmap *m)
{
    int rc = NHID_OK;
    for (size_t b = 0; b < m->nb; b++) {
        for (struct hent *e = m->b[b]; e; e = e->next) {
            struct idm_use *u = e->val;
            char key[600];
            json_t *rec = NULL;
            if (snprintf(key, sizeof(key), "identity/cred/%s", e->key) >= (int)sizeof(key))
                continue;
            rc = nhid_core_load_json(core, txn, key, &rec);
            if (rc == NHID_ERR_NOT_FOUND) {
                rc = NHID_OK;
                continue;
            }
            NHID_TRY(rc);
            json_object_set_new(rec, "use_count",
                                json_integer(idm_jint(rec, "use_count") + (json_int_t)u->uses));
            json_object_set_new(rec, "last_used", json_integer(u->last_used));
            json_object_set_new(rec, "last_source", json_string(u->source));
            json_t *nets = json_object_get(rec, "networks");
            if (!json_is_array(nets)) {
                nets = json_array();
                json_object_set_new(rec, "networks", nets);
            }
            for (unsigned i = 0; i < u->n_nets; i++) {
                bool known = false;
                size_t k;
                json_t *v;
                json_array_foreach(nets, k, v) if (strcmp(json_string_value(v), u->nets[i]) == 0)
                    known = true;
                if (!known && json_array_size(nets) < IDM_NETS_MAX)
                    json_array_append_new(nets, json_string(u->nets[i]));
            }
            rc = nhid_core_save_json(core, txn, key, rec);
            if (rc == NHID_OK && json_array_size(nets) > 1) {
                char mkey[640];
                snprintf(mkey, sizeof(mkey), "identity/idx/multinet/%s", e->key);
                rc = idm_put_empty(txn, mkey);
            }
            json_decref(rec);
            NHID_TRY(rc);
        }
    }
out:
    return rc;
}
