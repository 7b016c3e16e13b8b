/* store_test — the SQLite store: CRUD, ordered scans, group commit, snapshots. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

struct fixture {
    char dir[64];
    char path[128];
    struct nhid_store *st;
};

static int open_store(struct fixture *f, bool durable)
{
    struct nhid_store_config cfg = {.backend = "sqlite", .path = f->path, .durable = durable};
    return nhid_store_open(&cfg, &f->st);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/nhid-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/nhid.db", f->dir);
    if (open_store(f, true) != NHID_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d;
    struct dirent *e;
    char p[512];

    nhid_store_close(f->st);
    d = opendir(f->dir);
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

struct kv {
    const char *key;
    const char *val; /* NULL: delete */
};

struct kvs {
    const struct kv *items;
    size_t n;
};

static int put_job(struct nhid_txn *txn, void *arg)
{
    const struct kvs *k = arg;
    for (size_t i = 0; i < k->n; i++) {
        int rc = k->items[i].val
                     ? nhid_txn_put(txn, k->items[i].key, (const uint8_t *)k->items[i].val,
                                    strlen(k->items[i].val))
                     : nhid_txn_delete(txn, k->items[i].key);
        if (rc < 0)
            return rc;
    }
    return NHID_OK;
}

static void put1(struct nhid_store *st, const char *key, const char *val)
{
    struct kv item = {key, val};
    struct kvs k = {&item, 1};
    assert_int_equal(nhid_store_write(st, put_job, &k), NHID_OK);
}

/* Read key in a fresh read txn; returns malloc'd NUL-terminated copy or NULL if absent. */
static char *get1(struct nhid_store *st, const char *key)
{
    struct nhid_txn *txn = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    char *s = NULL;
    int rc;

    assert_int_equal(nhid_store_read_begin(st, &txn), NHID_OK);
    rc = nhid_txn_get(txn, key, &v, &n);
    nhid_store_read_end(txn);
    if (rc == NHID_ERR_NOT_FOUND)
        return NULL;
    assert_int_equal(rc, NHID_OK);
    s = malloc(n + 1);
    memcpy(s, v, n);
    s[n] = '\0';
    free(v);
    return s;
}

struct collect {
    char keys[64][64];
    char vals[64][64];
    size_t n;
    size_t stop_after; /* 0: never */
};

