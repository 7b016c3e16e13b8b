/* database — dynamic and static PostgreSQL credentials (Vault's database engine). */
#include "database/database.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "identity/identity.h"
#include "lease/lease.h"
#include "store/store.h"

#define MOD "database"
#define ERR_LEN 512
#define KEY_LEN 256
#define CONFIGS_MAX 64                 /* pools kept (one per config in use) */
#define DEFAULT_TTL (60 * 60)          /* DESIGN.md: dynamic DB logins live 1 h by default */
#define DEFAULT_MAX_TTL (24 * 60 * 60)
#define SYSTEM_MAX_TTL (32 * 24 * 60 * 60)
#define STATIC_MIN_PERIOD 5            /* Vault's minimum rotation_period */
#define STATIC_RETRY_S 10              /* retry a failed rotation after this */
#define STATIC_BATCH 32
#define URL_MAX 2048
#define CRED_TYPE "db-login"

static const char *const default_revocation[] = {
    ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}' AND pid "
     "<> pg_backend_pid();"),
    "REASSIGN OWNED BY \"{{name}}\" TO CURRENT_USER;",
    "DROP OWNED BY \"{{name}}\";",
    "DROP ROLE IF EXISTS \"{{name}}\";",
};
static const char default_renew[] = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';";
static const char default_rotation[] = "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';";

/* ---- helpers ---------------------------------------------------------------- */

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NHID_DB_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return s[0] != '.' && s[0] != '-';
}

/* A PostgreSQL user name nhid substitutes into templates unquoted-safe. */
static bool username_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NHID_DB_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '@'))
            return false;
    }
    return true;
}

static int random_from(const char *alphabet, size_t alen, char *out, size_t n)
{
    size_t got = 0;
    unsigned limit = 256 - (256 % (unsigned)alen);
    while (got < n) {
        uint8_t b[64];
        if (nhid_random_bytes(b, sizeof(b)) < 0)
            return NHID_ERR_CRYPTO;
        for (size_t i = 0; i < sizeof(b) && got < n; i++)
            if (b[i] < limit)
                out[got++] = alphabet[b[i] % alen];
        nhid_wipe(b, sizeof(b));
    }
    out[n] = '\0';
    return NHID_OK;
}

int nhid_database_password(char out[NHID_DB_PASSWORD_LEN + 1])
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return random_from(a, sizeof(a) - 1, out, NHID_DB_PASSWORD_LEN);
}

int nhid_database_username(const char *role, char out[NHID_DB_USERNAME_MAX + 1])
{
    static const char a[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char r[21], clean[17];
    size_t n = 0;
    for (const char *p = role; p && *p && n < 16; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            c = '_';
        clean[n++] = c;
    }
    clean[n] = '\0';
    int rc = random_from(a, sizeof(a) - 1, r, 20);
    if (rc < 0)
        return rc;
    snprintf(out, NHID_DB_USERNAME_MAX + 1, "v-%s-%s", n ? clean : "role", r);
    return NHID_OK;
}

void nhid_database_expiration(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S+00", &tm);
}

int nhid_database_render(const char *tmpl, const struct nhid_db_vars *v, char **out, char *err,
                         size_t errlen)
{
    size_t cap = strlen(tmpl) + 1, len = 0;
    /* Each variable grows the text by at most its value's length per occurrence. */
    const char *vals[3] = {v->name, v->password, v->expiration};
    size_t extra = 0;
    for (int i = 0; i < 3; i++)
        if (vals[i] && strlen(vals[i]) > extra)
            extra = strlen(vals[i]);
    cap += (cap / 4 + 1) * extra;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NHID_ERR_NOMEM;
    const char *p = tmpl;
    while (*p) {
        if (p[0] == '{' && p[1] == '{') {
            const char *end = strstr(p + 2, "}}");
            if (end == NULL) {
                snprintf(err, errlen, "unclosed \"{{\" in statement");
                nhid_free_secret(buf, cap);
                return NHID_ERR_INVALID;
            }
            size_t vlen = (size_t)(end - p - 2);
            const char *val = NULL;
            bool known = true;
            if ((vlen == 4 && !strncmp(p + 2, "name", 4)) ||
                (vlen == 8 && !strncmp(p + 2, "username", 8)))
                val = v->name;
            else if (vlen == 8 && !strncmp(p + 2, "password", 8))
                val = v->password;
            else if (vlen == 10 && !strncmp(p + 2, "expiration", 10))
                val = v->expiration;
            else
                known = false;
            if (!known || val == NULL) {
                snprintf(err, errlen, "%s template variable {{%.*s}} (use {{name}}, "
                         "{{password}}, {{expiration}})", known ? "unsupported here:" : "unknown",
                         (int)(vlen > 32 ? 32 : vlen), p + 2);
                nhid_free_secret(buf, cap);
                return NHID_ERR_INVALID;
            }
            size_t n = strlen(val);
            if (len + n + 1 > cap) {
                nhid_free_secret(buf, cap);
                return NHID_ERR_TOO_LARGE;
            }
            memcpy(buf + len, val, n);
            len += n;
            p = end + 2;
        } else {
            if (len + 2 > cap) {
                nhid_free_secret(buf, cap);
                return NHID_ERR_TOO_LARGE;
            }
            buf[len++] = *p++;
        }
    }
    buf[len] = '\0';
    *out = buf;
    return NHID_OK;
}

/* Replace every occurrence of secret in msg by "[redacted]" (PostgreSQL may echo SQL). */
static void scrub(char *msg, size_t msglen, const char *secret)
{
    if (secret == NULL || *secret == '\0')
        return;
    size_t sl = strlen(secret);
    char *hit;
    while ((hit = strstr(msg, secret)) != NULL) {
        char tail[ERR_LEN];
        snprintf(tail, sizeof(tail), "%s", hit + sl);
        *hit = '\0';
        size_t used = strlen(msg);
        snprintf(msg + used, msglen - used, "[redacted]%s", tail);
    }
}

/* ---- connection pools ----------------------------------------------------------- */

struct pool {
    char name[NHID_DB_NAME_MAX + 1];
    int64_t gen;
    PGconn *idle[NHID_DB_POOL_IDLE_MAX];
    size_t n_idle;
};

struct db_state {
    pthread_mutex_t lock;
    struct pool pools[CONFIGS_MAX];
    size_t n;
};

static struct db_state g_db = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct pool *pool_find(const char *name, bool create)
{
    for (size_t i = 0; i < g_db.n; i++)
        if (strcmp(g_db.pools[i].name, name) == 0)
            return &g_db.pools[i];
    if (!create || g_db.n == CONFIGS_MAX)
        return NULL;
    struct pool *p = &g_db.pools[g_db.n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    return p;
}

static void pool_drain_locked(struct pool *p)
{
    for (size_t i = 0; i < p->n_idle; i++)
        PQfinish(p->idle[i]);
    p->n_idle = 0;
}

/* Close every idle connection of config name (after its credentials changed). */
static void pool_drain(const char *name)
{
    pthread_mutex_lock(&g_db.lock);
    struct pool *p = pool_find(name, false);
    if (p)
        pool_drain_locked(p);
    pthread_mutex_unlock(&g_db.lock);
}

/* Percent-encode s (RFC 3986 unreserved kept) into out. */
static int url_encode(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (o + (plain ? 1 : 3) + 1 > outlen)
            return NHID_ERR_TOO_LARGE;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return NHID_OK;
}

/* libpq connection URI for config cfg with its root credentials; *out secret. */
static int conninfo(const json_t *cfg, char **out, char *err, size_t errlen)
{
    int rc = NHID_OK;
    char user[256] = "", pass[512] = "";
    char *url = NULL;
    const char *tmpl = nhid_json_str(cfg, "connection_url");
    NHID_TRY(url_encode(nhid_json_str(cfg, "username"), user, sizeof(user)));
    NHID_TRY(url_encode(nhid_json_str(cfg, "password"), pass, sizeof(pass)));
    size_t cap = strlen(tmpl) + strlen(user) * 4 + strlen(pass) * 4 + 64;
    url = malloc(cap);
    NHID_CHECK_ALLOC(url);
    size_t len = 0;
    for (const char *p = tmpl; *p;) {
        const char *val = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{{username}}", 12)) {
            val = user;
            skip = 12;
        } else if (!strncmp(p, "{{password}}", 12)) {
            val = pass;
            skip = 12;
        }
        if (val) {
            size_t n = strlen(val);
            if (len + n + 1 >= cap)
                NHID_FAIL(NHID_ERR_TOO_LARGE);
            memcpy(url + len, val, n);
            len += n;
            p += skip;
        } else {
            if (len + 2 >= cap)
                NHID_FAIL(NHID_ERR_TOO_LARGE);
            url[len++] = *p++;
        }
    }
    url[len] = '\0';
    if (strstr(url, "connect_timeout=") == NULL)
        snprintf(url + len, cap - len, "%cconnect_timeout=%d", strchr(url, '?') ? '&' : '?',
                 NHID_DB_CONNECT_TIMEOUT_S);
    *out = url;
    url = NULL;
out:
    if (rc < 0 && err)
        snprintf(err, errlen, "connection_url is too long");
    nhid_wipe(user, sizeof(user));
    nhid_wipe(pass, sizeof(pass));
    nhid_free_secret_str(url);
    return rc;
}

/* A connection for config `name` (cfg loaded): an idle pooled one or a new one. */
static int conn_get(const char *name, const json_t *cfg, PGconn **out, char *err, size_t errlen)
{
    int64_t gen = nhid_json_int(cfg, "gen");
    pthread_mutex_lock(&g_db.lock);
    struct pool *p = pool_find(name, true);
    if (p && p->gen != gen) {
        pool_drain_locked(p);
        p->gen = gen;
    }
    PGconn *c = NULL;
    if (p && p->n_idle)
        c = p->idle[--p->n_idle];
    pthread_mutex_unlock(&g_db.lock);
    if (c && PQstatus(c) == CONNECTION_OK) {
        *out = c;
        return NHID_OK;
    }
    PQfinish(c);
    char *ci = NULL;
    int rc = conninfo(cfg, &ci, err, errlen);
    if (rc < 0)
        return rc;
    c = PQconnectdb(ci);
    nhid_free_secret_str(ci);
    if (c == NULL)
        return NHID_ERR_NOMEM;
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to database \"%s\": %s", name, PQerrorMessage(c));
        err[strcspn(err, "\n")] = '\0';
        scrub(err, errlen, nhid_json_str(cfg, "password"));
        PQfinish(c);
        return NHID_ERR_UPSTREAM;
    }
    *out = c;
    return NHID_OK;
}

