/*
 * identity_mem — the identity module's in-memory state: the identity gate
 * (which entity ids may not act), authentication and credential-use
 * counters waiting to be flushed, and failure rate limiting.
 *
 * None of this touches storage on the request path: logins and token uses
 * only take a mutex for a hash-map update, and the identity-flush job
 * writes the counters every few seconds.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "identity/identity_internal.h"

int idm_key(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= len) ? NHID_ERR_TOO_LARGE : NHID_OK;
}

/* ---- hash map ------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void *hmap_get(const struct hmap *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    for (struct hent *e = m->b[hash_str(key) % m->nb]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

static int hmap_grow(struct hmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct hent **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        struct hent *e = m->b[i];
        while (e) {
            struct hent *next = e->next;
            size_t k = hash_str(e->key) % nb;
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return NHID_OK;
}

int hmap_put(struct hmap *m, const char *key, void *val)
{
    if (m->n >= m->nb && hmap_grow(m) < 0)
        return NHID_ERR_NOMEM;
    struct hent *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NHID_ERR_NOMEM;
    e->key = strdup(key);
    if (e->key == NULL) {
        free(e);
        return NHID_ERR_NOMEM;
    }
    e->val = val;
    size_t k = hash_str(key) % m->nb;
    e->next = m->b[k];
    m->b[k] = e;
    m->n++;
    return NHID_OK;
}

void *hmap_del(struct hmap *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    struct hent **pp = &m->b[hash_str(key) % m->nb];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct hent *e = *pp;
            void *v = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->n--;
            return v;
        }
    }
    return NULL;
}

void hmap_clear(struct hmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct hent *e = m->b[i];
        while (e) {
            struct hent *next = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ---- identity gate --------------------------------------------------------- */

/* entity_id → "state\0name" for identities that may not act. */
static pthread_rwlock_t gate_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct hmap gate;

void idm_gate_set(const char *entity_id, const char *name, const char *state)
{
    pthread_rwlock_wrlock(&gate_lock);
    free(hmap_del(&gate, entity_id));
    bool blocked =
        strcmp(state, NHID_STATE_SUSPENDED) == 0 || strcmp(state, NHID_STATE_DECOMMISSIONED) == 0;
    if (blocked) {
        size_t sl = strlen(state), nl = strlen(name);
        char *v = malloc(sl + nl + 2);
        if (v) {
            memcpy(v, state, sl + 1);
            memcpy(v + sl + 1, name, nl + 1);
            if (hmap_put(&gate, entity_id, v) < 0)
                free(v);
        }
    }
    pthread_rwlock_unlock(&gate_lock);
}

void idm_gate_clear_all(void)
{
    pthread_rwlock_wrlock(&gate_lock);
    hmap_clear(&gate, free);
    pthread_rwlock_unlock(&gate_lock);
}

int idm_gate_check(struct nhid_core *core, const char *entity_id, char *msg, size_t msglen)
{
    (void)core;
    int rc = NHID_OK;
    if (entity_id == NULL || *entity_id == '\0')
        return NHID_OK;
    pthread_rwlock_rdlock(&gate_lock);
    const char *v = hmap_get(&gate, entity_id);
    if (v) {
        snprintf(msg, msglen, "permission denied: identity %s is %s", v + strlen(v) + 1, v);
        rc = NHID_ERR_DENIED;
    }
    pthread_rwlock_unlock(&gate_lock);
    return rc;
}

/* ---- counters ---------------------------------------------------------------- */

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hmap seen_map; /* name → struct idm_seen */
static struct hmap use_map;  /* "entity_id/type/id" → struct idm_use */

#define COUNTERS_MAX 1000000 /* bound on pending entries between flushes */

void nhid_identity_note_auth(struct nhid_core *core, const char *name, const char *method,
                             const char *source, bool ok)
{
    (void)core;
    if (name == NULL || *name == '\0')
        return;
    pthread_mutex_lock(&count_lock);
    struct idm_seen *s = hmap_get(&seen_map, name);
    if (s == NULL && seen_map.n < COUNTERS_MAX) {
        s = calloc(1, sizeof(*s));
        if (s && hmap_put(&seen_map, name, s) < 0) {
            free(s);
            s = NULL;
        }
    }
    if (s) {
        s->last_seen = nhid_now();
        if (ok)
            s->ok++;
        else
            s->failed++;
        snprintf(s->method, sizeof(s->method), "%s", method ? method : "");
        snprintf(s->source, sizeof(s->source), "%s", source ? source : "");
    }
    pthread_mutex_unlock(&count_lock);
}

void nhid_identity_source_network(const char *addr, char *out, size_t outlen)
{
    unsigned char buf[16];
    char txt[INET6_ADDRSTRLEN];
    if (addr && inet_pton(AF_INET, addr, buf) == 1) {
        buf[3] = 0;
        inet_ntop(AF_INET, buf, txt, sizeof(txt));
        snprintf(out, outlen, "%s/24", txt);
    } else if (addr && inet_pton(AF_INET6, addr, buf) == 1) {
        memset(buf + 8, 0, 8);
        inet_ntop(AF_INET6, buf, txt, sizeof(txt));
        snprintf(out, outlen, "%s/64", txt);
    } else {
        snprintf(out, outlen, "%s", addr ? addr : "");
    }
}