static int collect_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct collect *c = arg;
    assert_true(c->n < 64);
    snprintf(c->keys[c->n], 64, "%s", key);
    if (val) {
        memcpy(c->vals[c->n], val, len < 63 ? len : 63);
        c->vals[c->n][len < 63 ? len : 63] = '\0';
    } else {
        strcpy(c->vals[c->n], "(null)");
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_put_get_delete(void **state)
{
    struct fixture *f = *state;
    char *v;

    assert_null(get1(f->st, "a"));
    put1(f->st, "a", "one");
    v = get1(f->st, "a");
    assert_string_equal(v, "one");
    free(v);
    put1(f->st, "a", "two"); /* replace */
    v = get1(f->st, "a");
    assert_string_equal(v, "two");
    free(v);
    put1(f->st, "a", NULL);
    assert_null(get1(f->st, "a"));
    put1(f->st, "a", NULL); /* deleting an absent key is fine */

    /* A zero-length value is a value, not an absence. */
    put1(f->st, "empty", "");
    v = get1(f->st, "empty");
    assert_non_null(v);
    assert_string_equal(v, "");
    free(v);
}

static void test_scan_ordering(void **state)
{
    struct fixture *f = *state;
    static const struct kv items[] = {
        {"m/3", "3"},   {"m/1", "1"}, {"m/10", "10"}, {"m/2", "2"},
        {"m/", "root"}, {"n", "n"},   {"l", "l"},     {"m/\xc3\xa9", "e-acute"},
    };
    struct kvs k = {items, sizeof(items) / sizeof(items[0])};
    struct nhid_txn *txn = NULL;
    struct collect c;

    assert_int_equal(nhid_store_write(f->st, put_job, &k), NHID_OK);
    assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);

    /* Whole table, byte order. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan(txn, NULL, NULL, 0, false, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 8);
    assert_string_equal(c.keys[0], "l");
    assert_string_equal(c.keys[1], "m/");
    assert_string_equal(c.keys[2], "m/1");
    assert_string_equal(c.keys[3], "m/10");
    assert_string_equal(c.keys[4], "m/2");
    assert_string_equal(c.keys[5], "m/3");
    assert_string_equal(c.keys[6], "m/\xc3\xa9");
    assert_string_equal(c.keys[7], "n");
    assert_string_equal(c.vals[3], "10");

    /* [start, end) with a limit, keys only. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan(txn, "m/1", "m/3", 0, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.keys[0], "m/1");
    assert_string_equal(c.keys[2], "m/2");
    assert_string_equal(c.vals[0], "(null)");
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan(txn, "m/", NULL, 2, false, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 2);
    /* Stopping early from the callback is not an error. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(nhid_txn_scan(txn, NULL, NULL, 0, false, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 1);
    nhid_store_read_end(txn);
}

static void test_prefix_scan(void **state)
{
    struct fixture *f = *state;
    static const struct kv items[] = {
        {"a/1", "1"},        {"a/2", "2"},        {"a/3", "3"},
        {"a/4", "4"},        {"a0", "not in a/"}, {"a", "not in a/"},
        {"p\xff\x01", "ff"}, {"p\xff", "ff0"},    {"q", "q"},
    };
    struct kvs k = {items, sizeof(items) / sizeof(items[0])};
    struct nhid_txn *txn = NULL;
    struct collect c;
    uint64_t count = 0;

    assert_int_equal(nhid_store_write(f->st, put_job, &k), NHID_OK);
    assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "a/", NULL, 0, false, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.keys[0], "a/1");
    assert_string_equal(c.keys[3], "a/4");

    /* After "a/2" (exclusive), at most 1. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "a/", "a/2", 1, false, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.keys[0], "a/3");
    /* Paging to the end. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "a/", "a/3", 10, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.keys[0], "a/4");
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "a/", "a/4", 10, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 0);
    /* An `after` before the prefix starts at the prefix; one after it finds nothing. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "a/", "0", 0, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 4);
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "a/", "b", 0, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 0);

    /* A prefix ending in 0xff: the upper bound carries into the previous byte. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(txn, "p\xff", NULL, 0, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(nhid_txn_count_prefix(txn, "p\xff", &count), NHID_OK);
    assert_int_equal(count, 2);

    assert_int_equal(nhid_txn_count_prefix(txn, "a/", &count), NHID_OK);
    assert_int_equal(count, 4);
    assert_int_equal(nhid_txn_count_prefix(txn, "a", &count), NHID_OK);
    assert_int_equal(count, 6);
    assert_int_equal(nhid_txn_count_prefix(txn, "", &count), NHID_OK);
    assert_int_equal(count, 9);
    assert_int_equal(nhid_txn_count_prefix(txn, "zzz", &count), NHID_OK);
    assert_int_equal(count, 0);
    /* Read txns cannot write. */
    assert_int_equal(nhid_txn_put(txn, "x", (const uint8_t *)"1", 1), NHID_ERR_INTERNAL);
    assert_int_equal(nhid_txn_delete(txn, "x"), NHID_ERR_INTERNAL);
    assert_int_equal(nhid_txn_delete_prefix(txn, "a/", NULL), NHID_ERR_INTERNAL);
    assert_false(nhid_txn_writable(txn));
    assert_ptr_equal(nhid_txn_store(txn), f->st);
    nhid_store_read_end(txn);
}

static int delete_prefix_job(struct nhid_txn *txn, void *arg)
{
    uint64_t *deleted = arg;
    return nhid_txn_delete_prefix(txn, "a/", deleted);
}

static void test_delete_prefix(void **state)
{
    struct fixture *f = *state;
    static const struct kv items[] = {
        {"a/1", "1"}, {"a/2", "2"}, {"a/x/y", "3"}, {"a0", "keep"}, {"a", "keep"}};
    struct kvs k = {items, 5};
    uint64_t deleted = 0, count = 0;
    struct nhid_txn *txn = NULL;

    assert_int_equal(nhid_store_write(f->st, put_job, &k), NHID_OK);
    assert_int_equal(nhid_store_write(f->st, delete_prefix_job, &deleted), NHID_OK);
    assert_int_equal(deleted, 3);
    assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);
    assert_int_equal(nhid_txn_count_prefix(txn, "a", &count), NHID_OK);
    assert_int_equal(count, 2);
    nhid_store_read_end(txn);
}

/* ---- group commit and savepoints -------------------------------------------------- */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

static int blocker_job(struct nhid_txn *txn, void *arg)
{
    struct gate *g = arg;
    (void)txn;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return NHID_OK;
}

static int fail_after_put(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    int rc = nhid_txn_put(txn, "batch/b", (const uint8_t *)"b", 1);
    assert_int_equal(rc, NHID_OK);
    return NHID_ERR_CONFLICT;
}

/* Sees the writes of the jobs before it in the batch. */
static int read_previous(struct nhid_txn *txn, void *arg)
{
    uint8_t *v = NULL;
    size_t n = 0;
    int rc = nhid_txn_get(txn, "batch/a", &v, &n);
    (void)arg;
    free(v);
    if (rc < 0)
        return rc;
    rc = nhid_txn_get(txn, "batch/b", &v, &n);
    if (rc != NHID_ERR_NOT_FOUND) {
        free(v);
        return NHID_ERR_INTERNAL;
    }
    return nhid_txn_put(txn, "batch/c", (const uint8_t *)"c", 1);
}

struct done_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int rc[8];
    int ndone;
};

struct done_arg {
    struct done_rec *rec;
    int idx;
    struct kv item;
    struct kvs kvs;
};