/* Return a connection to the pool (or close it if broken, mid-transaction or the pool is full). */
static void conn_put(const char *name, const json_t *cfg, PGconn *c)
{
    if (c == NULL)
        return;
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
        PQfinish(c);
        return;
    }
    pthread_mutex_lock(&g_db.lock);
    struct pool *p = pool_find(name, true);
    if (p && p->gen == nhid_json_int(cfg, "gen") && p->n_idle < NHID_DB_POOL_IDLE_MAX) {
        p->idle[p->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&g_db.lock);
    PQfinish(c);
}

/*
 * Run one SQL text (may hold several statements). NHID_ERR_INVALID for an
 * error PostgreSQL reported about the SQL (message in err),
 * NHID_ERR_UPSTREAM when the connection failed.
 */
static int exec_sql(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = NHID_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY) : NULL;
        const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
        if (prim)
            snprintf(err, errlen, "%s: %s%s%s", sev ? sev : "ERROR", prim,
                     pos ? " at character " : "", pos ? pos : "");
        else
            snprintf(err, errlen, "%s", PQerrorMessage(c));
        err[strcspn(err, "\n")] = '\0';
        rc = PQstatus(c) == CONNECTION_OK && prim ? NHID_ERR_INVALID : NHID_ERR_UPSTREAM;
    }
    PQclear(r);
    return rc;
}

/*
 * Run the statement lists (each a JSON array of templates) in one
 * transaction, committed (commit=true) or rolled back. On failure err
 * names the statement list and carries PostgreSQL's message.
 */
struct stmt_list {
    const char *what;        /* "creation_statements" */
    const json_t *stmts;     /* array of strings, or NULL for defaults */
    const char *const *defaults;
    size_t n_defaults;
};

static int run_lists(PGconn *c, const struct stmt_list *lists, size_t n,
                     const struct nhid_db_vars *v, bool commit, char *err, size_t errlen)
{
    char e[ERR_LEN] = "";
    int rc = exec_sql(c, "BEGIN", e, sizeof(e));
    for (size_t l = 0; rc == NHID_OK && l < n; l++) {
        size_t cnt = lists[l].stmts ? json_array_size(lists[l].stmts) : lists[l].n_defaults;
        for (size_t i = 0; rc == NHID_OK && i < cnt; i++) {
            const char *t = lists[l].stmts ? json_string_value(json_array_get(lists[l].stmts, i))
                                           : lists[l].defaults[i];
            char *sql = NULL;
            rc = nhid_database_render(t ? t : "", v, &sql, e, sizeof(e));
            if (rc == NHID_OK) {
                rc = exec_sql(c, sql, e, sizeof(e));
                nhid_free_secret_str(sql);
            }
            if (rc < 0) {
                scrub(e, sizeof(e), v->password);
                snprintf(err, errlen, "%s[%zu]: %s", lists[l].what, i, e);
            }
        }
    }
    if (rc == NHID_OK && commit) {
        rc = exec_sql(c, "COMMIT", e, sizeof(e));
        if (rc < 0)
            snprintf(err, errlen, "COMMIT: %s", e);
    } else if (PQstatus(c) == CONNECTION_OK) {
        char ignore[64];
        (void)exec_sql(c, "ROLLBACK", ignore, sizeof(ignore));
    }
    if (rc < 0 && err[0] == '\0')
        snprintf(err, errlen, "%s", e);
    return rc;
}

/*
 * The same as run_lists(..., commit=true) in one round trip: the rendered
 * statements are sent as one simple-query text "BEGIN; ...; COMMIT;"
 * (PostgreSQL stops at the first error and the transaction is rolled
 * back). Used on the hot paths (issue, revoke, renew); role writes use
 * run_lists() to name the failing statement.
 */
static int run_lists_joined(PGconn *c, const struct stmt_list *lists, size_t n,
                            const struct nhid_db_vars *v, char *err, size_t errlen)
{
    int rc = NHID_OK;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    char e[ERR_LEN] = "";
    if (buf == NULL)
        return NHID_ERR_NOMEM;
    len = (size_t)snprintf(buf, cap, "BEGIN;\n");
    for (size_t l = 0; rc == NHID_OK && l < n; l++) {
        size_t cnt = lists[l].stmts ? json_array_size(lists[l].stmts) : lists[l].n_defaults;
        for (size_t i = 0; rc == NHID_OK && i < cnt; i++) {
            const char *t = lists[l].stmts ? json_string_value(json_array_get(lists[l].stmts, i))
                                           : lists[l].defaults[i];
            char *sql = NULL;
            rc = nhid_database_render(t ? t : "", v, &sql, e, sizeof(e));
            if (rc < 0) {
                snprintf(err, errlen, "%s[%zu]: %s", lists[l].what, i, e);
                break;
            }
            size_t sl = strlen(sql);
            if (len + sl + 16 > cap) {
                size_t ncap = (len + sl + 16) * 2;
                char *nb = malloc(ncap);
                if (nb == NULL) {
                    nhid_free_secret_str(sql);
                    rc = NHID_ERR_NOMEM;
                    break;
                }
                memcpy(nb, buf, len);
                nhid_free_secret(buf, cap);
                buf = nb;
                cap = ncap;
            }
            memcpy(buf + len, sql, sl);
            len += sl;
            memcpy(buf + len, ";\n", 3);
            len += 2;
            nhid_free_secret_str(sql);
        }
    }
    if (rc == NHID_OK) {
        memcpy(buf + len, "COMMIT;", 8);
        rc = exec_sql(c, buf, e, sizeof(e));
        if (rc < 0) {
            scrub(e, sizeof(e), v->password);
            snprintf(err, errlen, "%s", e);
            if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
                char ignore[64];
                (void)exec_sql(c, "ROLLBACK", ignore, sizeof(ignore));
            }
        }
    }
    nhid_free_secret(buf, cap);
    return rc;
}