void nhid_identity_cred_used(struct nhid_core *core, const char *entity_id, const char *type,
                             const char *id, const char *source)
{
    (void)core;
    char key[512];
    if (entity_id == NULL || *entity_id == '\0' ||
        snprintf(key, sizeof(key), "%s/%s/%s", entity_id, type, id) >= (int)sizeof(key))
        return;
    char net[64];
    nhid_identity_source_network(source, net, sizeof(net));
    pthread_mutex_lock(&count_lock);
    struct idm_use *u = hmap_get(&use_map, key);
    if (u == NULL && use_map.n < COUNTERS_MAX) {
        u = calloc(1, sizeof(*u));
        if (u && hmap_put(&use_map, key, u) < 0) {
            free(u);
            u = NULL;
        }
    }
    if (u) {
        u->uses++;
        u->last_used = nhid_now();
        snprintf(u->source, sizeof(u->source), "%s", source ? source : "");
        bool known = false;
        for (unsigned i = 0; i < u->n_nets; i++)
            if (strcmp(u->nets[i], net) == 0)
                known = true;
        if (!known && u->n_nets < IDM_NETS_MAX)
            snprintf(u->nets[u->n_nets++], sizeof(u->nets[0]), "%s", net);
    }
    pthread_mutex_unlock(&count_lock);
}

void idm_take_seen(struct hmap *out)
{
    pthread_mutex_lock(&count_lock);
    *out = seen_map;
    memset(&seen_map, 0, sizeof(seen_map));
    pthread_mutex_unlock(&count_lock);
}

void idm_take_uses(struct hmap *out)
{
    pthread_mutex_lock(&count_lock);
    *out = use_map;
    memset(&use_map, 0, sizeof(use_map));
    pthread_mutex_unlock(&count_lock);
}

/* ---- failure rate limiting --------------------------------------------------- */

struct bucket {
    double tokens;
    int64_t last_ns;
};

static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hmap rate_map;
#define RATE_KEYS_MAX 100000 /* bound on tracked keys; full buckets are dropped first */

/* The burst: NHID_AUTH_FAIL_BURST, or the environment's NHID_AUTH_FAIL_BURST (1..100000). */
static double burst(void)
{
    static double value;
    if (value == 0) {
        const char *e = getenv("NHID_AUTH_FAIL_BURST");
        long v = e ? strtol(e, NULL, 10) : 0;
        value = (v >= 1 && v <= 100000) ? (double)v : NHID_AUTH_FAIL_BURST;
    }
    return value;
}

static void refill(struct bucket *b, int64_t now)
{
    double add = (double)(now - b->last_ns) / 1e9 / NHID_AUTH_FAIL_REFILL_S;
    b->tokens += add;
    if (b->tokens > burst())
        b->tokens = burst();
    b->last_ns = now;
}

int nhid_identity_rate_check(const char *key, int *retry_after)
{
    int rc = NHID_OK;
    pthread_mutex_lock(&rate_lock);
    struct bucket *b = hmap_get(&rate_map, key);
    if (b) {
        refill(b, nhid_mono_ns());
        if (b->tokens < 1.0) {
            rc = NHID_ERR_RATE_LIMIT;
            if (retry_after)
                *retry_after = (int)((1.0 - b->tokens) * NHID_AUTH_FAIL_REFILL_S) + 1;
        }
    }
    pthread_mutex_unlock(&rate_lock);
    return rc;
}

void nhid_identity_rate_fail(const char *key)
{
    int64_t now = nhid_mono_ns();
    pthread_mutex_lock(&rate_lock);
    struct bucket *b = hmap_get(&rate_map, key);
    if (b == NULL) {
        if (rate_map.n >= RATE_KEYS_MAX)
            hmap_clear(&rate_map, free); /* under attack from many keys: start over, bounded */
        b = calloc(1, sizeof(*b));
        if (b) {
            b->tokens = burst();
            b->last_ns = now;
            if (hmap_put(&rate_map, key, b) < 0) {
                free(b);
                b = NULL;
            }
        }
    }
    if (b) {
        refill(b, now);
        b->tokens -= 1.0;
        if (b->tokens < 0)
            b->tokens = 0;
    }
    pthread_mutex_unlock(&rate_lock);
}

void nhid_identity_rate_reset(void)
{
    pthread_mutex_lock(&rate_lock);
    hmap_clear(&rate_map, free);
    pthread_mutex_unlock(&rate_lock);
}

json_t *nhid_identity_audit_event(const char *name, const char *entity_id, const char *event,
                                  const char *method, const char *source, bool anomaly,
                                  const char *reason)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (name && *name)
        json_object_set_new(o, "name", json_string(name));
    if (entity_id && *entity_id)
        json_object_set_new(o, "entity_id", json_string(entity_id));
    if (event)
        json_object_set_new(o, "event", json_string(event));
    if (method)
        json_object_set_new(o, "method", json_string(method));
    if (source)
        json_object_set_new(o, "source", json_string(source));
    json_object_set_new(o, "anomaly", json_boolean(anomaly));
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    return json_pack("{s:o}", "identity", o);
}