static void record_done(int rc, void *arg)
{
    struct done_arg *d = arg;
    pthread_mutex_lock(&d->rec->mu);
    d->rec->rc[d->idx] = rc;
    d->rec->ndone++;
    pthread_cond_broadcast(&d->rec->cv);
    pthread_mutex_unlock(&d->rec->mu);
}

static int job_put_arg(struct nhid_txn *txn, void *arg)
{
    struct done_arg *d = arg;
    return put_job(txn, &d->kvs);
}

static int job_fail_arg(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    return fail_after_put(txn, NULL);
}

static int job_read_arg(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    return read_previous(txn, NULL);
}

static void test_savepoint_rollback_in_batch(void **state)
{
    struct fixture *f = *state;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct done_rec rec = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};
    struct done_arg d[4];
    char *v;

    memset(d, 0, sizeof(d));
    for (int i = 0; i < 4; i++) {
        d[i].rec = &rec;
        d[i].idx = i;
        rec.rc[i] = 12345;
    }
    /* Hold the writer in a first batch so the next three jobs queue into one batch. */
    assert_int_equal(nhid_store_submit(f->st, blocker_job, NULL, &g), NHID_OK);
    usleep(50 * 1000);
    d[0].item = (struct kv){"batch/a", "a"};
    d[0].kvs = (struct kvs){&d[0].item, 1};
    assert_int_equal(nhid_store_submit(f->st, job_put_arg, record_done, &d[0]), NHID_OK);
    assert_int_equal(nhid_store_submit(f->st, job_fail_arg, record_done, &d[1]), NHID_OK);
    assert_int_equal(nhid_store_submit(f->st, job_read_arg, record_done, &d[2]), NHID_OK);
    d[3].item = (struct kv){"", "invalid key"};
    d[3].kvs = (struct kvs){&d[3].item, 1};
    assert_int_equal(nhid_store_submit(f->st, job_put_arg, record_done, &d[3]), NHID_OK);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);

    pthread_mutex_lock(&rec.mu);
    while (rec.ndone < 4)
        pthread_cond_wait(&rec.cv, &rec.mu);
    pthread_mutex_unlock(&rec.mu);
    assert_int_equal(rec.rc[0], NHID_OK);
    assert_int_equal(rec.rc[1], NHID_ERR_CONFLICT);
    assert_int_equal(rec.rc[2], NHID_OK);
    assert_int_equal(rec.rc[3], NHID_ERR_INVALID);

    v = get1(f->st, "batch/a");
    assert_non_null(v);
    free(v);
    assert_null(get1(f->st, "batch/b"));
    v = get1(f->st, "batch/c");
    assert_non_null(v);
    free(v);
}

static int lazy_fail_clean(struct nhid_txn *txn, void *arg)
{
    (void)txn;
    (void)arg;
    return NHID_ERR_CONFLICT; /* nothing written: nothing to undo */
}

static int lazy_savepoint_then_fail(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    assert_int_equal(nhid_txn_savepoint(txn), NHID_OK);
    assert_int_equal(nhid_txn_savepoint(txn), NHID_OK); /* already open: no-op */
    assert_int_equal(nhid_txn_put(txn, "lazy/sp", (const uint8_t *)"s", 1), NHID_OK);
    return NHID_ERR_CONFLICT;
}

static int lazy_put_ok(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    return nhid_txn_put(txn, "lazy/b", (const uint8_t *)"b", 1);
}

static int lazy_put_then_fail(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    assert_int_equal(nhid_txn_put(txn, "lazy/x", (const uint8_t *)"x", 1), NHID_OK);
    return NHID_ERR_IO;
}