/* ---- storage -------------------------------------------------------------------- */

static void key_of(char *out, size_t len, const char *kind, const char *name)
{
    snprintf(out, len, "database/%s/%s", kind, name);
}

static void key_due(char *out, size_t len, int64_t due, const char *name)
{
    snprintf(out, len, "database/static-due/%020" PRId64 "/%s", due < 0 ? 0 : due, name);
}

static int load(struct nhid_core *core, struct nhid_txn *txn, const char *kind, const char *name,
                json_t **out)
{
    char key[KEY_LEN];
    if (!name_ok(name))
        return NHID_ERR_NOT_FOUND;
    key_of(key, sizeof(key), kind, name);
    if (txn)
        return nhid_core_load_json(core, txn, key, out);
    struct nhid_txn *t = NULL;
    int rc = nhid_store_read_begin(core->store, &t);
    if (rc < 0)
        return rc;
    rc = nhid_core_load_json(core, t, key, out);
    nhid_store_read_end(t);
    return rc;
}

/* A batch of puts (val != NULL) and deletes, applied in one durable transaction. */
struct op {
    char key[KEY_LEN];
    const json_t *val;
    bool empty; /* put an empty (index) value */
};

struct ops {
    struct op o[6];
    size_t n;
};

static void op_put(struct ops *s, const char *key, const json_t *val)
{
    snprintf(s->o[s->n].key, KEY_LEN, "%s", key);
    s->o[s->n].val = val;
    s->o[s->n++].empty = false;
}

static void op_index(struct ops *s, const char *key)
{
    snprintf(s->o[s->n].key, KEY_LEN, "%s", key);
    s->o[s->n].val = NULL;
    s->o[s->n++].empty = true;
}

static void op_del(struct ops *s, const char *key)
{
    snprintf(s->o[s->n].key, KEY_LEN, "%s", key);
    s->o[s->n].val = NULL;
    s->o[s->n++].empty = false;
}

static int ops_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct ops *s = arg;
    int rc = NHID_OK;
    for (size_t i = 0; i < s->n && rc == NHID_OK; i++) {
        if (s->o[i].val)
            rc = nhid_core_save_json(core, txn, s->o[i].key, s->o[i].val);
        else if (s->o[i].empty)
            rc = nhid_txn_put(txn, s->o[i].key, (const uint8_t *)"", 0);
        else
            rc = nhid_txn_delete(txn, s->o[i].key);
    }
    return rc;
}

static int ops_apply(struct nhid_core *core, struct ops *s)
{
    return nhid_core_write(core, ops_txn, s);
}

/* A statements field: a string (one statement list entry) or an array of strings. */
static int body_statements(struct nhid_request *req, struct nhid_response *resp,
                           const char *field, json_t **out)
{
    json_t *v = json_object_get(req->body, field);
    json_t *arr = json_array();
    if (arr == NULL)
        return NHID_ERR_NOMEM;
    if (v == NULL || json_is_null(v)) {
        *out = arr;
        return NHID_OK;
    }
    if (json_is_string(v)) {
        if (json_string_length(v))
            json_array_append(arr, v);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s)) {
                json_decref(arr);
                return nhid_resp_error(resp, 400, "field \"%s\": expected a string or a list of "
                                                  "strings", field);
            }
            if (json_string_length(s))
                json_array_append(arr, s);
        }
    } else {
        json_decref(arr);
        return nhid_resp_error(resp, 400, "field \"%s\": expected a string or a list of strings",
                               field);
    }
    if (json_array_size(arr) > NHID_DB_STATEMENTS_MAX) {
        json_decref(arr);
        return nhid_resp_error(resp, 400, "field \"%s\": more than %d statements", field,
                               NHID_DB_STATEMENTS_MAX);
    }
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s) if (json_string_length(s) > NHID_DB_STATEMENT_MAX)
    {
        json_decref(arr);
        return nhid_resp_error(resp, 400, "field \"%s\": statement %zu is longer than %d bytes",
                               field, i, NHID_DB_STATEMENT_MAX);
    }
    *out = arr;
    return NHID_OK;
}

static const char *param_name(struct nhid_request *req, struct nhid_response *resp,
                              const char *what)
{
    const char *name = nhid_req_param(req, "name");
    if (!name_ok(name)) {
        nhid_resp_error(resp, 400,
                        "%s name \"%.80s\": use 1-%d letters, digits, '_', '-', '.' (not starting "
                        "with '.' or '-')",
                        what, name ? name : "", NHID_DB_NAME_MAX);
        return NULL;
    }
    return name;
}

struct list_ctx {
    json_t *keys;
    size_t plen;
};

static int list_key(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct list_ctx *c = arg;
    json_array_append_new(c->keys, json_string(key + c->plen));
    return 0;
}

static int list_kind(struct nhid_request *req, struct nhid_response *resp, const char *kind)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "database/%s/", kind);
    struct list_ctx c = {json_array(), strlen(prefix)};
    if (c.keys == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_txn_scan_prefix(req->txn, prefix, NULL, 10000, true, list_key, &c);
    if (rc < 0 || json_array_size(c.keys) == 0) {
        json_decref(c.keys);
        return rc < 0 ? nhid_resp_fail(resp, rc, NULL)
                      : nhid_resp_error(resp, 404, "nothing under database/%s", kind);
    }
    resp->data = json_pack("{s:o}", "keys", c.keys);
    return NHID_OK;
}

static bool role_allowed(const json_t *cfg, const char *role)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(cfg, "allowed_roles"), i, v)
    {
        const char *s = json_string_value(v);
        if (s && (!strcmp(s, "*") || !strcmp(s, role)))
            return true;
    }
    return false;
}

/* ---- config --------------------------------------------------------------------- */

/* Hide an inline password in a connection URL ("postgresql://u:secret@h" → "u:*****@h"). */
static json_t *redacted_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at == NULL || colon == NULL || colon > at || !strncmp(colon + 1, "{{password}}", 12))
        return json_string(url);
    char buf[URL_MAX + 16];
    snprintf(buf, sizeof(buf), "%.*s:*****%s", (int)(colon - url), url, at);
    return json_string(buf);
}

