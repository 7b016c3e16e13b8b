/*
 * store — the SQLite backend (docs/dev/storage.md).
 *
 * One table kv(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID,
 * so the primary key b-tree holds the rows in key order (BINARY collation,
 * i.e. memcmp order) and every range operation is an index range.
 *
 * Reads: one connection per (store, thread), found through a pthread key
 * and closed when the thread exits or the store closes. A read txn is a
 * deferred BEGIN: in WAL mode it sees one snapshot from its first read to
 * its end. Prepared statements are cached per connection.
 *
 * Writes: one writer thread owns the only write connection and runs jobs
 * in batches (group commit): BEGIN IMMEDIATE, a SAVEPOINT per job, one
 * COMMIT (one WAL fsync with synchronous=FULL), then each completion.
 */
#include "store/store.h"
#include "store/store_checkpoint.h"
#include "store/store_stage.h"
#include "store/store_wal_vfs.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOD "store"

/* Most jobs in one transaction; bounds commit latency and savepoint work. */
#define STORE_BATCH_MAX 4096u
/* Most jobs waiting; nhid_store_submit() blocks (back-pressure) beyond it. */
#define STORE_QUEUE_MAX 65536u
/* How long a connection waits on a lock held by another process/connection. */
#define STORE_BUSY_TIMEOUT_MS 10000
/* Longest the writer waits for stragglers before starting a batch (0.5 ms). */
#define STORE_GATHER_NS 500000L
/* Slots of the writer's "last batch that wrote a key" table (a power of two; 128 KiB). */
#define STORE_WRITTEN_SLOTS 16384u
/* Page cache: 32 MiB for the writer, 4 MiB per reader thread (KiB, negative). */
#define STORE_WRITER_CACHE_KIB 32768
#define STORE_READER_CACHE_KIB 4096

enum stmt_id {
    S_GET,
    S_PUT,
    S_DEL,
    S_SCAN,
    S_SCAN_END,
    S_SCANK,
    S_SCANK_END,
    S_DELR,
    S_DELR_END,
    S_COUNT,
    S_COUNT_END,
    S_BEGIN,
    S_BEGIN_IMM,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_N
};

static const char *const stmt_sql[S_N] = {
    [S_GET] = "SELECT value FROM kv WHERE key = ?1",
    [S_PUT] = ("INSERT INTO kv(key, value) VALUES(?1, ?2) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
    [S_DEL] = "DELETE FROM kv WHERE key = ?1",
    [S_SCAN] = "SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
    [S_SCAN_END] = "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?3 ORDER BY key LIMIT ?2",
    [S_SCANK] = "SELECT key FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
    [S_SCANK_END] = "SELECT key FROM kv WHERE key >= ?1 AND key < ?3 ORDER BY key LIMIT ?2",
    [S_DELR] = "DELETE FROM kv WHERE key >= ?1",
    [S_DELR_END] = "DELETE FROM kv WHERE key >= ?1 AND key < ?2",
    [S_COUNT] = "SELECT count(*) FROM kv WHERE key >= ?1",
    [S_COUNT_END] = "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2",
    [S_BEGIN] = "BEGIN",
    [S_BEGIN_IMM] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT nhid_job",
    [S_RELEASE] = "RELEASE nhid_job",
    [S_ROLLBACK_TO] = "ROLLBACK TO nhid_job",
};

struct conn;

struct nhid_txn {
    struct nhid_store *st;
    struct conn *c;
    bool writable;
    struct nhid_stage *stage; /* set: a staged txn (stage.c) */
    /* The writer's txn: the running job's savepoint is open; writes so far. */
    bool savepoint_open;
    uint64_t writes;
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_N];
    struct nhid_store *st;
    struct nhid_txn txn; /* the one read txn of this thread (nested begins share it) */
    unsigned depth;
    /*
     * Lingering snapshots (nhid_store_read_linger): the read txn stays open
     * after its last end, and the next begin reuses it if no write batch
     * has finished since it began (then it is exactly as fresh as a new one).
     */
    bool linger;              /* this thread keeps snapshots open between requests */
    bool lingering;           /* a txn is open with depth 0 */
    uint64_t snap_batches;    /* st->batches_done before the txn's BEGIN */
    struct conn *prev, *next; /* the store's list of reader connections */
};

struct job {
    nhid_store_job_fn fn;
    void *fn_arg;
    nhid_store_done_fn done;
    void *done_arg;
    int rc;
    bool heap; /* allocated by nhid_store_submit (freed after done) */
    bool lazy; /* nhid_store_submit_lazy: no savepoint unless the job opens one */
    struct job *next;
};

struct nhid_store {
    char *path;
    bool durable;

    pthread_key_t tls;
    bool tls_ok;
    pthread_mutex_t conns_mu;
    struct conn *conns;

    pthread_mutex_t q_mu;
    pthread_cond_t q_work;  /* writer waits for jobs */
    pthread_cond_t q_space; /* submitters wait for queue space */
    struct job *head, *tail;
    size_t qlen;
    bool closing;

    pthread_t writer;
    bool writer_started;
    pthread_mutex_t stats_mu;
    struct nhid_store_stats stats;
    /* Write batches finished (committed or not), bumped before their completions run. */
    atomic_uint_fast64_t batches_done;
    struct conn *wconn;
    struct nhid_txn wtxn;
    struct nhid_checkpointer *ckpt; /* checkpoints the WAL off the writer thread */
    /*
     * Which batch last wrote a key, per hash slot of its key, and the last
     * batch that deleted a range (any key): writer thread only. Lets the
     * writer skip re-reading what a staged txn read when nothing that could
     * be that key was written since the txn's snapshot (store_stage.h).
     */
    atomic_uint_fast64_t *written; /* written by the writer, read by any thread (relaxed) */
    atomic_uint_fast64_t range_written;
    uint64_t instance;                  /* nhid_store_instance */
    uint64_t cur_batch;                 /* number of the batch being run: batches_done + 1 */
    atomic_uint_fast64_t reads_skipped; /* read by nhid_store_get_stats on any thread */
    const char *vfs; /* SQLite VFS of every connection: WAL writes gathered when durable */
};

