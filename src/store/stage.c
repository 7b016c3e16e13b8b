/*
 * stage — optimistic write transactions (store.h, "optimistic writes").
 *
 * Why: every write runs on the store's single writer thread, so work done
 * inside a write job (ECDSA signing, token hashing, AES-GCM, JSON
 * encoding) is serialised across all cores. A staged txn runs that work
 * on the caller's thread against a read snapshot and leaves the writer
 * only a validation and the raw puts: optimistic concurrency control
 * with backward validation (Kung & Robinson, "On Optimistic Methods for
 * Concurrency Control", 1981).
 *
 * Correctness: the writer re-reads, inside its batch transaction, every
 * key the staged work read and re-runs every range it scanned. The batch
 * transaction sees every earlier commit and the earlier jobs of its own
 * batch, so if all of those reads give the same bytes, the staged work
 * would have produced the same writes had it run at that point of the
 * serial order; the writes are then applied. Otherwise nothing is written
 * and the caller runs the work again in the writer (NHID_ERR_CONFLICT).
 *
 * Reads see the snapshot plus the txn's own staged writes. Scans and
 * counts over a range the txn itself has written, and prefix deletes,
 * are not merged: they make the stage unusable (NHID_ERR_UNSUPPORTED)
 * and the caller falls back to a writer job.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_stage.h"

/* Bounds on what one staged txn may hold (beyond them: run in the writer). */
#define STAGE_OPS_MAX 1024u
#define STAGE_READS_MAX 4096u

struct staged_op {
    char *key;
    uint8_t *val; /* NULL for a delete */
    size_t len;
};

enum read_kind { R_GET, R_SCAN, R_SCAN_PREFIX, R_COUNT };

struct staged_read {
    enum read_kind kind;
    char *a; /* GET: key; SCAN: start; SCAN_PREFIX / COUNT: prefix */
    char *b; /* SCAN: end; SCAN_PREFIX: after (either may be NULL) */
    size_t limit;
    bool keys_only;
    bool found;   /* GET: the key existed */
    uint8_t *val; /* GET: its stored bytes */
    size_t len;
    uint64_t n;    /* SCAN*: rows visited; COUNT: the count */
    uint64_t hash; /* SCAN*: FNV-1a over the rows visited */
    bool stopped;  /* SCAN*: the callback stopped the scan at row n */
};

struct nhid_stage {
    struct nhid_txn *base;
    struct staged_op *ops;
    size_t n_ops, cap_ops;
    struct staged_read *reads;
    size_t n_reads, cap_reads;
    bool unusable;
    bool snapshot_known; /* base is a read txn: snap is its lower bound */
    uint64_t snap;
};

struct nhid_stage *stage_new(struct nhid_txn *base)
{
    struct nhid_stage *s = calloc(1, sizeof(*s));
    if (s) {
        s->base = base;
        s->snapshot_known = !nhid_txn_writable(base);
        if (s->snapshot_known)
            s->snap = store_txn_snapshot_batches(base);
    }
    return s;
}

void stage_free(struct nhid_stage *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_ops; i++) {
        free(s->ops[i].key);
        if (s->ops[i].val)
            nhid_free_secret(s->ops[i].val, s->ops[i].len);
    }
    for (size_t i = 0; i < s->n_reads; i++) {
        free(s->reads[i].a);
        free(s->reads[i].b);
        if (s->reads[i].val)
            nhid_free_secret(s->reads[i].val, s->reads[i].len);
    }
    free(s->ops);
    free(s->reads);
    free(s);
}

bool stage_usable(const struct nhid_stage *s)
{
    return s && !s->unusable;
}

size_t stage_write_count(const struct nhid_stage *s)
{
    return s ? s->n_ops : 0;
}

static int give_up(struct nhid_stage *s)
{
    s->unusable = true;
    return NHID_ERR_UNSUPPORTED;
}

/* ---- hashing rows (change detection, not security) ----------------------- */