static int h_config_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "config");
    if (name == NULL)
        return NHID_ERR_INVALID;
    json_t *cfg = NULL;
    int rc = load(req->core, req->txn, "config", name, &cfg);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no database config named \"%s\"", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    /* Never the password (as Vault). */
    resp->data = json_pack(
        "{s:s, s:{s:o, s:s, s:s}, s:O, s:O, s:b, s:s, s:s}", "plugin_name",
        nhid_json_str(cfg, "plugin_name"), "connection_details", "connection_url",
        redacted_url(nhid_json_str(cfg, "connection_url")), "username", nhid_json_str(cfg, "username"),
        "password_authentication", "scram-sha-256", "allowed_roles",
        json_object_get(cfg, "allowed_roles"), "root_credentials_rotate_statements",
        json_object_get(cfg, "root_rotation_statements"), "verify_connection",
        json_is_true(json_object_get(cfg, "verify_connection")), "password_policy", "",
        "plugin_version", "");
    json_decref(cfg);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int h_config_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const allowed[] = {
        "plugin_name", "connection_url", "username", "password", "allowed_roles",
        "verify_connection", "root_rotation_statements", "max_open_connections",
        "max_idle_connections", "max_connection_lifetime", "password_authentication",
        "username_template", "plugin_version", "password_policy", NULL};
    int rc = NHID_OK;
    json_t *cfg = NULL, *old = NULL, *roles = NULL, *rot = NULL;
    PGconn *c = NULL;
    char err[ERR_LEN] = "";
    const char *name = param_name(req, resp, "config");
    if (name == NULL)
        return NHID_ERR_INVALID;
    NHID_TRY(nhid_body_only(req, resp, allowed));
    rc = load(req->core, NULL, "config", name, &old);
    if (rc == NHID_ERR_NOT_FOUND)
        rc = NHID_OK;
    NHID_TRY(rc);
    const char *plugin, *url, *user, *pass;
    bool verify;
    NHID_TRY(nhid_body_string(req, resp, "plugin_name",
                              old ? nhid_json_str(old, "plugin_name") : "postgresql-database-plugin",
                              &plugin));
    NHID_TRY(nhid_body_string(req, resp, "connection_url", old ? nhid_json_str(old, "connection_url") : NULL,
                              &url));
    NHID_TRY(nhid_body_string(req, resp, "username", old ? nhid_json_str(old, "username") : "", &user));
    NHID_TRY(nhid_body_string(req, resp, "password", old ? nhid_json_str(old, "password") : "", &pass));
    NHID_TRY(nhid_body_bool(req, resp, "verify_connection", true, &verify));
    if (strcmp(plugin, "postgresql-database-plugin") != 0 && strcmp(plugin, "postgresql") != 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"plugin_name\": \"%.64s\" is not supported "
                                             "(use \"postgresql-database-plugin\")", plugin));
    if (url == NULL || *url == '\0')
        NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"connection_url\" (e.g. "
                                             "postgresql://{{username}}:{{password}}@127.0.0.1:"
                                             "5432/postgres?sslmode=disable)"));
    if (strlen(url) > URL_MAX)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"connection_url\": longer than %d bytes",
                                  URL_MAX));
    if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"connection_url\": expected a URL starting "
                                             "with postgresql://"));
    if (*user && !username_ok(user))
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"username\": use 1-%d letters, digits, '_', "
                                             "'-', '.', '@'", NHID_DB_USERNAME_MAX));
    if (strlen(pass) > 256)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"password\": longer than 256 bytes"));
    if (json_object_get(req->body, "allowed_roles"))
        NHID_TRY(nhid_body_string_list(req, resp, "allowed_roles", &roles));
    else
        roles = old ? json_incref(json_object_get(old, "allowed_roles")) : json_array();
    if (roles == NULL)
        roles = json_array();
    if (json_object_get(req->body, "root_rotation_statements"))
        NHID_TRY(body_statements(req, resp, "root_rotation_statements", &rot));
    else
        rot = old ? json_incref(json_object_get(old, "root_rotation_statements")) : json_array();
    if (rot == NULL)
        rot = json_array();
    cfg = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:b, s:I}", "plugin_name",
                    "postgresql-database-plugin", "connection_url", url, "username", user,
                    "password", pass, "allowed_roles", roles, "root_rotation_statements", rot,
                    "verify_connection", verify, "gen",
                    (json_int_t)(old ? nhid_json_int(old, "gen") + 1 : 1));
    NHID_CHECK_ALLOC(cfg);
    if (verify) {
        rc = conn_get(name, cfg, &c, err, sizeof(err));
        if (rc < 0)
            NHID_FAIL(nhid_resp_error(resp, 502, "verifying the connection failed: %s (fix the "
                                                 "connection or set verify_connection=false)",
                                      err));
        rc = exec_sql(c, "SELECT 1", err, sizeof(err));
        if (rc < 0)
            NHID_FAIL(nhid_resp_error(resp, 502, "verifying the connection failed: %s", err));
    }
    struct ops s = {.n = 0};
    char key[KEY_LEN];
    key_of(key, sizeof(key), "config", name);
    op_put(&s, key, cfg);
    NHID_TRY(ops_apply(req->core, &s));
    pool_drain(name);
out:
    conn_put(name ? name : "", cfg, c);
    if (old)
        json_object_del(old, "password");
    if (cfg)
        json_object_del(cfg, "password");
    json_decref(old);
    json_decref(cfg);
    json_decref(roles);
    json_decref(rot);
    return rc;
}

static int h_config_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "config");
    if (name == NULL)
        return NHID_ERR_INVALID;
    char key[KEY_LEN];
    key_of(key, sizeof(key), "config", name);
    int rc = nhid_txn_delete(req->txn, key);
    pool_drain(name);
    return rc;
}

static int h_config_list(struct nhid_request *req, struct nhid_response *resp)
{
    return list_kind(req, resp, "config");
}

/* Change the root password nhid uses: nobody (no person) knows the new one. */
static int h_rotate_root(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    json_t *cfg = NULL;
    PGconn *c = NULL;
    char err[ERR_LEN] = "", pw[NHID_DB_PASSWORD_LEN + 1] = "";
    char key[KEY_LEN];
    const char *name = param_name(req, resp, "config");
    if (name == NULL)
        return NHID_ERR_INVALID;
    rc = load(req->core, NULL, "config", name, &cfg);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 404, "no database config named \"%s\"", name));
    NHID_TRY(rc);
    if (!username_ok(nhid_json_str(cfg, "username")))
        NHID_FAIL(nhid_resp_error(resp, 400, "config \"%s\" has no root username to rotate",
                                  name));
    NHID_TRY(nhid_database_password(pw));
    rc = conn_get(name, cfg, &c, err, sizeof(err));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, 502, "%s", err));
    /* The new password is stored (as pending) before PostgreSQL has it, so it is never lost. */
    json_object_set_new(cfg, "pending_password", json_string(pw));
    key_of(key, sizeof(key), "config", name);
    struct ops s = {.n = 0};
    op_put(&s, key, cfg);
    NHID_TRY(ops_apply(req->core, &s));
    const json_t *stmts = json_object_get(cfg, "root_rotation_statements");
    static const char *const def[] = {default_rotation};
    struct stmt_list l = {"root_rotation_statements",
                          json_array_size(stmts) ? stmts : NULL, def, 1};
    struct nhid_db_vars v = {nhid_json_str(cfg, "username"), pw, NULL};
    rc = run_lists(c, &l, 1, &v, true, err, sizeof(err));
    if (rc < 0) {
        json_object_del(cfg, "pending_password");
        s.n = 0;
        op_put(&s, key, cfg);
        (void)ops_apply(req->core, &s);
        NHID_FAIL(nhid_resp_error(resp, 502, "rotating the root password failed: %s", err));
    }
    json_object_del(cfg, "pending_password");
    json_object_set_new(cfg, "password", json_string(pw));
    json_object_set_new(cfg, "gen", json_integer(nhid_json_int(cfg, "gen") + 1));
    json_object_set_new(cfg, "root_rotated", json_integer(nhid_now()));
    s.n = 0;
    op_put(&s, key, cfg);
    NHID_TRY(ops_apply(req->core, &s));
    pool_drain(name);
    nhid_info(MOD, "rotated the root credentials of database config %s", name);
out:
    if (c)
        PQfinish(c); /* authenticated with the old password: do not pool */
    nhid_wipe(pw, sizeof(pw));
    if (cfg) {
        json_object_del(cfg, "password");
        json_object_del(cfg, "pending_password");
    }
    json_decref(cfg);
    return rc;
}