/* Map an SQLite result code to nhid's result type. */
static int sql_err(int src)
{
    switch (src & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return NHID_OK;
    case SQLITE_NOMEM:
        return NHID_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return NHID_ERR_UNAVAILABLE;
    case SQLITE_TOOBIG:
        return NHID_ERR_TOO_LARGE;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return NHID_ERR_INVALID;
    case SQLITE_MISUSE:
    case SQLITE_ERROR:
    case SQLITE_INTERNAL:
        return NHID_ERR_INTERNAL;
    default: /* IOERR, FULL, CORRUPT, CANTOPEN, READONLY, NOTADB, ... */
        return NHID_ERR_IO;
    }
}

static int log_sql(struct conn *c, int src, const char *what)
{
    nhid_error(MOD, "%s: %s (sqlite %d)", what, c && c->db ? sqlite3_errmsg(c->db) : "?", src);
    return sql_err(src);
}

/* ---- connections and statements ---------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < S_N; i++)
        sqlite3_finalize(c->stmt[i]);
    /* close_v2 rolls back an open transaction (a thread that leaked a txn). */
    sqlite3_close_v2(c->db);
    free(c);
}

static int exec_simple(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        nhid_error(MOD, "\"%s\": %s", sql, msg ? msg : sqlite3_errstr(src));
        sqlite3_free(msg);
        return sql_err(src);
    }
    return NHID_OK;
}