uint64_t store_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t row_hash(uint64_t h, const char *key, const uint8_t *val, size_t len)
{
    uint64_t l = len;
    h = store_fnv(h, key, strlen(key) + 1);
    h = store_fnv(h, &l, sizeof(l));
    return val ? store_fnv(h, val, len) : h;
}

/* ---- the read set ----------------------------------------------------------- */

static struct staged_read *read_add(struct nhid_stage *s, enum read_kind kind, const char *a,
                                    const char *b)
{
    if (s->n_reads == s->cap_reads) {
        if (s->cap_reads >= STAGE_READS_MAX)
            return NULL;
        size_t cap = s->cap_reads ? 2 * s->cap_reads : 8;
        struct staged_read *r = realloc(s->reads, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        s->reads = r;
        s->cap_reads = cap;
    }
    struct staged_read *r = &s->reads[s->n_reads];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->a = a ? strdup(a) : NULL;
    r->b = b ? strdup(b) : NULL;
    if ((a && r->a == NULL) || (b && r->b == NULL)) {
        free(r->a);
        free(r->b);
        return NULL;
    }
    s->n_reads++;
    return r;
}

/* The latest staged op on key, or NULL. */
static struct staged_op *op_find(struct nhid_stage *s, const char *key)
{
    for (size_t i = s->n_ops; i-- > 0;)
        if (strcmp(s->ops[i].key, key) == 0)
            return &s->ops[i];
    return NULL;
}

struct get_rec {
    struct staged_read *r;
    nhid_value_fn fn;
    void *arg;
};

static int get_record(const uint8_t *val, size_t len, void *arg)
{
    struct get_rec *g = arg;
    g->r->val = malloc(len ? len : 1);
    if (g->r->val == NULL)
        return NHID_ERR_NOMEM;
    memcpy(g->r->val, val, len);
    g->r->len = len;
    g->r->found = true;
    return g->fn(val, len, g->arg);
}

int stage_get_with(struct nhid_stage *s, const char *key, nhid_value_fn fn, void *arg)
{
    if (key == NULL || fn == NULL)
        return NHID_ERR_INVALID;
    struct staged_op *op = op_find(s, key);
    if (op)
        return op->val ? fn(op->val, op->len, arg) : NHID_ERR_NOT_FOUND; /* NULL: deleted */
    struct staged_read *r = read_add(s, R_GET, key, NULL);
    if (r == NULL)
        return give_up(s);
    struct get_rec g = {r, fn, arg};
    return nhid_txn_get_with(s->base, key, get_record, &g);
}

bool stage_wrote(struct nhid_stage *s, const char *key)
{
    return op_find(s, key) != NULL;
}

bool stage_stamp(const struct nhid_stage *s, uint64_t *stamp)
{
    if (!s->snapshot_known)
        return false;
    *stamp = s->snap;
    return true;
}

int stage_note_get(struct nhid_stage *s, const char *key, const uint8_t *val, size_t len)
{
    if (op_find(s, key))
        return NHID_ERR_UNSUPPORTED; /* it reads its own write: not a snapshot value */
    struct staged_read *r = read_add(s, R_GET, key, NULL);
    if (r == NULL)
        return give_up(s);
    r->val = malloc(len ? len : 1);
    if (r->val == NULL)
        return NHID_ERR_NOMEM;
    memcpy(r->val, val, len);
    r->len = len;
    r->found = true;
    return NHID_OK;
}

/* ---- staged writes ---------------------------------------------------------- */

static int op_set(struct nhid_stage *s, const char *key, const uint8_t *val, size_t len, bool del)
{
    if (key == NULL || (val == NULL && len > 0 && !del))
        return NHID_ERR_INVALID;
    size_t klen = strnlen(key, NHID_STORE_KEY_MAX + 1);
    if (klen == 0 || klen > NHID_STORE_KEY_MAX || len > NHID_STORE_VALUE_MAX)
        return klen == 0 ? NHID_ERR_INVALID : NHID_ERR_TOO_LARGE;
    uint8_t *copy = NULL;
    if (!del) {
        copy = malloc(len ? len : 1);
        if (copy == NULL)
            return NHID_ERR_NOMEM;
        if (len)
            memcpy(copy, val, len);
    }
    struct staged_op *op = op_find(s, key);
    if (op) {
        if (op->val)
            nhid_free_secret(op->val, op->len);
        op->val = copy;
        op->len = del ? 0 : len;
        return NHID_OK;
    }
    if (s->n_ops == s->cap_ops) {
        if (s->cap_ops >= STAGE_OPS_MAX) {
            free(copy);
            return give_up(s);
        }
        size_t cap = s->cap_ops ? 2 * s->cap_ops : 8;
        struct staged_op *o = realloc(s->ops, cap * sizeof(*o));
        if (o == NULL) {
            free(copy);
            return NHID_ERR_NOMEM;
        }
        s->ops = o;
        s->cap_ops = cap;
    }
    op = &s->ops[s->n_ops];
    op->key = strdup(key);
    if (op->key == NULL) {
        free(copy);
        return NHID_ERR_NOMEM;
    }
    op->val = copy;
    op->len = del ? 0 : len;
    s->n_ops++;
    return NHID_OK;
}

int stage_put(struct nhid_stage *s, const char *key, const uint8_t *val, size_t len)
{
    static const uint8_t empty[1] = {0};
    return op_set(s, key, val ? val : empty, len, false);
}

int stage_delete(struct nhid_stage *s, const char *key)
{
    return op_set(s, key, NULL, 0, true);
}

int stage_delete_prefix(struct nhid_stage *s)
{
    return give_up(s);
}

/* ---- scans and counts --------------------------------------------------------- */

/* Has the txn staged a write to a key in [lo, hi) (hi NULL: no bound)? */
static bool wrote_in_range(const struct nhid_stage *s, const char *lo, const char *hi)
{
    for (size_t i = 0; i < s->n_ops; i++)
        if (strcmp(s->ops[i].key, lo) >= 0 && (hi == NULL || strcmp(s->ops[i].key, hi) < 0))
            return true;
    return false;
}

static bool wrote_under_prefix(const struct nhid_stage *s, const char *prefix, const char *after)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < s->n_ops; i++)
        if (strncmp(s->ops[i].key, prefix, plen) == 0 &&
            (after == NULL || strcmp(s->ops[i].key, after) > 0))
            return true;
    return false;
}