/* ---- roles ---------------------------------------------------------------------- */

static int h_role_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    json_t *r = NULL;
    int rc = load(req->core, req->txn, "role", name, &r);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no database role named \"%s\"", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    resp->data = json_pack("{s:s, s:O, s:O, s:O, s:O, s:I, s:I, s:s}", "db_name",
                           nhid_json_str(r, "db_name"), "creation_statements",
                           json_object_get(r, "creation_statements"), "revocation_statements",
                           json_object_get(r, "revocation_statements"), "renew_statements",
                           json_object_get(r, "renew_statements"), "rollback_statements",
                           json_object_get(r, "rollback_statements"), "default_ttl",
                           (json_int_t)nhid_json_int(r, "default_ttl"), "max_ttl",
                           (json_int_t)nhid_json_int(r, "max_ttl"), "credential_type", "password");
    json_decref(r);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int h_role_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const allowed[] = {
        "db_name", "creation_statements", "revocation_statements", "renew_statements",
        "rollback_statements", "default_ttl", "max_ttl", "credential_type", NULL};
    int rc = NHID_OK;
    json_t *cfg = NULL, *role = NULL, *cs = NULL, *rs = NULL, *ns = NULL, *bs = NULL;
    PGconn *c = NULL;
    char err[ERR_LEN] = "";
    const char *name = param_name(req, resp, "role");
    const char *db = NULL, *ctype = NULL;
    int64_t ttl = 0, max_ttl = 0;
    if (name == NULL)
        return NHID_ERR_INVALID;
    NHID_TRY(nhid_body_only(req, resp, allowed));
    NHID_TRY(nhid_body_string(req, resp, "db_name", NULL, &db));
    NHID_TRY(nhid_body_string(req, resp, "credential_type", "password", &ctype));
    NHID_TRY(nhid_body_duration(req, resp, "default_ttl", 0, &ttl));
    NHID_TRY(nhid_body_duration(req, resp, "max_ttl", 0, &max_ttl));
    NHID_TRY(body_statements(req, resp, "creation_statements", &cs));
    NHID_TRY(body_statements(req, resp, "revocation_statements", &rs));
    NHID_TRY(body_statements(req, resp, "renew_statements", &ns));
    NHID_TRY(body_statements(req, resp, "rollback_statements", &bs));
    if (strcmp(ctype, "password") != 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"credential_type\": only \"password\" is "
                                             "supported"));
    if (db == NULL || *db == '\0')
        NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"db_name\" (a database/config "
                                             "name)"));
    if (json_array_size(cs) == 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"creation_statements\" (e.g. "
                                             "CREATE ROLE \\\"{{name}}\\\" WITH LOGIN PASSWORD "
                                             "'{{password}}' VALID UNTIL '{{expiration}}';)"));
    if (ttl < 0 || max_ttl < 0 || ttl > SYSTEM_MAX_TTL || max_ttl > SYSTEM_MAX_TTL)
        NHID_FAIL(nhid_resp_error(resp, 400, "fields \"default_ttl\"/\"max_ttl\": must be "
                                             "between 0 and 768h"));
    if (ttl && max_ttl && ttl > max_ttl)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"default_ttl\" (%" PRId64 "s) exceeds "
                                             "\"max_ttl\" (%" PRId64 "s)", ttl, max_ttl));
    rc = load(req->core, NULL, "config", db, &cfg);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"db_name\": no database config named "
                                             "\"%.64s\"", db));
    NHID_TRY(rc);
    /* Check every template before touching the database. */
    {
        char name_t[NHID_DB_USERNAME_MAX + 1], pw[NHID_DB_PASSWORD_LEN + 1], exp[32];
        NHID_TRY(nhid_database_username(name, name_t));
        NHID_TRY(nhid_database_password(pw));
        nhid_database_expiration(nhid_now() + 3600, exp);
        struct nhid_db_vars v = {name_t, pw, exp};
        const json_t *lists[4] = {cs, rs, ns, bs};
        const char *what[4] = {"creation_statements", "revocation_statements",
                               "renew_statements", "rollback_statements"};
        for (int l = 0; l < 4; l++) {
            size_t i;
            json_t *s;
            json_array_foreach(lists[l], i, s)
            {
                char *out = NULL;
                char e[256];
                rc = nhid_database_render(json_string_value(s), &v, &out, e, sizeof(e));
                nhid_free_secret_str(out);
                if (rc < 0) {
                    nhid_wipe(pw, sizeof(pw));
                    NHID_FAIL(nhid_resp_error(resp, 400, "field \"%s\"[%zu]: %s", what[l], i, e));
                }
            }
        }
        /*
         * Validate the SQL in PostgreSQL: creation then revocation with test
         * values inside a transaction that is rolled back, so syntax and
         * semantic errors come back with PostgreSQL's message.
         */
        if (json_is_true(json_object_get(cfg, "verify_connection"))) {
            rc = conn_get(db, cfg, &c, err, sizeof(err));
            if (rc < 0) {
                nhid_wipe(pw, sizeof(pw));
                NHID_FAIL(nhid_resp_error(resp, 502, "%s", err));
            }
            struct stmt_list l[3] = {
                {"creation_statements", cs, NULL, 0},
                {"renew_statements", json_array_size(ns) ? ns : NULL,
                 (const char *const[]){default_renew}, 1},
                {"revocation_statements", json_array_size(rs) ? rs : NULL, default_revocation,
                 NHID_ARRAY_LEN(default_revocation)},
            };
            rc = run_lists(c, l, 3, &v, false, err, sizeof(err));
            nhid_wipe(pw, sizeof(pw));
            if (rc == NHID_ERR_INVALID)
                NHID_FAIL(nhid_resp_error(resp, 400, "PostgreSQL rejected the role's SQL: %s",
                                          err));
            if (rc < 0)
                NHID_FAIL(nhid_resp_error(resp, 502, "validating the role's SQL failed: %s",
                                          err));
        }
        nhid_wipe(pw, sizeof(pw));
    }
    role = json_pack("{s:s, s:O, s:O, s:O, s:O, s:I, s:I}", "db_name", db, "creation_statements",
                     cs, "revocation_statements", rs, "renew_statements", ns,
                     "rollback_statements", bs, "default_ttl", (json_int_t)ttl, "max_ttl",
                     (json_int_t)max_ttl);
    NHID_CHECK_ALLOC(role);
    struct ops s = {.n = 0};
    char key[KEY_LEN];
    key_of(key, sizeof(key), "role", name);
    op_put(&s, key, role);
    NHID_TRY(ops_apply(req->core, &s));
out:
    conn_put(db ? db : "", cfg, c);
    if (cfg)
        json_object_del(cfg, "password");
    json_decref(cfg);
    json_decref(role);
    json_decref(cs);
    json_decref(rs);
    json_decref(ns);
    json_decref(bs);
    return rc;
}

static int h_role_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    char key[KEY_LEN];
    key_of(key, sizeof(key), "role", name);
    return nhid_txn_delete(req->txn, key);
}

static int h_role_list(struct nhid_request *req, struct nhid_response *resp)
{
    return list_kind(req, resp, "role");
}

/* ---- dynamic credentials ------------------------------------------------------------ */

struct lease_write {
    struct nhid_lease_params p;
};

static int lease_write_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct lease_write *w = arg;
    return nhid_lease_create(core, txn, &w->p, NULL);
}