/* Jobs without savepoints (nhid_store_submit_lazy) in one batch with ordinary ones. */
static void test_lazy_jobs_in_batch(void **state)
{
    struct fixture *f = *state;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct done_rec rec = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};
    struct done_arg d[6];
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 6; i++) {
        d[i].rec = &rec;
        d[i].idx = i;
        rec.rc[i] = 12345;
    }
    assert_int_equal(nhid_store_submit(f->st, blocker_job, NULL, &g), NHID_OK);
    usleep(50 * 1000);
    d[0].item = (struct kv){"lazy/a", "a"};
    d[0].kvs = (struct kvs){&d[0].item, 1};
    assert_int_equal(nhid_store_submit(f->st, job_put_arg, record_done, &d[0]), NHID_OK);
    assert_int_equal(nhid_store_submit_lazy(f->st, lazy_fail_clean, record_done, &d[1]), NHID_OK);
    assert_int_equal(nhid_store_submit_lazy(f->st, lazy_savepoint_then_fail, record_done, &d[2]),
                     NHID_OK);
    assert_int_equal(nhid_store_submit_lazy(f->st, lazy_put_ok, record_done, &d[3]), NHID_OK);
    assert_int_equal(nhid_store_submit_lazy(f->st, lazy_put_then_fail, record_done, &d[4]),
                     NHID_OK);
    d[5].item = (struct kv){"lazy/c", "c"};
    d[5].kvs = (struct kvs){&d[5].item, 1};
    assert_int_equal(nhid_store_submit(f->st, job_put_arg, record_done, &d[5]), NHID_OK);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_mutex_lock(&rec.mu);
    while (rec.ndone < 6)
        pthread_cond_wait(&rec.cv, &rec.mu);
    pthread_mutex_unlock(&rec.mu);

    /* The job that failed halfway without a savepoint took the batch so far with it. */
    assert_int_equal(rec.rc[0], NHID_ERR_IO);
    assert_int_equal(rec.rc[1], NHID_ERR_CONFLICT);
    assert_int_equal(rec.rc[2], NHID_ERR_CONFLICT);
    assert_int_equal(rec.rc[3], NHID_ERR_IO);
    assert_int_equal(rec.rc[4], NHID_ERR_IO);
    assert_int_equal(rec.rc[5], NHID_OK);
    assert_null(get1(f->st, "lazy/a"));
    assert_null(get1(f->st, "lazy/sp"));
    assert_null(get1(f->st, "lazy/b"));
    assert_null(get1(f->st, "lazy/x"));
    char *v = get1(f->st, "lazy/c");
    assert_non_null(v);
    free(v);

    /* Alone and successful, a lazy job commits like any other. */
    struct done_rec rec2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};
    struct done_arg one = {.rec = &rec2, .idx = 0};
    assert_int_equal(nhid_store_submit_lazy(f->st, lazy_put_ok, record_done, &one), NHID_OK);
    pthread_mutex_lock(&rec2.mu);
    while (rec2.ndone < 1)
        pthread_cond_wait(&rec2.cv, &rec2.mu);
    pthread_mutex_unlock(&rec2.mu);
    assert_int_equal(rec2.rc[0], NHID_OK);
    v = get1(f->st, "lazy/b");
    assert_non_null(v);
    free(v);
}

static int nested_write_job(struct nhid_txn *txn, void *arg)
{
    /* Waiting for the writer from the writer would deadlock: refused. */
    return nhid_store_write(nhid_txn_store(txn), put_job, arg) == NHID_ERR_INTERNAL
               ? NHID_OK
               : NHID_ERR_CONFLICT;
}

static void test_write_from_writer_refused(void **state)
{
    struct fixture *f = *state;
    struct kvs k = {NULL, 0};
    assert_int_equal(nhid_store_write(f->st, nested_write_job, &k), NHID_OK);
    /* A NULL job is a no-op flush. */
    assert_int_equal(nhid_store_write(f->st, NULL, NULL), NHID_OK);
}

/* ---- concurrency ---------------------------------------------------------------------- */

struct conc {
    struct nhid_store *st;
    volatile bool stop;
    int errors;
    long reads;
    pthread_mutex_t mu;
};

static int pair_job(struct nhid_txn *txn, void *arg)
{
    const char *v = arg;
    int rc = nhid_txn_put(txn, "pair/x", (const uint8_t *)v, strlen(v));
    if (rc < 0)
        return rc;
    return nhid_txn_put(txn, "pair/y", (const uint8_t *)v, strlen(v));
}

static void *reader_main(void *p)
{
    struct conc *c = p;
    long reads = 0;
    int errors = 0;

    while (!c->stop) {
        struct nhid_txn *txn = NULL;
        uint8_t *x = NULL, *y = NULL;
        size_t xl = 0, yl = 0;

        if (nhid_store_read_begin(c->st, &txn) != NHID_OK) {
            errors++;
            continue;
        }
        if (nhid_txn_get(txn, "pair/x", &x, &xl) != NHID_OK)
            errors++;
        usleep(100); /* let a commit land between the two reads */
        if (nhid_txn_get(txn, "pair/y", &y, &yl) != NHID_OK)
            errors++;
        /* Both keys are written in one job: a snapshot sees them equal. */
        if (x && y && (xl != yl || memcmp(x, y, xl) != 0))
            errors++;
        free(x);
        free(y);
        nhid_store_read_end(txn);
        reads++;
    }
    pthread_mutex_lock(&c->mu);
    c->errors += errors;
    c->reads += reads;
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct fixture *f = *state;
    struct conc c = {f->st, false, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[4];
    char val[32];

    assert_int_equal(nhid_store_write(f->st, pair_job, "0"), NHID_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &c), 0);
    for (int i = 1; i <= 200; i++) {
        snprintf(val, sizeof(val), "%d", i);
        assert_int_equal(nhid_store_write(f->st, pair_job, val), NHID_OK);
    }
    c.stop = true;
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(c.errors, 0);
    assert_true(c.reads > 0);
}

/* A scan callback may run a nested scan and gets on the same txn. */
static int nested_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct nhid_txn *txn = arg;
    uint64_t n = 0;
    uint8_t *v = NULL;
    size_t vl = 0;
    (void)val;
    (void)len;
    assert_int_equal(nhid_txn_count_prefix(txn, "s/", &n), NHID_OK);
    assert_int_equal(n, 3);
    assert_int_equal(nhid_txn_get(txn, key, &v, &vl), NHID_OK);
    free(v);
    return 0;
}