struct scan_rec {
    struct staged_read *r;
    nhid_scan_fn cb;
    void *arg;
};

static int scan_record(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct scan_rec *c = arg;
    c->r->n++;
    c->r->hash = row_hash(c->r->hash, key, c->r->keys_only ? NULL : val, len);
    int stop = c->cb(key, val, len, c->arg);
    if (stop)
        c->r->stopped = true;
    return stop;
}

int stage_scan(struct nhid_stage *s, const char *start, const char *end, size_t limit,
               bool keys_only, nhid_scan_fn cb, void *arg)
{
    if (cb == NULL)
        return NHID_ERR_INVALID;
    if (wrote_in_range(s, start ? start : "", end))
        return give_up(s);
    struct staged_read *r = read_add(s, R_SCAN, start ? start : "", end);
    if (r == NULL)
        return give_up(s);
    r->limit = limit;
    r->keys_only = keys_only;
    r->hash = STORE_FNV_INIT;
    struct scan_rec c = {r, cb, arg};
    return nhid_txn_scan(s->base, start, end, limit, keys_only, scan_record, &c);
}

int stage_scan_prefix(struct nhid_stage *s, const char *prefix, const char *after, size_t limit,
                      bool keys_only, nhid_scan_fn cb, void *arg)
{
    if (cb == NULL || prefix == NULL)
        return NHID_ERR_INVALID;
    if (wrote_under_prefix(s, prefix, after))
        return give_up(s);
    struct staged_read *r = read_add(s, R_SCAN_PREFIX, prefix, after);
    if (r == NULL)
        return give_up(s);
    r->limit = limit;
    r->keys_only = keys_only;
    r->hash = STORE_FNV_INIT;
    struct scan_rec c = {r, cb, arg};
    return nhid_txn_scan_prefix(s->base, prefix, after, limit, keys_only, scan_record, &c);
}