/* Revocation of one dynamic login (lease hook and issue rollback). */
static int drop_login(struct nhid_core *core, const char *db, const char *role,
                      const char *username, char *err, size_t errlen)
{
    int rc = NHID_OK;
    json_t *cfg = NULL, *r = NULL;
    PGconn *c = NULL;
    rc = load(core, NULL, "config", db, &cfg);
    if (rc == NHID_ERR_NOT_FOUND) {
        snprintf(err, errlen, "database config \"%s\" no longer exists", db);
        NHID_FAIL(NHID_ERR_UNAVAILABLE);
    }
    NHID_TRY(rc);
    rc = load(core, NULL, "role", role, &r);
    if (rc == NHID_ERR_NOT_FOUND)
        rc = NHID_OK; /* role deleted: the default revocation */
    NHID_TRY(rc);
    NHID_TRY(conn_get(db, cfg, &c, err, errlen));
    const json_t *rs = r ? json_object_get(r, "revocation_statements") : NULL;
    struct stmt_list l = {"revocation_statements", json_array_size(rs) ? rs : NULL,
                          default_revocation, NHID_ARRAY_LEN(default_revocation)};
    struct nhid_db_vars v = {username, NULL, NULL};
    rc = run_lists_joined(c, &l, 1, &v, err, errlen);
    if (rc == NHID_ERR_INVALID) {
        /* Already gone (revoked by hand, or a retry after a lost answer) is success. */
        const char *params[1] = {username};
        PGresult *res = PQexecParams(c, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, NULL,
                                     params, NULL, NULL, 0);
        bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
        bool exists = ok && PQntuples(res) > 0;
        PQclear(res);
        rc = ok && !exists ? NHID_OK : NHID_ERR_UPSTREAM;
    }
    NHID_TRY(rc);
out:
    conn_put(db, cfg, c);
    if (cfg)
        json_object_del(cfg, "password");
    json_decref(cfg);
    json_decref(r);
    return rc;
}

static int lease_revoke(struct nhid_core *core, const json_t *lease, char *err, size_t errlen)
{
    const json_t *d = json_object_get(lease, "data");
    const char *user = nhid_json_str(d, "username");
    if (!username_ok(user))
        return NHID_OK; /* nothing we could have created */
    return drop_login(core, nhid_json_str(d, "db_name"), nhid_json_str(d, "role"), user, err, errlen);
}

static int lease_renew(struct nhid_core *core, const json_t *lease, int64_t new_expire, char *err,
                       size_t errlen)
{
    int rc = NHID_OK;
    const json_t *d = json_object_get(lease, "data");
    json_t *cfg = NULL, *r = NULL;
    PGconn *c = NULL;
    const char *db = nhid_json_str(d, "db_name");
    rc = load(core, NULL, "config", db, &cfg);
    if (rc == NHID_ERR_NOT_FOUND) {
        snprintf(err, errlen, "database config \"%s\" no longer exists", db);
        NHID_FAIL(NHID_ERR_UNAVAILABLE);
    }
    NHID_TRY(rc);
    rc = load(core, NULL, "role", nhid_json_str(d, "role"), &r);
    if (rc == NHID_ERR_NOT_FOUND)
        rc = NHID_OK;
    NHID_TRY(rc);
    NHID_TRY(conn_get(db, cfg, &c, err, errlen));
    char exp[32];
    nhid_database_expiration(new_expire, exp);
    const json_t *ns = r ? json_object_get(r, "renew_statements") : NULL;
    static const char *const def[] = {default_renew};
    struct stmt_list l = {"renew_statements", json_array_size(ns) ? ns : NULL, def, 1};
    struct nhid_db_vars v = {nhid_json_str(d, "username"), NULL, exp};
    rc = run_lists_joined(c, &l, 1, &v, err, errlen);
    if (rc == NHID_ERR_INVALID)
        rc = NHID_ERR_UPSTREAM;
out:
    conn_put(db, cfg, c);
    if (cfg)
        json_object_del(cfg, "password");
    json_decref(cfg);
    json_decref(r);
    return rc;
}

static const struct nhid_lease_type creds_lease_type = {
    .prefix = "database/creds/",
    .revoke = lease_revoke,
    .renew = lease_renew,
};

static int h_creds(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    json_t *cfg = NULL, *role = NULL, *data = NULL;
    PGconn *c = NULL;
    char err[ERR_LEN] = "", user[NHID_DB_USERNAME_MAX + 1], pw[NHID_DB_PASSWORD_LEN + 1] = "";
    char exp[32], lease_id[NHID_LEASE_ID_MAX], prefix[NHID_LEASE_ID_MAX];
    bool created = false;
    const char *db = "";
    const char *name = param_name(req, resp, "role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    rc = load(req->core, NULL, "role", name, &role);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "unknown role: %s", name));
    NHID_TRY(rc);
    db = nhid_json_str(role, "db_name");
    rc = load(req->core, NULL, "config", db, &cfg);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "role %s: database config \"%s\" does not exist",
                                  name, db));
    NHID_TRY(rc);
    if (!role_allowed(cfg, name))
        NHID_FAIL(nhid_resp_error(resp, 400, "role %s is not allowed by database config \"%s\" "
                                             "(add it to allowed_roles)", name, db));
    int64_t ttl = nhid_json_int(role, "default_ttl") ? nhid_json_int(role, "default_ttl") : DEFAULT_TTL;
    int64_t max_ttl = nhid_json_int(role, "max_ttl") ? nhid_json_int(role, "max_ttl") : DEFAULT_MAX_TTL;
    if (ttl > max_ttl)
        ttl = max_ttl;
    int64_t now = nhid_now();
    NHID_TRY(nhid_database_username(name, user));
    NHID_TRY(nhid_database_password(pw));
    nhid_database_expiration(now + ttl, exp);
    snprintf(prefix, sizeof(prefix), "database/creds/%s/", name);
    NHID_TRY(nhid_lease_id_new(prefix, lease_id));

    /* 1. The login, in PostgreSQL, before anything is stored: a failure leaves nothing. */
    rc = conn_get(db, cfg, &c, err, sizeof(err));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, 502, "%s; no credential was issued", err));
    struct stmt_list l = {"creation_statements", json_object_get(role, "creation_statements"),
                          NULL, 0};
    struct nhid_db_vars v = {user, pw, exp};
    rc = run_lists_joined(c, &l, 1, &v, err, sizeof(err));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, 502, "database \"%s\": creating the login failed: %s; "
                                             "no credential was issued", db, err));
    conn_put(db, cfg, c);
    c = NULL;
    created = true;

    /* 2. The lease, durably; if that fails the login is dropped again. */
    data = json_pack("{s:s, s:s, s:s}", "db_name", db, "role", name, "username", user);
    NHID_CHECK_ALLOC(data);
    struct lease_write w = {{.id = lease_id,
                             .engine = "database",
                             .ttl = ttl,
                             .max_ttl = max_ttl,
                             .renewable = true,
                             .data = data,
                             .entity_id = req->auth.entity_id,
                             .identity = req->auth.identity,
                             .cred_type = CRED_TYPE}};
    rc = nhid_core_write(req->core, lease_write_txn, &w);
    if (rc < 0) {
        char e2[ERR_LEN] = "";
        nhid_error(MOD, "storing the lease for %s failed (%s): dropping the login", user,
                   nhid_strerror(rc));
        if (drop_login(req->core, db, name, user, e2, sizeof(e2)) < 0)
            nhid_error(MOD, "dropping login %s failed: %s", user, e2);
        NHID_FAIL(nhid_resp_error(resp, 500, "storing the lease failed: %s; no credential was "
                                             "issued", nhid_strerror(rc)));
    }
    created = false;
    resp->data = json_pack("{s:s, s:s}", "username", user, "password", pw);
    NHID_CHECK_ALLOC(resp->data);
    resp->lease_id = nhid_strdup(lease_id);
    NHID_CHECK_ALLOC(resp->lease_id);
    resp->lease_duration = ttl;
    resp->renewable = true;
out:
    (void)created;
    conn_put(db, cfg, c);
    nhid_wipe(pw, sizeof(pw));
    if (cfg)
        json_object_del(cfg, "password");
    json_decref(cfg);
    json_decref(role);
    json_decref(data);
    return rc;
}