static int count_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)key;
    (void)val;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static int outer_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct nhid_txn *txn = arg;
    int inner = 0;
    (void)key;
    (void)val;
    (void)len;
    assert_int_equal(nhid_txn_scan_prefix(txn, "s/", NULL, 0, true, count_cb, &inner), NHID_OK);
    assert_int_equal(inner, 3);
    return nested_cb(key, val, len, txn);
}

static void test_nested_scans_and_txns(void **state)
{
    struct fixture *f = *state;
    static const struct kv items[] = {{"s/1", "1"}, {"s/2", "2"}, {"s/3", "3"}};
    struct kvs k = {items, 3};
    struct nhid_txn *t1 = NULL, *t2 = NULL;
    char *v;

    assert_int_equal(nhid_store_write(f->st, put_job, &k), NHID_OK);
    assert_int_equal(nhid_store_read_begin(f->st, &t1), NHID_OK);
    assert_int_equal(nhid_txn_scan_prefix(t1, "s/", NULL, 0, false, outer_cb, t1), NHID_OK);
    /* Nested begin on one thread shares the snapshot; the inner end keeps it open. */
    assert_int_equal(nhid_store_read_begin(f->st, &t2), NHID_OK);
    nhid_store_read_end(t2);
    put1(f->st, "s/4", "4");
    {
        uint64_t n = 0;
        assert_int_equal(nhid_txn_count_prefix(t1, "s/", &n), NHID_OK);
        assert_int_equal(n, 3); /* still the old snapshot */
    }
    nhid_store_read_end(t1);
    v = get1(f->st, "s/4");
    assert_string_equal(v, "4");
    free(v);
    nhid_store_read_end(NULL);
}

static void test_persistence(void **state)
{
    struct fixture *f = *state;
    char *v;

    put1(f->st, "persist/me", "durable value");
    nhid_store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, true), NHID_OK);
    v = get1(f->st, "persist/me");
    assert_string_equal(v, "durable value");
    free(v);
    /* The file is owner-only. */
    {
        struct stat sb;
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal(sb.st_mode & 077, 0);
    }
}

struct limit_job {
    const char *key;
    const uint8_t *val;
    size_t len;
};

static int limit_put(struct nhid_txn *txn, void *arg)
{
    struct limit_job *j = arg;
    return nhid_txn_put(txn, j->key, j->val, j->len);
}

static void test_limits(void **state)
{
    struct fixture *f = *state;
    char key[NHID_STORE_KEY_MAX + 2];
    struct limit_job j;
    uint8_t *big;
    struct nhid_txn *txn = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    struct nhid_store *bad = NULL;
    struct nhid_store_config cfg = {.backend = "postgresql", .path = "/tmp/x", .durable = true};

    memset(key, 'k', sizeof(key));
    key[NHID_STORE_KEY_MAX] = '\0'; /* exactly the maximum: accepted */
    j = (struct limit_job){key, (const uint8_t *)"v", 1};
    assert_int_equal(nhid_store_write(f->st, limit_put, &j), NHID_OK);
    key[NHID_STORE_KEY_MAX] = 'k';
    key[NHID_STORE_KEY_MAX + 1] = '\0'; /* one over */
    assert_int_equal(nhid_store_write(f->st, limit_put, &j), NHID_ERR_TOO_LARGE);
    j.key = "";
    assert_int_equal(nhid_store_write(f->st, limit_put, &j), NHID_ERR_INVALID);
    j.key = NULL;
    assert_int_equal(nhid_store_write(f->st, limit_put, &j), NHID_ERR_INVALID);

    big = calloc(1, (size_t)NHID_STORE_VALUE_MAX + 1);
    assert_non_null(big);
    j = (struct limit_job){"big", big, (size_t)NHID_STORE_VALUE_MAX + 1};
    assert_int_equal(nhid_store_write(f->st, limit_put, &j), NHID_ERR_TOO_LARGE);
    free(big);

    assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);
    assert_int_equal(nhid_txn_get(txn, key, &v, &n), NHID_ERR_TOO_LARGE);
    assert_int_equal(nhid_txn_get(txn, "big", &v, &n), NHID_ERR_NOT_FOUND);
    assert_null(v);
    nhid_store_read_end(txn);

    assert_int_equal(nhid_store_open(&cfg, &bad), NHID_ERR_UNSUPPORTED);
    cfg.backend = "mysql";
    assert_int_equal(nhid_store_open(&cfg, &bad), NHID_ERR_INVALID);
    cfg.backend = NULL;
    cfg.path = "/nonexistent-dir/x.db";
    assert_int_equal(nhid_store_open(&cfg, &bad), NHID_ERR_IO);
    assert_null(bad);
    nhid_store_close(NULL);
}