static int conn_open(struct nhid_store *st, bool writer, struct conn **out)
{
    int rc = NHID_OK, src;
    struct conn *c = calloc(1, sizeof(*c));
    char sql[128];

    if (c == NULL)
        return NHID_ERR_NOMEM;
    c->st = st;
    c->txn.st = st;
    c->txn.c = c;
    c->txn.writable = writer;
    /* NOMUTEX: each connection is used by one thread at a time. */
    src = sqlite3_open_v2(
        st->path, &c->db,
        SQLITE_OPEN_READWRITE | (writer ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX, st->vfs);
    if (src != SQLITE_OK) {
        nhid_error(MOD, "open %s: %s", st->path, c->db ? sqlite3_errmsg(c->db) : "no memory");
        NHID_FAIL(sql_err(src));
    }
    sqlite3_extended_result_codes(c->db, 1);
    if (!writer) {
        /*
         * A reader runs cached point lookups and scans: a small lookaside
         * pool is enough. SQLite's default (100 slots of 1200 bytes)
         * touches ~120 KiB per connection, and every thread that reads
         * has one.
         */
        (void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 16);
    }
    sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
    NHID_TRY(nhid_fmt(sql, sizeof(sql), "PRAGMA cache_size = -%d",
                      writer ? STORE_WRITER_CACHE_KIB : STORE_READER_CACHE_KIB));
    NHID_TRY(exec_simple(c->db, sql));
    NHID_TRY(exec_simple(c->db, "PRAGMA temp_store = MEMORY"));
    if (writer) {
        sqlite3_stmt *s = NULL;
        const unsigned char *mode = NULL;
        bool wal;

        /* journal_mode is persistent in the file; readers inherit WAL. */
        src = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (src == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
            mode = sqlite3_column_text(s, 0);
        wal = mode && strcmp((const char *)mode, "wal") == 0;
        sqlite3_finalize(s);
        if (!wal) {
            nhid_error(MOD, "%s: cannot switch to WAL journal mode", st->path);
            NHID_FAIL(NHID_ERR_IO);
        }
        /* FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
         */
        NHID_TRY(exec_simple(c->db, st->durable ? "PRAGMA synchronous = FULL"
                                                : "PRAGMA synchronous = NORMAL"));
        NHID_TRY(exec_simple(c->db, "PRAGMA journal_size_limit = 67108864"));
        NHID_TRY(exec_simple(c->db, "CREATE TABLE IF NOT EXISTS kv("
                                    "key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL"
                                    ") WITHOUT ROWID"));
    } else {
        /* A reader never writes; make a stray write fail loudly. */
        NHID_TRY(exec_simple(c->db, "PRAGMA query_only = 1"));
    }
    *out = c;
    c = NULL;
out:
    conn_close(c);
    return rc;
}

/*
 * The cached statement id of c, prepared on first use. If it is still
 * running (a nested scan from a scan callback) a one-off copy is prepared
 * and *temp set; release with stmt_release().
 */
static int stmt_acquire(struct conn *c, enum stmt_id id, sqlite3_stmt **out, bool *temp)
{
    int src;

    *temp = false;
    if (c->stmt[id] == NULL) {
        src = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                                 NULL);
        if (src != SQLITE_OK)
            return log_sql(c, src, "prepare");
    }
    if (!sqlite3_stmt_busy(c->stmt[id])) {
        *out = c->stmt[id];
        return NHID_OK;
    }
    src = sqlite3_prepare_v2(c->db, stmt_sql[id], -1, out, NULL);
    if (src != SQLITE_OK)
        return log_sql(c, src, "prepare");
    *temp = true;
    return NHID_OK;
}

static void stmt_release(sqlite3_stmt *s, bool temp)
{
    if (s == NULL)
        return;
    if (temp) {
        sqlite3_finalize(s);
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

/* Run a statement without parameters or rows (BEGIN, COMMIT, SAVEPOINT...). */
static int stmt_exec(struct conn *c, enum stmt_id id)
{
    sqlite3_stmt *s = NULL;
    bool temp = false;
    int rc = stmt_acquire(c, id, &s, &temp), src;

    if (rc < 0)
        return rc;
    src = sqlite3_step(s);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = log_sql(c, src, stmt_sql[id]);
    stmt_release(s, temp);
    return rc;
}

/* ---- key checks and ranges ---------------------------------------------- */

static int key_check(const char *key, size_t *len)
{
    size_t n;

    if (key == NULL)
        return NHID_ERR_INVALID;
    n = strnlen(key, NHID_STORE_KEY_MAX + 1);
    if (n == 0)
        return NHID_ERR_INVALID;
    if (n > NHID_STORE_KEY_MAX)
        return NHID_ERR_TOO_LARGE;
    *len = n;
    return NHID_OK;
}

/*
 * The exclusive upper bound of the keys starting with prefix: the prefix
 * with its last byte incremented (dropping trailing 0xff bytes first).
 * false when no bound exists (empty or all-0xff prefix).
 */
static bool prefix_end(const char *prefix, size_t plen, char *buf, size_t *blen)
{
    size_t n = plen;

    memcpy(buf, prefix, plen);
    while (n > 0 && (unsigned char)buf[n - 1] == 0xff)
        n--;
    if (n == 0)
        return false;
    buf[n - 1] = (char)((unsigned char)buf[n - 1] + 1);
    buf[n] = '\0';
    *blen = n;
    return true;
}

/* ---- the store ---------------------------------------------------------- */

static void conn_thread_exit(void *p)
{
    struct conn *c = p;
    struct nhid_store *st = c->st;

    pthread_mutex_lock(&st->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&st->conns_mu);
    conn_close(c);
}

/*
 * SQLite rolls back the whole transaction by itself on some errors (disk
 * full, I/O error, out of memory). Then the jobs before `upto` that had
 * succeeded are lost: fail them, and open a new transaction for the rest.
 */
static int txn_lost(struct conn *c, struct job *batch, struct job *upto)
{
    for (struct job *k = batch; k != upto; k = k->next)
        if (k->rc >= 0)
            k->rc = NHID_ERR_IO;
    nhid_error(MOD, "the batch transaction was rolled back by SQLite; its jobs failed");
    return stmt_exec(c, S_BEGIN_IMM);
}

/*
 * A lazy job (nhid_store_submit_lazy) failed after writing without a
 * savepoint: its writes cannot be undone alone. Roll the whole batch
 * transaction back, fail the jobs up to it, and open a new transaction
 * for the rest.
 */
static int lazy_job_failed(struct conn *c, struct job *batch, struct job *failed)
{
    for (struct job *k = batch; k != failed; k = k->next)
        if (k->rc >= 0)
            k->rc = failed->rc;
    nhid_error(MOD, "a job failed halfway without a savepoint; the jobs before it in its batch "
                    "failed with it");
    if (!sqlite3_get_autocommit(c->db))
        (void)stmt_exec(c, S_ROLLBACK);
    return stmt_exec(c, S_BEGIN_IMM);
}

static void run_batch(struct nhid_store *st, struct job *batch)
{
    struct conn *c = st->wconn;
    struct job *j, *next;
    /* Only the writer bumps batches_done, once per batch, after its commit. */
    st->cur_batch = atomic_load_explicit(&st->batches_done, memory_order_relaxed) + 1;
    int rc = stmt_exec(c, S_BEGIN_IMM);

    if (rc < 0) {
        for (j = batch; j; j = j->next)
            j->rc = rc;
        goto complete;
    }
    for (j = batch; j; j = j->next) {
        int r;

        if (sqlite3_get_autocommit(c->db) && (r = txn_lost(c, batch, j)) < 0) {
            for (; j; j = j->next)
                j->rc = r;
            goto complete;
        }
        st->wtxn.savepoint_open = false;
        if (!j->lazy) {
            if ((r = stmt_exec(c, S_SAVEPOINT)) < 0) {
                j->rc = r;
                continue;
            }
            st->wtxn.savepoint_open = true;
        }
        uint64_t writes_before = st->wtxn.writes;
        j->rc = j->fn ? j->fn(&st->wtxn, j->fn_arg) : NHID_OK;
        if (!st->wtxn.savepoint_open) {
            if (j->rc < 0 && st->wtxn.writes != writes_before &&
                (r = lazy_job_failed(c, batch, j)) < 0) {
                for (j = j->next; j; j = j->next)
                    j->rc = r;
                goto complete;
            }
        } else if (j->rc < 0) {
            /* Undo this job only; the savepoint stays open until RELEASE. */
            (void)stmt_exec(c, S_ROLLBACK_TO);
            (void)stmt_exec(c, S_RELEASE);
        } else if ((r = stmt_exec(c, S_RELEASE)) < 0) {
            j->rc = r;
            (void)stmt_exec(c, S_ROLLBACK_TO);
            (void)stmt_exec(c, S_RELEASE);
        }
        st->wtxn.savepoint_open = false;
    }
    if (sqlite3_get_autocommit(c->db)) {
        /* Lost after the last job: nothing to commit, every success is void. */
        for (j = batch; j; j = j->next)
            if (j->rc >= 0)
                j->rc = NHID_ERR_IO;
        rc = NHID_ERR_IO;
        goto complete;
    }
    rc = stmt_exec(c, S_COMMIT);
    if (rc < 0) {
        /* Nothing of the batch is durable: every job fails. */
        if (!sqlite3_get_autocommit(c->db))
            (void)stmt_exec(c, S_ROLLBACK);
        for (j = batch; j; j = j->next)
            if (j->rc >= 0)
                j->rc = rc;
    }
complete : {
    uint64_t n = 0, failed = 0;
    for (j = batch; j; j = j->next) {
        n++;
        failed += j->rc < 0;
    }
    pthread_mutex_lock(&st->stats_mu);
    st->stats.batches++;
    st->stats.jobs += n;
    st->stats.jobs_failed += failed;
    st->stats.commit_errors += rc < 0;
    if (n > st->stats.max_batch)
        st->stats.max_batch = n;
    pthread_mutex_unlock(&st->stats_mu);
}
    /* Before any completion: a reader told of this commit must not reuse an older snapshot. */
    atomic_fetch_add_explicit(&st->batches_done, 1, memory_order_release);
    for (j = batch; j; j = next) {
        bool heap = j->heap;
        next = j->next; /* a waiter's job lives on its stack: read before done() */
        if (j->done)
            j->done(j->rc, j->done_arg);
        if (heap)
            free(j);
    }
}

/*
 * Gather delay (as PostgreSQL's commit_delay): when far fewer jobs are
 * queued than the last batch had, the submitters of that batch are most
 * likely just waking up to submit again. Waiting a fraction of an fsync
 * for them turns alternating tiny/large batches into one large batch per
 * fsync. A lone submitter (last batch of 1) never waits.
 */
static void gather(struct nhid_store *st, size_t last_batch)
{
    struct timespec deadline;

    if (st->closing || last_batch < 4 || st->qlen >= last_batch / 2)
        return;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += STORE_GATHER_NS;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!st->closing && st->qlen < last_batch / 2 &&
           pthread_cond_timedwait(&st->q_work, &st->q_mu, &deadline) == 0)
        ;
}

static void *writer_main(void *p)
{
    struct nhid_store *st = p;
    size_t last_batch = 0;

    for (;;) {
        struct job *batch, *last;
        size_t n = 1;

        pthread_mutex_lock(&st->q_mu);
        while (st->head == NULL && !st->closing)
            pthread_cond_wait(&st->q_work, &st->q_mu);
        if (st->head == NULL) { /* closing and drained */
            pthread_mutex_unlock(&st->q_mu);
            break;
        }
        gather(st, last_batch);
        batch = last = st->head;
        while (last->next && n < STORE_BATCH_MAX) {
            last = last->next;
            n++;
        }
        st->head = last->next;
        if (st->head == NULL)
            st->tail = NULL;
        last->next = NULL;
        st->qlen -= n;
        pthread_cond_broadcast(&st->q_space);
        pthread_mutex_unlock(&st->q_mu);
        last_batch = n;
        run_batch(st, batch);
    }
    return NULL;
}

/*
 * Process-wide SQLite settings, before its first use. Memory statistics
 * off: with them on, every allocation SQLite makes takes one global
 * mutex, shared by the writer and every reader thread (a fifth of the
 * writer's time under a login load). If SQLite was already initialised
 * (another library in the process), the call fails harmlessly.
 */
static pthread_once_t g_sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_global_config(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int nhid_store_open(const struct nhid_store_config *cfg, struct nhid_store **out)
{
    int rc = NHID_OK, fd, src;
    struct nhid_store *st = NULL;
    pthread_condattr_t ca;
    bool mu1 = false, mu2 = false, cv1 = false, cv2 = false;

    if (cfg == NULL || out == NULL || cfg->path == NULL || cfg->path[0] == '\0')
        return NHID_ERR_INVALID;
    if (cfg->backend && strcmp(cfg->backend, "sqlite") != 0) {
        nhid_error(MOD, "storage backend \"%s\" is not available (use \"sqlite\")", cfg->backend);
        return strcmp(cfg->backend, "postgresql") == 0 ? NHID_ERR_UNSUPPORTED : NHID_ERR_INVALID;
    }
    if (sqlite3_threadsafe() == 0) {
        nhid_error(MOD, "SQLite was built without thread support");
        return NHID_ERR_UNSUPPORTED;
    }
    pthread_once(&g_sqlite_once, sqlite_global_config);
    st = calloc(1, sizeof(*st));
    NHID_CHECK_ALLOC(st);
    st->durable = cfg->durable;
    /* Gathering WAL writes needs the WAL synced at every commit (synchronous=FULL). */
    st->vfs = st->durable ? nhid_wal_vfs_name() : NULL;
    st->path = nhid_strdup(cfg->path);
    NHID_CHECK_ALLOC(st->path);
    if (!st->durable)
        nhid_warn(MOD, "%s: durable=false, commits are not fsynced (tests only)", st->path);

    /* Create the file owner-only before SQLite does (its -wal/-shm copy the mode). */
    fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        nhid_error(MOD, "cannot open %s: %m", st->path);
        NHID_FAIL(NHID_ERR_IO);
    }
    close(fd);

    if (pthread_mutex_init(&st->conns_mu, NULL) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    if (pthread_mutex_init(&st->stats_mu, NULL) != 0) {
        pthread_mutex_destroy(&st->conns_mu);
        NHID_FAIL(NHID_ERR_NOMEM);
    }
    mu1 = true;
    if (pthread_mutex_init(&st->q_mu, NULL) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    mu2 = true;
    /* The writer's gather delay uses a monotonic deadline. */
    if (pthread_condattr_init(&ca) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    src = pthread_cond_init(&st->q_work, &ca);
    pthread_condattr_destroy(&ca);
    if (src != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    cv1 = true;
    if (pthread_cond_init(&st->q_space, NULL) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    cv2 = true;
    if (pthread_key_create(&st->tls, conn_thread_exit) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    st->tls_ok = true;

    static atomic_uint_fast64_t instances;
    st->instance = atomic_fetch_add(&instances, 1) + 1;
    st->written = calloc(STORE_WRITTEN_SLOTS, sizeof(*st->written));
    NHID_CHECK_ALLOC(st->written);
    NHID_TRY(conn_open(st, true, &st->wconn));
    NHID_TRY(nhid_checkpointer_start(st->path, st->vfs, &st->ckpt));
    nhid_checkpointer_attach(st->ckpt, st->wconn->db);
    st->wtxn.st = st;
    st->wtxn.c = st->wconn;
    st->wtxn.writable = true;
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    st->writer_started = true;
    *out = st;
    st = NULL;
out:
    if (st) {
        nhid_checkpointer_stop(st->ckpt);
        conn_close(st->wconn);
        if (st->tls_ok)
            pthread_key_delete(st->tls);
        if (cv2)
            pthread_cond_destroy(&st->q_space);
        if (cv1)
            pthread_cond_destroy(&st->q_work);
        if (mu2)
            pthread_mutex_destroy(&st->q_mu);
        if (mu1) {
            pthread_mutex_destroy(&st->stats_mu);
            pthread_mutex_destroy(&st->conns_mu);
        }
        free(st->written);
        free(st->path);
        free(st);
    }
    return rc;
}

/*
 * Callers must have stopped using the store (no read txn open, no thread
 * about to call in); jobs already queued still run and complete.
 */
void nhid_store_close(struct nhid_store *st)
{
    struct conn *c, *next;

    if (st == NULL)
        return;
    pthread_mutex_lock(&st->q_mu);
    st->closing = true;
    pthread_cond_broadcast(&st->q_work);
    pthread_cond_broadcast(&st->q_space);
    pthread_mutex_unlock(&st->q_mu);
    if (st->writer_started)
        pthread_join(st->writer, NULL);
    nhid_checkpointer_stop(st->ckpt);

    /* After the key is deleted no thread-exit destructor runs for it. */
    pthread_key_delete(st->tls);
    pthread_mutex_lock(&st->conns_mu);
    for (c = st->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    st->conns = NULL;
    pthread_mutex_unlock(&st->conns_mu);
    /* Closing the last connection checkpoints the WAL into the database. */
    conn_close(st->wconn);

    pthread_cond_destroy(&st->q_space);
    pthread_cond_destroy(&st->q_work);
    pthread_mutex_destroy(&st->q_mu);
    pthread_mutex_destroy(&st->stats_mu);
    pthread_mutex_destroy(&st->conns_mu);
    free(st->written);
    free(st->path);
    free(st);
}

void nhid_store_get_stats(struct nhid_store *st, struct nhid_store_stats *out)
{
    if (st == NULL || out == NULL)
        return;
    pthread_mutex_lock(&st->stats_mu);
    *out = st->stats;
    pthread_mutex_unlock(&st->stats_mu);
    out->stage_reads_skipped = atomic_load_explicit(&st->reads_skipped, memory_order_relaxed);
    out->checkpoints = nhid_checkpointer_count(st->ckpt);
}

/* ---- reads ---------------------------------------------------------------- */

int nhid_store_read_begin(struct nhid_store *st, struct nhid_txn **out)
{
    int rc = NHID_OK;
    struct conn *c;

    if (st == NULL || out == NULL)
        return NHID_ERR_INVALID;
    c = pthread_getspecific(st->tls);
    if (c == NULL) {
        NHID_TRY(conn_open(st, false, &c));
        if (pthread_setspecific(st->tls, c) != 0) {
            conn_close(c);
            NHID_FAIL(NHID_ERR_NOMEM);
        }
        pthread_mutex_lock(&st->conns_mu);
        c->next = st->conns;
        if (st->conns)
            st->conns->prev = c;
        st->conns = c;
        pthread_mutex_unlock(&st->conns_mu);
    }
    if (c->depth == 0) {
        uint64_t done = atomic_load_explicit(&st->batches_done, memory_order_acquire);
        if (c->lingering && done == c->snap_batches) {
            /* Nothing was written since this snapshot began: it is current. */
            c->lingering = false;
        } else {
            if (c->lingering) {
                c->lingering = false;
                if (stmt_exec(c, S_COMMIT) < 0)
                    (void)stmt_exec(c, S_ROLLBACK);
            }
            /* Read the counter before BEGIN: the snapshot is at least that new. */
            c->snap_batches = done;
            NHID_TRY(stmt_exec(c, S_BEGIN));
        }
    }
    c->depth++;
    *out = &c->txn;
out:
    return rc;
}

void nhid_store_read_end(struct nhid_txn *txn)
{
    struct conn *c;

    if (txn == NULL || txn->writable || txn->stage)
        return;
    c = txn->c;
    if (c->depth == 0)
        return;
    if (--c->depth > 0)
        return;
    if (c->linger) {
        c->lingering = true;
        return;
    }
    if (stmt_exec(c, S_COMMIT) < 0)
        (void)stmt_exec(c, S_ROLLBACK);
}

void nhid_store_read_linger(struct nhid_store *st, bool on)
{
    struct conn *c = st ? pthread_getspecific(st->tls) : NULL;
    if (c == NULL && st && on) {
        struct nhid_txn *t = NULL;
        if (nhid_store_read_begin(st, &t) < 0)
            return;
        nhid_store_read_end(t);
        c = pthread_getspecific(st->tls);
    }
    if (c == NULL)
        return;
    c->linger = on;
    if (!on)
        nhid_store_read_release(st);
}

void nhid_store_thread_done(struct nhid_store *st)
{
    struct conn *c = st ? pthread_getspecific(st->tls) : NULL;
    if (c == NULL || c->depth > 0)
        return;
    (void)pthread_setspecific(st->tls, NULL);
    conn_thread_exit(c);
}

void nhid_store_read_release(struct nhid_store *st)
{
    struct conn *c = st ? pthread_getspecific(st->tls) : NULL;
    if (c == NULL || !c->lingering)
        return;
    c->lingering = false;
    if (stmt_exec(c, S_COMMIT) < 0)
        (void)stmt_exec(c, S_ROLLBACK);
}

/* ---- writes ---------------------------------------------------------------- */

static bool on_writer_thread(struct nhid_store *st)
{
    return st->writer_started && pthread_equal(pthread_self(), st->writer);
}

static int enqueue(struct nhid_store *st, struct job *j)
{
    bool writer = on_writer_thread(st);

    pthread_mutex_lock(&st->q_mu);
    /* Back-pressure; the writer itself (a done() submitting more) never waits. */
    while (!writer && !st->closing && st->qlen >= STORE_QUEUE_MAX)
        pthread_cond_wait(&st->q_space, &st->q_mu);
    if (st->closing) {
        pthread_mutex_unlock(&st->q_mu);
        return NHID_ERR_UNAVAILABLE;
    }
    j->next = NULL;
    if (st->tail)
        st->tail->next = j;
    else
        st->head = j;
    st->tail = j;
    st->qlen++;
    pthread_cond_signal(&st->q_work);
    pthread_mutex_unlock(&st->q_mu);
    return NHID_OK;
}

static int submit(struct nhid_store *st, nhid_store_job_fn fn, nhid_store_done_fn done, void *arg,
                  bool lazy)
{
    struct job *j;
    int rc;

    if (st == NULL)
        return NHID_ERR_INVALID;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NHID_ERR_NOMEM;
    j->fn = fn;
    j->fn_arg = arg;
    j->done = done;
    j->done_arg = arg;
    j->heap = true;
    j->lazy = lazy;
    rc = enqueue(st, j);
    if (rc < 0)
        free(j);
    return rc;
}

int nhid_store_submit(struct nhid_store *st, nhid_store_job_fn fn, nhid_store_done_fn done,
                      void *arg)
{
    return submit(st, fn, done, arg, false);
}

int nhid_store_submit_lazy(struct nhid_store *st, nhid_store_job_fn fn, nhid_store_done_fn done,
                           void *arg)
{
    return submit(st, fn, done, arg, true);
}

int nhid_txn_savepoint(struct nhid_txn *txn)
{
    if (txn == NULL || !txn->writable || txn->stage || txn != &txn->st->wtxn)
        return NHID_ERR_INVALID;
    if (txn->savepoint_open)
        return NHID_OK;
    int rc = stmt_exec(txn->c, S_SAVEPOINT);
    if (rc == NHID_OK)
        txn->savepoint_open = true;
    return rc;
}

struct waiter {
    struct job job;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    int rc;
};

static void waiter_done(int rc, void *arg)
{
    struct waiter *w = arg;

    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->finished = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int nhid_store_write(struct nhid_store *st, nhid_store_job_fn fn, void *arg)
{
    struct waiter w;
    int rc;

    if (st == NULL)
        return NHID_ERR_INVALID;
    /* A job (or done) waiting for the writer it runs on would wait forever. */
    if (on_writer_thread(st)) {
        nhid_error(MOD, "nhid_store_write called from the writer thread (use the job's txn)");
        return NHID_ERR_INTERNAL;
    }
    memset(&w, 0, sizeof(w));
    w.job.fn = fn;
    w.job.fn_arg = arg;
    w.job.done = waiter_done;
    w.job.done_arg = &w;
    if (pthread_mutex_init(&w.mu, NULL) != 0)
        return NHID_ERR_NOMEM;
    if (pthread_cond_init(&w.cv, NULL) != 0) {
        pthread_mutex_destroy(&w.mu);
        return NHID_ERR_NOMEM;
    }
    rc = enqueue(st, &w.job);
    if (rc == NHID_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.finished)
            pthread_cond_wait(&w.cv, &w.mu);
        rc = w.rc;
        pthread_mutex_unlock(&w.mu);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* ---- operations inside a transaction --------------------------------------- */

/* A txn is usable only while open (a read txn between begin and end). */
static bool txn_ok_base(const struct nhid_txn *txn)
{
    return txn && txn->c && (txn->writable || txn->c->depth > 0);
}

/* The key's slot of st->written. */
static size_t written_slot(const char *key)
{
    return (size_t)(store_fnv(STORE_FNV_INIT, key, strlen(key)) & (STORE_WRITTEN_SLOTS - 1));
}

/* A write by the writer's txn: before the statement, so a failed one counts too. */
static void note_written(struct nhid_txn *txn, const char *key)
{
    struct nhid_store *st = txn->st;
    if (txn != &st->wtxn)
        return;
    /*
     * Relaxed: the COMMIT and then the release increment of batches_done
     * come after it, so a reader whose snapshot counter covers this batch
     * (an acquire load) sees it.
     */
    if (key)
        atomic_store_explicit(&st->written[written_slot(key)], st->cur_batch, memory_order_relaxed);
    else
        atomic_store_explicit(&st->range_written, st->cur_batch, memory_order_relaxed);
}

uint64_t store_txn_snapshot_batches(const struct nhid_txn *base)
{
    return base->c->snap_batches;
}

bool nhid_store_unwritten_since(struct nhid_store *st, const char *key, uint64_t stamp)
{
    return st && key && atomic_load_explicit(&st->range_written, memory_order_relaxed) <= stamp &&
           atomic_load_explicit(&st->written[written_slot(key)], memory_order_relaxed) <= stamp;
}

uint64_t nhid_store_instance(const struct nhid_store *st)
{
    return st ? st->instance : 0;
}

bool store_unwritten_since(struct nhid_txn *w, const char *key, uint64_t snap_batches)
{
    struct nhid_store *st = w->st;
    if (w != &st->wtxn || !nhid_store_unwritten_since(st, key, snap_batches))
        return false;
    atomic_fetch_add_explicit(&st->reads_skipped, 1, memory_order_relaxed);
    return true;
}

bool nhid_txn_stamp(const struct nhid_txn *txn, uint64_t *stamp)
{
    if (txn == NULL)
        return false;
    if (txn->stage)
        return stage_stamp(txn->stage, stamp);
    if (txn->writable || txn->c == NULL || txn->c->depth == 0)
        return false; /* the writer's txn sees its batch's own writes: no snapshot */
    *stamp = txn->c->snap_batches;
    return true;
}

bool nhid_txn_wrote(const struct nhid_txn *txn, const char *key)
{
    return txn && txn->stage && key && stage_wrote(txn->stage, key);
}

int nhid_txn_note_read(struct nhid_txn *txn, const char *key, const uint8_t *val, size_t len)
{
    if (txn == NULL || key == NULL)
        return NHID_ERR_INVALID;
    return txn->stage ? stage_note_get(txn->stage, key, val, len) : NHID_OK;
}

bool nhid_txn_writable(const struct nhid_txn *txn)
{
    return txn && txn->writable;
}

int nhid_store_stage_begin(struct nhid_txn *base, struct nhid_txn **out)
{
    if (!txn_ok_base(base) || base->stage || out == NULL)
        return NHID_ERR_INVALID;
    struct nhid_txn *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NHID_ERR_NOMEM;
    t->stage = stage_new(base);
    if (t->stage == NULL) {
        free(t);
        return NHID_ERR_NOMEM;
    }
    t->st = base->st;
    t->writable = true;
    *out = t;
    return NHID_OK;
}

bool nhid_store_stage_usable(const struct nhid_txn *staged)
{
    return staged && stage_usable(staged->stage);
}

size_t nhid_store_stage_writes(const struct nhid_txn *staged)
{
    return staged ? stage_write_count(staged->stage) : 0;
}

int nhid_store_stage_apply(struct nhid_txn *staged, struct nhid_txn *wtxn)
{
    if (staged == NULL || staged->stage == NULL || wtxn == NULL || !wtxn->writable || wtxn->stage)
        return NHID_ERR_INVALID;
    return stage_apply(staged->stage, wtxn);
}

void nhid_store_stage_free(struct nhid_txn *staged)
{
    if (staged == NULL)
        return;
    stage_free(staged->stage);
    free(staged);
}

struct nhid_store *nhid_txn_store(const struct nhid_txn *txn)
{
    return txn ? txn->st : NULL;
}

int nhid_txn_get_with(struct nhid_txn *txn, const char *key, nhid_value_fn fn, void *arg)
{
    int rc = NHID_OK, src;
    sqlite3_stmt *s = NULL;
    bool temp = false;
    size_t klen;
    static const uint8_t empty[1] = {0};

    if (txn && txn->stage)
        return stage_get_with(txn->stage, key, fn, arg);
    if (!txn_ok_base(txn) || fn == NULL)
        return NHID_ERR_INVALID;
    NHID_TRY(key_check(key, &klen));
    NHID_TRY(stmt_acquire(txn->c, S_GET, &s, &temp));
    if ((src = sqlite3_bind_text(s, 1, key, (int)klen, SQLITE_STATIC)) != SQLITE_OK)
        NHID_FAIL(log_sql(txn->c, src, "bind"));
    src = sqlite3_step(s);
    if (src == SQLITE_DONE)
        NHID_FAIL(NHID_ERR_NOT_FOUND);
    if (src != SQLITE_ROW)
        NHID_FAIL(log_sql(txn->c, src, "get"));
    {
        const uint8_t *v = sqlite3_column_blob(s, 0);
        int n = sqlite3_column_bytes(s, 0);
        if (v == NULL && n > 0) /* conversion failed: out of memory */
            NHID_FAIL(NHID_ERR_NOMEM);
        rc = fn(v ? v : empty, (size_t)n, arg);
    }
out:
    stmt_release(s, temp);
    return rc;
}

struct copy_out {
    uint8_t *val;
    size_t len;
};

static int copy_value(const uint8_t *val, size_t len, void *arg)
{
    struct copy_out *o = arg;

    o->val = malloc(len ? len : 1);
    if (o->val == NULL)
        return NHID_ERR_NOMEM;
    memcpy(o->val, val, len);
    o->len = len;
    return NHID_OK;
}

int nhid_txn_get(struct nhid_txn *txn, const char *key, uint8_t **val, size_t *len)
{
    struct copy_out o = {NULL, 0};
    int rc;

    if (val == NULL || len == NULL)
        return NHID_ERR_INVALID;
    rc = nhid_txn_get_with(txn, key, copy_value, &o);
    if (rc < 0) {
        free(o.val);
        return rc;
    }
    *val = o.val;
    *len = o.len;
    return NHID_OK;
}

int nhid_txn_put(struct nhid_txn *txn, const char *key, const uint8_t *val, size_t len)
{
    int rc = NHID_OK, src;
    sqlite3_stmt *s = NULL;
    bool temp = false;
    size_t klen;
    static const uint8_t empty[1] = {0};

    if (txn && txn->stage)
        return stage_put(txn->stage, key, val, len);
    if (txn == NULL || txn->c == NULL)
        return NHID_ERR_INVALID;
    if (!txn->writable)
        return NHID_ERR_INTERNAL;
    if (val == NULL && len > 0)
        return NHID_ERR_INVALID;
    NHID_TRY(key_check(key, &klen));
    if (len > NHID_STORE_VALUE_MAX)
        NHID_FAIL(NHID_ERR_TOO_LARGE);
    NHID_TRY(stmt_acquire(txn->c, S_PUT, &s, &temp));
    /* A non-NULL pointer with length 0 binds an empty blob, not SQL NULL. */
    if ((src = sqlite3_bind_text(s, 1, key, (int)klen, SQLITE_STATIC)) != SQLITE_OK ||
        (src = sqlite3_bind_blob(s, 2, val ? (const void *)val : (const void *)empty, (int)len,
                                 SQLITE_STATIC)) != SQLITE_OK)
        NHID_FAIL(log_sql(txn->c, src, "bind"));
    txn->writes++; /* counted before: a failed statement may have written */
    note_written(txn, key);
    src = sqlite3_step(s);
    if (src != SQLITE_DONE)
        NHID_FAIL(log_sql(txn->c, src, "put"));
out:
    stmt_release(s, temp);
    return rc;
}

int nhid_txn_delete(struct nhid_txn *txn, const char *key)
{
    int rc = NHID_OK, src;
    sqlite3_stmt *s = NULL;
    bool temp = false;
    size_t klen;

    if (txn && txn->stage)
        return stage_delete(txn->stage, key);
    if (txn == NULL || txn->c == NULL)
        return NHID_ERR_INVALID;
    if (!txn->writable)
        return NHID_ERR_INTERNAL;
    NHID_TRY(key_check(key, &klen));
    NHID_TRY(stmt_acquire(txn->c, S_DEL, &s, &temp));
    if ((src = sqlite3_bind_text(s, 1, key, (int)klen, SQLITE_STATIC)) != SQLITE_OK)
        NHID_FAIL(log_sql(txn->c, src, "bind"));
    txn->writes++; /* counted before: a failed statement may have written */
    note_written(txn, key);
    src = sqlite3_step(s);
    if (src != SQLITE_DONE)
        NHID_FAIL(log_sql(txn->c, src, "delete"));
out:
    stmt_release(s, temp);
    return rc;
}

/*
 * Bind [lo, hi) to a range statement: ?1 = lo, hi at parameter hi_idx when
 * present. Bounds are bound SQLITE_STATIC: the caller's buffers outlive
 * the statement's use.
 */
static int bind_range(struct conn *c, sqlite3_stmt *s, const char *lo, size_t lolen, const char *hi,
                      size_t hilen, int hi_idx)
{
    int src = sqlite3_bind_text(s, 1, lo, (int)lolen, SQLITE_STATIC);

    if (src == SQLITE_OK && hi)
        src = sqlite3_bind_text(s, hi_idx, hi, (int)hilen, SQLITE_STATIC);
    return src == SQLITE_OK ? NHID_OK : log_sql(c, src, "bind");
}

static int scan_range(struct nhid_txn *txn, const char *lo, size_t lolen, const char *hi,
                      size_t hilen, size_t limit, bool keys_only, nhid_scan_fn cb, void *arg)
{
    int rc = NHID_OK, src;
    sqlite3_stmt *s = NULL;
    bool temp = false;
    enum stmt_id id = keys_only ? (hi ? S_SCANK_END : S_SCANK) : (hi ? S_SCAN_END : S_SCAN);
    static const uint8_t empty[1] = {0};

    NHID_TRY(stmt_acquire(txn->c, id, &s, &temp));
    NHID_TRY(bind_range(txn->c, s, lo, lolen, hi, hilen, 3));
    /* LIMIT -1 is "no limit" in SQLite. */
    src = sqlite3_bind_int64(s, 2, limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit);
    if (src != SQLITE_OK)
        NHID_FAIL(log_sql(txn->c, src, "bind"));
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        const uint8_t *v = NULL;
        size_t n = 0;

        if (k == NULL)
            NHID_FAIL(NHID_ERR_NOMEM);
        if (!keys_only) {
            v = sqlite3_column_blob(s, 1);
            n = (size_t)sqlite3_column_bytes(s, 1);
            if (v == NULL && n > 0)
                NHID_FAIL(NHID_ERR_NOMEM);
            if (v == NULL)
                v = empty;
        }
        if (cb(k, v, n, arg) != 0)
            goto out; /* stopped by the callback: not an error */
    }
    if (src != SQLITE_DONE)
        NHID_FAIL(log_sql(txn->c, src, "scan"));
out:
    stmt_release(s, temp);
    return rc;
}

int nhid_txn_scan(struct nhid_txn *txn, const char *start, const char *end, size_t limit,
                  bool keys_only, nhid_scan_fn cb, void *arg)
{
    size_t slen = 0, elen = 0;

    if (txn && txn->stage)
        return stage_scan(txn->stage, start, end, limit, keys_only, cb, arg);
    if (!txn_ok_base(txn) || cb == NULL)
        return NHID_ERR_INVALID;
    if (start == NULL)
        start = "";
    slen = strnlen(start, NHID_STORE_KEY_MAX + 1);
    if (slen > NHID_STORE_KEY_MAX)
        return NHID_ERR_TOO_LARGE;
    if (end) {
        elen = strnlen(end, NHID_STORE_KEY_MAX + 1);
        if (elen > NHID_STORE_KEY_MAX)
            return NHID_ERR_TOO_LARGE;
    }
    return scan_range(txn, start, slen, end, elen, limit, keys_only, cb, arg);
}

int nhid_txn_scan_prefix(struct nhid_txn *txn, const char *prefix, const char *after, size_t limit,
                         bool keys_only, nhid_scan_fn cb, void *arg)
{
    char hi[NHID_STORE_KEY_MAX + 1], lo[NHID_STORE_KEY_MAX + 2];
    size_t plen, hilen = 0, lolen;
    bool bounded;
    const char *lop;

    if (txn && txn->stage)
        return stage_scan_prefix(txn->stage, prefix, after, limit, keys_only, cb, arg);
    if (!txn_ok_base(txn) || cb == NULL || prefix == NULL)
        return NHID_ERR_INVALID;
    plen = strnlen(prefix, NHID_STORE_KEY_MAX + 1);
    if (plen > NHID_STORE_KEY_MAX)
        return NHID_ERR_TOO_LARGE;
    bounded = prefix_end(prefix, plen, hi, &hilen);
    lop = prefix;
    lolen = plen;
    if (after) {
        size_t alen = strnlen(after, NHID_STORE_KEY_MAX + 1);
        if (alen > NHID_STORE_KEY_MAX)
            return NHID_ERR_TOO_LARGE;
        /*
         * The least key (no NUL inside) greater than `after` is after||0x01:
         * start there unless the prefix itself starts later.
         */
        memcpy(lo, after, alen);
        lo[alen] = '\x01';
        lo[alen + 1] = '\0';
        if (strcmp(lo, prefix) > 0) {
            lop = lo;
            lolen = alen + 1;
        }
    }
    return scan_range(txn, lop, lolen, bounded ? hi : NULL, hilen, limit, keys_only, cb, arg);
}

int nhid_txn_delete_prefix(struct nhid_txn *txn, const char *prefix, uint64_t *deleted)
{
    int rc = NHID_OK, src;
    sqlite3_stmt *s = NULL;
    bool temp = false, bounded;
    char hi[NHID_STORE_KEY_MAX + 1];
    size_t plen, hilen = 0;

    if (txn && txn->stage)
        return stage_delete_prefix(txn->stage);
    if (txn == NULL || txn->c == NULL || prefix == NULL)
        return NHID_ERR_INVALID;
    if (!txn->writable)
        return NHID_ERR_INTERNAL;
    plen = strnlen(prefix, NHID_STORE_KEY_MAX + 1);
    if (plen > NHID_STORE_KEY_MAX)
        return NHID_ERR_TOO_LARGE;
    bounded = prefix_end(prefix, plen, hi, &hilen);
    NHID_TRY(stmt_acquire(txn->c, bounded ? S_DELR_END : S_DELR, &s, &temp));
    NHID_TRY(bind_range(txn->c, s, prefix, plen, bounded ? hi : NULL, hilen, 2));
    txn->writes++; /* counted before: a failed statement may have written */
    note_written(txn, NULL);
    src = sqlite3_step(s);
    if (src != SQLITE_DONE)
        NHID_FAIL(log_sql(txn->c, src, "delete prefix"));
    if (deleted)
        *deleted = (uint64_t)sqlite3_changes64(txn->c->db);
out:
    stmt_release(s, temp);
    return rc;
}

int nhid_txn_count_prefix(struct nhid_txn *txn, const char *prefix, uint64_t *count)
{
    int rc = NHID_OK, src;
    sqlite3_stmt *s = NULL;
    bool temp = false, bounded;
    char hi[NHID_STORE_KEY_MAX + 1];
    size_t plen, hilen = 0;

    if (txn && txn->stage)
        return stage_count_prefix(txn->stage, prefix, count);
    if (!txn_ok_base(txn) || prefix == NULL || count == NULL)
        return NHID_ERR_INVALID;
    plen = strnlen(prefix, NHID_STORE_KEY_MAX + 1);
    if (plen > NHID_STORE_KEY_MAX)
        return NHID_ERR_TOO_LARGE;
    bounded = prefix_end(prefix, plen, hi, &hilen);
    NHID_TRY(stmt_acquire(txn->c, bounded ? S_COUNT_END : S_COUNT, &s, &temp));
    NHID_TRY(bind_range(txn->c, s, prefix, plen, bounded ? hi : NULL, hilen, 2));
    src = sqlite3_step(s);
    if (src != SQLITE_ROW)
        NHID_FAIL(log_sql(txn->c, src, "count prefix"));
    *count = (uint64_t)sqlite3_column_int64(s, 0);
out:
    stmt_release(s, temp);
    return rc;
}