/* ---- static roles ------------------------------------------------------------------- */

/*
 * Rotate static role `name`: a new password is stored as pending first,
 * then set in PostgreSQL, then made current with the next due time.
 * Runs outside any transaction (admin handler or scheduler).
 */
static int static_rotate(struct nhid_core *core, const char *name, char *err, size_t errlen)
{
    int rc = NHID_OK;
    json_t *sr = NULL, *cfg = NULL;
    PGconn *c = NULL;
    char pw[NHID_DB_PASSWORD_LEN + 1] = "", key[KEY_LEN], due[KEY_LEN];
    const char *db = "";
    struct ops s = {.n = 0};
    rc = load(core, NULL, "static-role", name, &sr);
    if (rc < 0) {
        snprintf(err, errlen, "static role %s: %s", name, nhid_strerror(rc));
        return rc;
    }
    db = nhid_json_str(sr, "db_name");
    key_of(key, sizeof(key), "static-role", name);
    key_due(due, sizeof(due), nhid_json_int(sr, "next_rotation"), name);
    rc = load(core, NULL, "config", db, &cfg);
    if (rc == NHID_ERR_NOT_FOUND)
        snprintf(err, errlen, "database config \"%s\" does not exist", db);
    if (rc == NHID_OK)
        rc = conn_get(db, cfg, &c, err, errlen);
    if (rc == NHID_OK)
        rc = nhid_database_password(pw);
    if (rc == NHID_OK) {
        json_object_set_new(sr, "pending_password", json_string(pw));
        op_put(&s, key, sr);
        rc = ops_apply(core, &s);
    }
    if (rc == NHID_OK) {
        const json_t *st = json_object_get(sr, "rotation_statements");
        static const char *const def[] = {default_rotation};
        struct stmt_list l = {"rotation_statements", json_array_size(st) ? st : NULL, def, 1};
        struct nhid_db_vars v = {nhid_json_str(sr, "username"), pw, NULL};
        rc = run_lists(c, &l, 1, &v, true, err, errlen);
        if (rc == NHID_ERR_INVALID)
            rc = NHID_ERR_UPSTREAM;
    }
    int64_t now = nhid_now();
    int64_t next = rc == NHID_OK ? now + nhid_json_int(sr, "rotation_period") : now + STATIC_RETRY_S;
    json_object_del(sr, "pending_password");
    if (rc == NHID_OK) {
        json_object_set_new(sr, "password", json_string(pw));
        json_object_set_new(sr, "last_vault_rotation", json_integer(now));
        json_object_del(sr, "last_error");
    } else {
        json_object_set_new(sr, "last_error", json_string(err));
    }
    json_object_set_new(sr, "next_rotation", json_integer(next));
    int rc2;
    s.n = 0;
    op_put(&s, key, sr);
    op_del(&s, due);
    key_due(due, sizeof(due), next, name);
    op_index(&s, due);
    rc2 = ops_apply(core, &s);
    if (rc == NHID_OK)
        rc = rc2;
    conn_put(db, cfg, c);
    nhid_wipe(pw, sizeof(pw));
    if (cfg)
        json_object_del(cfg, "password");
    if (sr)
        json_object_del(sr, "password");
    json_decref(cfg);
    json_decref(sr);
    return rc;
}

static int h_static_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "static role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    json_t *sr = NULL;
    int rc = load(req->core, req->txn, "static-role", name, &sr);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no static role named \"%s\"", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    char lr[NHID_RFC3339_LEN];
    nhid_time_format(nhid_json_int(sr, "last_vault_rotation"), lr);
    resp->data = json_pack("{s:s, s:s, s:I, s:O, s:s}", "db_name", nhid_json_str(sr, "db_name"),
                           "username", nhid_json_str(sr, "username"), "rotation_period",
                           (json_int_t)nhid_json_int(sr, "rotation_period"), "rotation_statements",
                           json_object_get(sr, "rotation_statements"), "last_vault_rotation", lr);
    if (resp->data && nhid_json_str(sr, "last_error")[0])
        json_object_set_new(resp->data, "last_error", json_string(nhid_json_str(sr, "last_error")));
    if (sr)
        json_object_del(sr, "password");
    json_decref(sr);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int h_static_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const allowed[] = {"db_name", "username", "rotation_period",
                                          "rotation_statements", "credential_type", NULL};
    int rc = NHID_OK;
    json_t *cfg = NULL, *sr = NULL, *old = NULL, *st = NULL;
    PGconn *c = NULL;
    char err[ERR_LEN] = "", key[KEY_LEN];
    const char *db = NULL, *user = NULL;
    int64_t period = 0;
    const char *name = param_name(req, resp, "static role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    NHID_TRY(nhid_body_only(req, resp, allowed));
    rc = load(req->core, NULL, "static-role", name, &old);
    if (rc == NHID_ERR_NOT_FOUND)
        rc = NHID_OK;
    NHID_TRY(rc);
    NHID_TRY(nhid_body_string(req, resp, "db_name", old ? nhid_json_str(old, "db_name") : NULL, &db));
    NHID_TRY(nhid_body_string(req, resp, "username", old ? nhid_json_str(old, "username") : NULL, &user));
    NHID_TRY(nhid_body_duration(req, resp, "rotation_period",
                                old ? nhid_json_int(old, "rotation_period") : 24 * 3600, &period));
    if (json_object_get(req->body, "rotation_statements"))
        NHID_TRY(body_statements(req, resp, "rotation_statements", &st));
    else
        st = old ? json_incref(json_object_get(old, "rotation_statements")) : json_array();
    if (st == NULL)
        st = json_array();
    if (db == NULL || *db == '\0')
        NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"db_name\""));
    if (user == NULL || !username_ok(user))
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"username\": an existing PostgreSQL user of "
                                             "1-%d letters, digits, '_', '-', '.', '@'",
                                  NHID_DB_USERNAME_MAX));
    if (old && strcmp(nhid_json_str(old, "username"), user) != 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"username\": cannot change the user of an "
                                             "existing static role (delete it first)"));
    if (period < STATIC_MIN_PERIOD || period > 365LL * 24 * 3600)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"rotation_period\": between %ds and 8760h",
                                  STATIC_MIN_PERIOD));
    rc = load(req->core, NULL, "config", db, &cfg);
    if (rc == NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"db_name\": no database config named "
                                             "\"%.64s\"", db));
    NHID_TRY(rc);
    if (!role_allowed(cfg, name))
        NHID_FAIL(nhid_resp_error(resp, 400, "static role %s is not allowed by database config "
                                             "\"%s\" (add it to allowed_roles)", name, db));
    {
        size_t i;
        json_t *s;
        struct nhid_db_vars v = {user, "x", NULL};
        json_array_foreach(st, i, s)
        {
            char *out = NULL, e[256];
            rc = nhid_database_render(json_string_value(s), &v, &out, e, sizeof(e));
            nhid_free_secret_str(out);
            if (rc < 0)
                NHID_FAIL(nhid_resp_error(resp, 400, "field \"rotation_statements\"[%zu]: %s", i,
                                          e));
        }
    }
    /* The user must exist: nhid manages it, it does not create it. */
    rc = conn_get(db, cfg, &c, err, sizeof(err));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, 502, "%s", err));
    const char *params[1] = {user};
    PGresult *res = PQexecParams(c, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, NULL, params,
                                 NULL, NULL, 0);
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    bool exists = ok && PQntuples(res) > 0;
    PQclear(res);
    if (!ok)
        NHID_FAIL(nhid_resp_error(resp, 502, "checking user %s: %s", user, PQerrorMessage(c)));
    if (!exists)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"username\": PostgreSQL has no user \"%s\"",
                                  user));
    conn_put(db, cfg, c);
    c = NULL;
    int64_t next = old ? nhid_json_int(old, "next_rotation") : 0;
    sr = json_pack("{s:s, s:s, s:I, s:O, s:I, s:I}", "db_name", db, "username", user,
                   "rotation_period", (json_int_t)period, "rotation_statements", st,
                   "next_rotation", (json_int_t)next, "last_vault_rotation",
                   (json_int_t)(old ? nhid_json_int(old, "last_vault_rotation") : 0));
    NHID_CHECK_ALLOC(sr);
    if (old && json_object_get(old, "password"))
        json_object_set(sr, "password", json_object_get(old, "password"));
    struct ops s = {.n = 0};
    key_of(key, sizeof(key), "static-role", name);
    op_put(&s, key, sr);
    NHID_TRY(ops_apply(req->core, &s));
    if (old == NULL || period != nhid_json_int(old, "rotation_period")) {
        /* New role (Vault rotates at creation) or a new period: rotate now. */
        rc = static_rotate(req->core, name, err, sizeof(err));
        if (rc < 0 && old == NULL) {
            s.n = 0;
            op_del(&s, key);
            char due[KEY_LEN];
            key_due(due, sizeof(due), nhid_now() + STATIC_RETRY_S, name);
            (void)due;
            (void)ops_apply(req->core, &s);
        }
        if (rc < 0)
            NHID_FAIL(nhid_resp_error(resp, 502, "rotating the password of %s failed: %s", user,
                                      err));
    }