/* Many async submissions complete exactly once each, including across close. */
static void count_done(int rc, void *arg)
{
    struct done_rec *r = arg;
    pthread_mutex_lock(&r->mu);
    if (rc == NHID_OK)
        r->ndone++;
    pthread_mutex_unlock(&r->mu);
}

static int async_put(struct nhid_txn *txn, void *arg)
{
    (void)arg;
    return nhid_txn_put(txn, "async/k", (const uint8_t *)"v", 1);
}

static void test_close_drains_queue(void **state)
{
    struct fixture *f = *state;
    struct done_rec rec = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};

    for (int i = 0; i < 5000; i++)
        assert_int_equal(nhid_store_submit(f->st, async_put, count_done, &rec), NHID_OK);
    nhid_store_close(f->st);
    f->st = NULL;
    assert_int_equal(rec.ndone, 5000);
    assert_int_equal(open_store(f, false), NHID_OK);
}

/* ---- optimistic (staged) writes -------------------------------------------------- */

struct apply_arg {
    struct nhid_txn *staged;
    int rc;
};

static int apply_job(struct nhid_txn *txn, void *arg)
{
    struct apply_arg *a = arg;
    a->rc = nhid_store_stage_apply(a->staged, txn);
    return a->rc;
}

/* Stage work over a snapshot; returns the staged txn (snapshot ended). */
static struct nhid_txn *stage_begin(struct nhid_store *st, struct nhid_txn **snap)
{
    struct nhid_txn *stx = NULL;
    assert_int_equal(nhid_store_read_begin(st, snap), NHID_OK);
    assert_int_equal(nhid_store_stage_begin(*snap, &stx), NHID_OK);
    assert_true(nhid_txn_writable(stx));
    return stx;
}

static int apply(struct nhid_store *st, struct nhid_txn *stx)
{
    struct apply_arg a = {stx, 0};
    int rc = nhid_store_write(st, apply_job, &a);
    nhid_store_stage_free(stx);
    return rc;
}

static void test_stage_reads_own_writes_and_applies(void **state)
{
    struct fixture *f = *state;
    struct nhid_txn *snap = NULL, *stx;
    uint8_t *v = NULL;
    size_t n = 0;
    put1(f->st, "a/1", "one");
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_get(stx, "a/1", &v, &n), NHID_OK);
    assert_int_equal(n, 3);
    free(v);
    assert_int_equal(nhid_txn_put(stx, "a/2", (const uint8_t *)"two", 3), NHID_OK);
    assert_int_equal(nhid_txn_delete(stx, "a/1"), NHID_OK);
    /* The staged txn sees its own writes; nothing is in the store yet. */
    assert_int_equal(nhid_txn_get(stx, "a/1", &v, &n), NHID_ERR_NOT_FOUND);
    assert_int_equal(nhid_txn_get(stx, "a/2", &v, &n), NHID_OK);
    assert_memory_equal(v, "two", 3);
    free(v);
    nhid_store_read_end(snap);
    assert_int_equal(nhid_store_stage_writes(stx), 2);
    char *g = get1(f->st, "a/2");
    assert_null(g);
    assert_int_equal(apply(f->st, stx), NHID_OK);
    g = get1(f->st, "a/2");
    assert_string_equal(g, "two");
    free(g);
    assert_null(get1(f->st, "a/1"));
}

static void test_stage_conflict_on_changed_read(void **state)
{
    struct fixture *f = *state;
    struct nhid_txn *snap = NULL, *stx;
    uint8_t *v = NULL;
    size_t n = 0;
    put1(f->st, "c/counter", "1");
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_get(stx, "c/counter", &v, &n), NHID_OK);
    free(v);
    assert_int_equal(nhid_txn_put(stx, "c/counter", (const uint8_t *)"2", 1), NHID_OK);
    nhid_store_read_end(snap);
    /* Someone else commits first: the staged increment must not land. */
    put1(f->st, "c/counter", "5");
    assert_int_equal(apply(f->st, stx), NHID_ERR_CONFLICT);
    char *g = get1(f->st, "c/counter");
    assert_string_equal(g, "5");
    free(g);
}

static void test_stage_conflict_on_absent_key_created(void **state)
{
    struct fixture *f = *state;
    struct nhid_txn *snap = NULL, *stx;
    uint8_t *v = NULL;
    size_t n = 0;
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_get(stx, "u/name", &v, &n), NHID_ERR_NOT_FOUND);
    assert_int_equal(nhid_txn_put(stx, "u/name", (const uint8_t *)"mine", 4), NHID_OK);
    nhid_store_read_end(snap);
    put1(f->st, "u/name", "theirs");
    assert_int_equal(apply(f->st, stx), NHID_ERR_CONFLICT);
    char *g = get1(f->st, "u/name");
    assert_string_equal(g, "theirs");
    free(g);
}

/*
 * The writer skips re-reading a staged read when no batch after the
 * snapshot wrote that key's slot; a write to the key itself, or a range
 * delete, still forces the re-read (and so the conflict).
 */