int stage_count_prefix(struct nhid_stage *s, const char *prefix, uint64_t *count)
{
    if (prefix == NULL || count == NULL)
        return NHID_ERR_INVALID;
    if (wrote_under_prefix(s, prefix, NULL))
        return give_up(s);
    struct staged_read *r = read_add(s, R_COUNT, prefix, NULL);
    if (r == NULL)
        return give_up(s);
    int rc = nhid_txn_count_prefix(s->base, prefix, count);
    r->n = rc == NHID_OK ? *count : UINT64_MAX;
    return rc;
}

/* ---- validation and apply (writer thread) ------------------------------------------ */

static int same_value(const uint8_t *val, size_t len, void *arg)
{
    const struct staged_read *r = arg;
    return len == r->len && memcmp(val, r->val, len) == 0 ? NHID_OK : NHID_ERR_CONFLICT;
}

struct rescan {
    const struct staged_read *r;
    uint64_t n, hash;
};

static int rescan_row(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct rescan *c = arg;
    c->n++;
    c->hash = row_hash(c->hash, key, c->r->keys_only ? NULL : val, len);
    /* Where the staged work's callback stopped, stop too: later rows were never seen. */
    return c->r->stopped && c->n == c->r->n;
}

static int still_true(const struct staged_read *r, struct nhid_txn *w)
{
    int rc;
    switch (r->kind) {
    case R_GET:
        rc = nhid_txn_get_with(w, r->a, same_value, (void *)r);
        if (rc == NHID_ERR_NOT_FOUND)
            return r->found ? NHID_ERR_CONFLICT : NHID_OK;
        if (rc == NHID_OK)
            return r->found ? NHID_OK : NHID_ERR_CONFLICT;
        return rc;
    case R_SCAN:
    case R_SCAN_PREFIX: {
        struct rescan c = {r, 0, STORE_FNV_INIT};
        rc = r->kind == R_SCAN
                 ? nhid_txn_scan(w, r->a, r->b, r->limit, r->keys_only, rescan_row, &c)
                 : nhid_txn_scan_prefix(w, r->a, r->b, r->limit, r->keys_only, rescan_row, &c);
        if (rc < 0)
            return rc;
        return c.n == r->n && c.hash == r->hash ? NHID_OK : NHID_ERR_CONFLICT;
    }
    case R_COUNT: {
        uint64_t n = 0;
        rc = nhid_txn_count_prefix(w, r->a, &n);
        if (rc < 0)
            return rc;
        return n == r->n ? NHID_OK : NHID_ERR_CONFLICT;
    }
    }
    return NHID_ERR_INTERNAL;
}

int stage_apply(struct nhid_stage *s, struct nhid_txn *w)
{
    int rc = NHID_OK;
    if (s->unusable)
        return NHID_ERR_UNSUPPORTED;
    for (size_t i = 0; i < s->n_reads; i++) {
        const struct staged_read *r = &s->reads[i];
        if (r->kind == R_GET && s->snapshot_known && store_unwritten_since(w, r->a, s->snap))
            continue;
        NHID_TRY(still_true(r, w));
    }
    for (size_t i = 0; i < s->n_ops; i++) {
        const struct staged_op *op = &s->ops[i];
        NHID_TRY(op->val ? nhid_txn_put(w, op->key, op->val, op->len)
                         : nhid_txn_delete(w, op->key));
    }
out:
    return rc;
}