out:
    conn_put(db ? db : "", cfg, c);
    if (cfg)
        json_object_del(cfg, "password");
    if (old)
        json_object_del(old, "password");
    if (sr)
        json_object_del(sr, "password");
    json_decref(cfg);
    json_decref(old);
    json_decref(sr);
    json_decref(st);
    return rc;
}

struct static_del {
    const char *name;
};

static int h_static_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "static role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    json_t *sr = NULL;
    int rc = load(req->core, req->txn, "static-role", name, &sr);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    char key[KEY_LEN];
    key_due(key, sizeof(key), nhid_json_int(sr, "next_rotation"), name);
    json_object_del(sr, "password");
    json_decref(sr);
    rc = nhid_txn_delete(req->txn, key);
    key_of(key, sizeof(key), "static-role", name);
    if (rc == NHID_OK)
        rc = nhid_txn_delete(req->txn, key);
    return rc;
}

static int h_static_list(struct nhid_request *req, struct nhid_response *resp)
{
    return list_kind(req, resp, "static-role");
}

static int h_static_creds(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "static role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    json_t *sr = NULL;
    int rc = load(req->core, req->txn, "static-role", name, &sr);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 400, "unknown static role: %s", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    if (json_object_get(sr, "password") == NULL) {
        json_decref(sr);
        return nhid_resp_error(resp, 503, "static role %s has not been rotated yet", name);
    }
    char lr[NHID_RFC3339_LEN];
    nhid_time_format(nhid_json_int(sr, "last_vault_rotation"), lr);
    int64_t ttl = nhid_json_int(sr, "next_rotation") - nhid_now();
    resp->data = json_pack("{s:s, s:O, s:s, s:I, s:I}", "username", nhid_json_str(sr, "username"),
                           "password", json_object_get(sr, "password"), "last_vault_rotation", lr,
                           "rotation_period", (json_int_t)nhid_json_int(sr, "rotation_period"), "ttl",
                           (json_int_t)(ttl > 0 ? ttl : 0));
    json_object_del(sr, "password");
    json_decref(sr);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int h_rotate_role(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = param_name(req, resp, "static role");
    if (name == NULL)
        return NHID_ERR_INVALID;
    char err[ERR_LEN] = "";
    json_t *sr = NULL;
    int rc = load(req->core, NULL, "static-role", name, &sr);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no static role named \"%s\"", name);
    if (sr)
        json_object_del(sr, "password");
    json_decref(sr);
    if (rc < 0)
        return rc;
    rc = static_rotate(req->core, name, err, sizeof(err));
    if (rc < 0)
        return nhid_resp_error(resp, 502, "rotating static role %s failed: %s", name, err);
    return NHID_OK;
}

struct due_list {
    char names[STATIC_BATCH][NHID_DB_NAME_MAX + 1];
    size_t n;
};

static int due_collect(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct due_list *d = arg;
    const char *slash = strrchr(key, '/');
    if (slash && d->n < STATIC_BATCH && name_ok(slash + 1))
        snprintf(d->names[d->n++], NHID_DB_NAME_MAX + 1, "%s", slash + 1);
    return d->n >= STATIC_BATCH;
}

/* Rotate static roles whose time has come (walks the due index from the start). */
static int static_job(struct nhid_core *core)
{
    struct due_list d = {.n = 0};
    struct nhid_txn *txn = NULL;
    char end[64];
    snprintf(end, sizeof(end), "database/static-due/%020" PRId64 "/", nhid_now() + 1);
    int rc = nhid_store_read_begin(core->store, &txn);
    if (rc < 0)
        return rc;
    rc = nhid_txn_scan(txn, "database/static-due/", end, STATIC_BATCH, true, due_collect, &d);
    nhid_store_read_end(txn);
    for (size_t i = 0; rc == NHID_OK && i < d.n; i++) {
        char err[ERR_LEN] = "";
        if (static_rotate(core, d.names[i], err, sizeof(err)) < 0)
            nhid_warn(MOD, "rotating static role %s failed (retrying in %ds): %s", d.names[i],
                      STATIC_RETRY_S, err);
    }
    return rc;
}

/* ---- engine --------------------------------------------------------------------- */

static int database_on_unseal(struct nhid_core *core)
{
    (void)core;
    int rc = nhid_lease_register_type(&creds_lease_type);
    if (rc == NHID_OK)
        rc = nhid_identity_cred_register_type(CRED_TYPE, nhid_lease_cred_revoke_hook);
    return rc;
}

static void database_on_seal(struct nhid_core *core)
{
    (void)core;
    pthread_mutex_lock(&g_db.lock);
    for (size_t i = 0; i < g_db.n; i++)
        pool_drain_locked(&g_db.pools[i]);
    pthread_mutex_unlock(&g_db.lock);
}

static const struct nhid_route database_routes[] = {
    {"database/config", NHID_M_LIST, 0, h_config_list, "list"},
    {"database/config/:name", NHID_M_GET, 0, h_config_read, "read"},
    {"database/config/:name", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_config_write, NULL},
    {"database/config/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_config_delete, "delete"},
    {"database/rotate-root/:name", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_rotate_root, "rotate"},
    {"database/roles", NHID_M_LIST, 0, h_role_list, "list"},
    {"database/roles/:name", NHID_M_GET, 0, h_role_read, "read"},
    {"database/roles/:name", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_role_write, NULL},
    {"database/roles/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_role_delete, "delete"},
    {"database/creds/:name", NHID_M_GET, NHID_ROUTE_ADMIN, h_creds, "read"},
    {"database/static-roles", NHID_M_LIST, 0, h_static_list, "list"},
    {"database/static-roles/:name", NHID_M_GET, 0, h_static_read, "read"},
    {"database/static-roles/:name", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_static_write, NULL},
    {"database/static-roles/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_static_delete, "delete"},
    {"database/static-creds/:name", NHID_M_GET, 0, h_static_creds, "read"},
    {"database/rotate-role/:name", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_rotate_role, "rotate"},
};

static const struct nhid_job database_jobs[] = {
    {"database-static-rotation", 1, static_job},
};

const struct nhid_engine nhid_database_engine = {
    .name = "database",
    .routes = database_routes,
    .n_routes = NHID_ARRAY_LEN(database_routes),
    .jobs = database_jobs,
    .n_jobs = NHID_ARRAY_LEN(database_jobs),
    .on_unseal = database_on_unseal,
    .on_seal = database_on_seal,
};