static void test_stage_unwritten_reads_skipped(void **state)
{
    struct fixture *f = *state;
    struct nhid_txn *snap = NULL, *stx;
    struct nhid_store_stats before, after;
    uint8_t *v = NULL;
    size_t n = 0;
    put1(f->st, "a/read", "r");
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_get(stx, "a/read", &v, &n), NHID_OK);
    free(v);
    assert_int_equal(nhid_txn_put(stx, "a/out", (const uint8_t *)"o", 1), NHID_OK);
    nhid_store_read_end(snap);
    put1(f->st, "b/unrelated", "x"); /* a later batch, another key */
    nhid_store_get_stats(f->st, &before);
    assert_int_equal(apply(f->st, stx), NHID_OK);
    nhid_store_get_stats(f->st, &after);
    assert_int_equal(after.stage_reads_skipped, before.stage_reads_skipped + 1);

    /* The key rewritten with other bytes after the snapshot: re-read, conflict. */
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_get(stx, "a/read", &v, &n), NHID_OK);
    free(v);
    assert_int_equal(nhid_txn_put(stx, "a/out", (const uint8_t *)"p", 1), NHID_OK);
    nhid_store_read_end(snap);
    put1(f->st, "a/read", "changed");
    nhid_store_get_stats(f->st, &before);
    assert_int_equal(apply(f->st, stx), NHID_ERR_CONFLICT);
    nhid_store_get_stats(f->st, &after);
    assert_int_equal(after.stage_reads_skipped, before.stage_reads_skipped);

    /* A prefix delete after the snapshot: re-read, the key is gone, conflict. */
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_get(stx, "a/read", &v, &n), NHID_OK);
    free(v);
    assert_int_equal(nhid_txn_put(stx, "z/out", (const uint8_t *)"q", 1), NHID_OK);
    nhid_store_read_end(snap);
    uint64_t deleted = 0;
    assert_int_equal(nhid_store_write(f->st, delete_prefix_job, &deleted), NHID_OK);
    assert_true(deleted >= 2);
    assert_int_equal(apply(f->st, stx), NHID_ERR_CONFLICT);
    assert_null(get1(f->st, "z/out"));
}

static void test_stage_scan_validation(void **state)
{
    struct fixture *f = *state;
    struct nhid_txn *snap = NULL, *stx;
    struct collect c;
    uint64_t count = 0;
    put1(f->st, "s/1", "x");
    put1(f->st, "s/2", "y");
    /* A scan stopped early is validated only up to where it stopped. */
    stx = stage_begin(f->st, &snap);
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(nhid_txn_scan_prefix(stx, "s/", NULL, 0, false, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(nhid_txn_put(stx, "t/out", (const uint8_t *)"1", 1), NHID_OK);
    nhid_store_read_end(snap);
    put1(f->st, "s/3", "z"); /* past the stop: no conflict */
    assert_int_equal(apply(f->st, stx), NHID_OK);
    /* A full scan or a count conflicts with a new key in its range. */
    stx = stage_begin(f->st, &snap);
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan(stx, "s/", "s0", 0, true, collect_cb, &c), NHID_OK);
    assert_int_equal(c.n, 3);
    assert_int_equal(nhid_txn_put(stx, "t/out", (const uint8_t *)"2", 1), NHID_OK);
    nhid_store_read_end(snap);
    put1(f->st, "s/4", "w");
    assert_int_equal(apply(f->st, stx), NHID_ERR_CONFLICT);
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_count_prefix(stx, "s/", &count), NHID_OK);
    assert_int_equal(count, 4);
    assert_int_equal(nhid_txn_put(stx, "t/out", (const uint8_t *)"3", 1), NHID_OK);
    nhid_store_read_end(snap);
    put1(f->st, "s/2", NULL);
    assert_int_equal(apply(f->st, stx), NHID_ERR_CONFLICT);
    char *g = get1(f->st, "t/out");
    assert_string_equal(g, "1");
    free(g);
}

static void test_stage_unsupported_falls_back(void **state)
{
    struct fixture *f = *state;
    struct nhid_txn *snap = NULL, *stx;
    struct collect c;
    put1(f->st, "p/1", "x");
    stx = stage_begin(f->st, &snap);
    assert_true(nhid_store_stage_usable(stx));
    assert_int_equal(nhid_txn_delete_prefix(stx, "p/", NULL), NHID_ERR_UNSUPPORTED);
    assert_false(nhid_store_stage_usable(stx));
    nhid_store_stage_free(stx);
    nhid_store_read_end(snap);
    /* A scan over a range the txn has written is not merged either. */
    stx = stage_begin(f->st, &snap);
    assert_int_equal(nhid_txn_put(stx, "p/2", (const uint8_t *)"y", 1), NHID_OK);
    memset(&c, 0, sizeof(c));
    assert_int_equal(nhid_txn_scan_prefix(stx, "p/", NULL, 0, false, collect_cb, &c),
                     NHID_ERR_UNSUPPORTED);
    assert_false(nhid_store_stage_usable(stx));
    nhid_store_read_end(snap);
    assert_int_equal(apply(f->st, stx), NHID_ERR_UNSUPPORTED);
    assert_null(get1(f->st, "p/2"));
}

/* A lingering snapshot is reused only while nothing was written: reads stay fresh. */
static void test_linger_sees_every_commit(void **state)
{
    struct fixture *f = *state;
    nhid_store_read_linger(f->st, true);
    put1(f->st, "l/k", "1");
    char *g = get1(f->st, "l/k");
    assert_string_equal(g, "1");
    free(g);
    g = get1(f->st, "l/k"); /* reuses the open snapshot */
    assert_string_equal(g, "1");
    free(g);
    put1(f->st, "l/k", "2");
    g = get1(f->st, "l/k");
    assert_string_equal(g, "2");
    free(g);
    nhid_store_read_release(f->st);
    put1(f->st, "l/k", "3");
    g = get1(f->st, "l/k");
    assert_string_equal(g, "3");
    free(g);
    nhid_store_read_linger(f->st, false);
    put1(f->st, "l/k", "4");
    g = get1(f->st, "l/k");
    assert_string_equal(g, "4");
    free(g);
}

/* ---- WAL: gathered writes and the checkpointer ------------------------------ */

struct big_batch {
    unsigned first, n;
    size_t value_len;
};

static void big_value(char *out, size_t len, unsigned i)
{
    for (size_t k = 0; k < len; k++)
        out[k] = (char)('a' + (i * 7 + k) % 26);
    out[len] = '\0';
}

static int big_put(struct nhid_txn *txn, void *arg)
{
    const struct big_batch *b = arg;
    char key[64];
    char *val = malloc(b->value_len + 1);
    if (val == NULL)
        return NHID_ERR_NOMEM;
    int rc = NHID_OK;
    for (unsigned i = b->first; i < b->first + b->n && rc == NHID_OK; i++) {
        snprintf(key, sizeof(key), "big/%08u", i);
        big_value(val, b->value_len, i);
        rc = nhid_txn_put(txn, key, (const uint8_t *)val, b->value_len);
    }
    free(val);
    return rc;
}

/* Rows read through a separate connection of SQLite's own (default VFS): what the files hold. */
static unsigned count_in_file(const char *path, const char *prefix_lo, const char *prefix_hi)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    unsigned n = 0;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, prefix_lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, prefix_hi, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    n = (unsigned)sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/*
 * A durable store gathers WAL writes until the commit's sync: a commit far
 * larger than one gathered write (hundreds of frames) is in the files as
 * soon as it is acknowledged, complete, for any other connection.
 */
static void test_wal_writes_reach_file_at_commit(void **state)
{
    struct fixture *f = *state;
    struct big_batch b = {.first = 0, .n = 300, .value_len = 3000};

    assert_int_equal(nhid_store_write(f->st, big_put, &b), NHID_OK);
    assert_int_equal(count_in_file(f->path, "big/", "big0"), 300);
    put1(f->st, "small/one", "x");
    assert_int_equal(count_in_file(f->path, "small/", "small0"), 1);

    char *want = malloc(b.value_len + 1), *got;
    big_value(want, b.value_len, 299);
    got = get1(f->st, "big/00000299");
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

/*
 * Checkpoints run on their own thread once the WAL passes its threshold,
 * alongside later commits, and lose nothing.
 */
static void test_checkpoints_off_writer(void **state)
{
    struct fixture *f = *state;
    struct nhid_store_stats stats;
    /* 40 commits of 100 values spanning 3 pages each: ~12,000 WAL frames. */
    for (unsigned c = 0; c < 40; c++) {
        struct big_batch b = {.first = c * 100, .n = 100, .value_len = 10000};
        assert_int_equal(nhid_store_write(f->st, big_put, &b), NHID_OK);
    }
    for (int i = 0; i < 500; i++) {
        nhid_store_get_stats(f->st, &stats);
        if (stats.checkpoints > 0)
            break;
        usleep(10000);
    }
    assert_true(stats.checkpoints > 0);
    /* Writes after the checkpoint, then everything is there, in this process and in the files. */
    put1(f->st, "after/checkpoint", "yes");
    assert_int_equal(count_in_file(f->path, "big/", "big0"), 4000);
    char *v = get1(f->st, "after/checkpoint");
    assert_string_equal(v, "yes");
    free(v);
    nhid_store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, true), NHID_OK);
    assert_int_equal(count_in_file(f->path, "big/", "big0"), 4000);
    v = get1(f->st, "big/00003999");
    assert_non_null(v);
    assert_int_equal(strlen(v), 10000);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_ordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_rollback_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy_jobs_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_from_writer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_scans_and_txns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_reads_own_writes_and_applies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_conflict_on_changed_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_conflict_on_absent_key_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_unwritten_reads_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_scan_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_unsupported_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linger_sees_every_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_writes_reach_file_at_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_off_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
