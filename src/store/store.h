/*
 * store — the physical storage interface: an ordered map from text keys
 * to byte values with transactions. Backend now: SQLite in WAL mode with
 * synchronous=FULL (an acknowledged commit survives kill -9 and power
 * loss). The interface is shaped so a PostgreSQL backend drops in later:
 * one table (key TEXT PRIMARY KEY, value BYTEA), ordered range scans,
 * no whole-table scans on hot paths (secondary indexes are ordinary keys,
 * e.g. "idx/lease-expiry/<ts>/<id>").
 *
 * Concurrency model:
 *  - Reads run on the calling thread in a read transaction (a snapshot),
 *    on a per-thread connection; any number of threads read at once.
 *  - Writes run on ONE writer thread as jobs. The writer takes every job
 *    queued, opens one transaction, runs each job inside its own
 *    SAVEPOINT (a failing job rolls back only itself), commits once
 *    (one fsync for the whole batch: group commit), then calls each job's
 *    completion. A job's function may read and write through its txn and
 *    sees the writes of jobs before it in the batch.
 *
 * Values stored here are raw bytes; secrets go through the barrier
 * (barrier.h) which encrypts before calling nhid_txn_put().
 */
#ifndef NHID_STORE_H
#define NHID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define NHID_STORE_KEY_MAX 1024          /* bytes in a key */
#define NHID_STORE_VALUE_MAX (64u << 20) /* bytes in a value */

struct nhid_store;
struct nhid_txn;

struct nhid_store_config {
    const char *backend; /* "sqlite" (default); "postgresql" reserved */
    const char *path;    /* SQLite database file */
    bool durable;        /* true (default): fsync every commit; false only for tests */
};

/* Open (creating if needed) the store. Starts the writer thread. */
NHID_MUST_CHECK int nhid_store_open(const struct nhid_store_config *cfg, struct nhid_store **out);
/* Drain queued jobs, stop the writer, close connections. Safe with NULL. */
void nhid_store_close(struct nhid_store *st);

/* ---- reads (any thread) ------------------------------------------------- */

/* Begin a read-only snapshot on this thread's connection. */
NHID_MUST_CHECK int nhid_store_read_begin(struct nhid_store *st, struct nhid_txn **out);
/* End it (no effect on data). Safe with NULL. */
void nhid_store_read_end(struct nhid_txn *txn);
/*
 * Lingering snapshots, for threads that serve many short reads (the event
 * loops). With linger on, this thread's read txn stays open after its
 * last end, and the next begin reuses it if no write batch has finished
 * since it began, which saves SQLite's BEGIN/COMMIT, its WAL read-lock
 * syscalls and its page-cache revalidation per request. Freshness is the
 * same: a begin after any commit starts a new snapshot. A lingering txn
 * holds back WAL checkpoints, so the thread must call
 * nhid_store_read_release() whenever it goes idle (and at least every few
 * hundred milliseconds).
 */
void nhid_store_read_linger(struct nhid_store *st, bool on);
/* End this thread's lingering read txn, if any. */
void nhid_store_read_release(struct nhid_store *st);
/*
 * Close this thread's read connection (and free its page cache) now
 * rather than at thread exit, for a thread that will not read again for a
 * long time (the server's main thread once it has started). A later read
 * opens a new one. No effect while a read txn is open on this thread.
 */
void nhid_store_thread_done(struct nhid_store *st);

/* ---- writes (group commit) ---------------------------------------------- */

/* Runs on the writer thread inside the batch transaction. Return <0 to roll back this job. */
typedef int (*nhid_store_job_fn)(struct nhid_txn *txn, void *arg);
/* Runs on the writer thread after the commit (rc = job result, or commit error). */
typedef void (*nhid_store_done_fn)(int rc, void *arg);

/* Queue a job; done is called exactly once. Returns an error only if the store is closing. */
NHID_MUST_CHECK int nhid_store_submit(struct nhid_store *st, nhid_store_job_fn fn,
                                      nhid_store_done_fn done, void *arg);
/*
 * As nhid_store_submit, for a job that usually only writes after checks
 * that cannot fail halfway (a staged txn's apply). Every other job runs
 * inside its own SAVEPOINT, which costs a copy of each page it touches
 * first; this one runs without. Before any write it may need undone if it
 * fails afterwards, it calls nhid_txn_savepoint(). If it fails after
 * writing without one, the batch transaction is rolled back: the jobs
 * before it in the batch fail with its error (as when SQLite rolls a
 * transaction back by itself), later ones run in a new transaction.
 */
NHID_MUST_CHECK int nhid_store_submit_lazy(struct nhid_store *st, nhid_store_job_fn fn,
                                           nhid_store_done_fn done, void *arg);
/* In a job of nhid_store_submit_lazy: open the job's savepoint now (no-op if open). */
NHID_MUST_CHECK int nhid_txn_savepoint(struct nhid_txn *txn);
/* Queue a job and block until it is committed (or failed); returns its result. */
NHID_MUST_CHECK int nhid_store_write(struct nhid_store *st, nhid_store_job_fn fn, void *arg);

/* Counters since open (for metrics and the benchmark). */
struct nhid_store_stats {
    uint64_t batches;             /* transactions committed (or failed) by the writer */
    uint64_t jobs;                /* jobs run */
    uint64_t jobs_failed;         /* jobs that returned an error (rolled back to their savepoint) */
    uint64_t commit_errors;       /* batches whose COMMIT failed */
    uint64_t max_batch;           /* largest batch so far */
    uint64_t checkpoints;         /* WAL checkpoints run (off the writer thread) */
    uint64_t stage_reads_skipped; /* staged reads not re-read: unwritten since their snapshot */
};
void nhid_store_get_stats(struct nhid_store *st, struct nhid_store_stats *out);

/* ---- caches of stored values ------------------------------------------------ */

/*
 * A cache of decoded values (engine/entry_cache.c) may skip reading a key
 * it holds when nothing could have written it since:
 *  - nhid_txn_stamp(txn, &stamp): a stamp of what txn's snapshot holds at
 *    least (every write batch up to it). False for the writer's txn,
 *    which sees its own batch's writes and has no snapshot.
 *  - nhid_store_unwritten_since(st, key, stamp): true if no write batch
 *    after `stamp` has written key (or a key sharing its hash slot) or
 *    deleted a range, as far as the calling thread can see; every batch
 *    up to the stamp of any snapshot it has begun is visible to it. So a
 *    value read at stamp s0, checked here against s0 while in a txn with
 *    a stamp >= s0, is the value that txn would read.
 *  - nhid_txn_note_read(txn, key, val, len): a value served from a cache
 *    instead of a read; a staged txn records it for the writer's
 *    validation like any read (NHID_ERR_UNSUPPORTED if the staged txn has
 *    written key itself: read it instead). No-op for other txns.
 */
bool nhid_txn_stamp(const struct nhid_txn *txn, uint64_t *stamp);
/* True if txn is a staged txn holding its own write (or delete) of key: not a snapshot value. */
bool nhid_txn_wrote(const struct nhid_txn *txn, const char *key);
bool nhid_store_unwritten_since(struct nhid_store *st, const char *key, uint64_t stamp);
/* A number no other store opened by this process has had: stamps are only comparable within one. */
uint64_t nhid_store_instance(const struct nhid_store *st);
NHID_MUST_CHECK int nhid_txn_note_read(struct nhid_txn *txn, const char *key, const uint8_t *val,
                                       size_t len);

/* ---- optimistic writes (stage.c) ------------------------------------------ */

/*
 * A staged txn moves a write's CPU work (signing, hashing, encrypting,
 * encoding) off the single writer thread, with optimistic concurrency
 * control:
 *  - nhid_store_stage_begin(base) wraps an open read txn. Through the
 *    staged txn, reads see base's snapshot plus the staged txn's own
 *    writes; puts and deletes are kept in memory; every key read and range
 *    scanned is remembered. nhid_txn_writable() is true.
 *  - nhid_store_stage_apply(staged, wtxn), inside a writer job: if every
 *    remembered read gives the same bytes in wtxn (which sees all commits
 *    and the earlier jobs of its batch), applies the staged writes and
 *    returns NHID_OK; if not, writes nothing and returns NHID_ERR_CONFLICT,
 *    and the caller runs the work again in wtxn.
 * What a staged txn cannot serve exactly (a prefix delete, a scan or count
 * over keys it has written, more than its size bounds) fails with
 * NHID_ERR_UNSUPPORTED and makes nhid_store_stage_usable() false: run the
 * work in a writer job instead. The base txn must stay open while the
 * staged txn reads; apply needs only the staged txn.
 */
NHID_MUST_CHECK int nhid_store_stage_begin(struct nhid_txn *base, struct nhid_txn **out);
bool nhid_store_stage_usable(const struct nhid_txn *staged);
/* Number of keys the staged txn would write or delete. */
size_t nhid_store_stage_writes(const struct nhid_txn *staged);
NHID_MUST_CHECK int nhid_store_stage_apply(struct nhid_txn *staged, struct nhid_txn *wtxn);
/* Free a staged txn (applied or not). Safe with NULL. */
void nhid_store_stage_free(struct nhid_txn *staged);

/* ---- operations inside a transaction ------------------------------------ */

bool nhid_txn_writable(const struct nhid_txn *txn);
struct nhid_store *nhid_txn_store(const struct nhid_txn *txn);

/* *val malloc'd (caller frees; wipe if secret). NHID_ERR_NOT_FOUND if absent. */
NHID_MUST_CHECK int nhid_txn_get(struct nhid_txn *txn, const char *key, uint8_t **val, size_t *len);
/*
 * Zero-copy get: calls fn with the stored value, borrowed from SQLite and
 * valid during the call only (never NULL; len may be 0). Returns
 * NHID_ERR_NOT_FOUND if absent, else fn's return value. fn must not use
 * txn. (Used by the barrier to decrypt straight into its output.)
 */
typedef int (*nhid_value_fn)(const uint8_t *val, size_t len, void *arg);
NHID_MUST_CHECK int nhid_txn_get_with(struct nhid_txn *txn, const char *key, nhid_value_fn fn,
                                      void *arg);
/* Insert or replace. Only in a writable txn (NHID_ERR_INTERNAL otherwise). */
NHID_MUST_CHECK int nhid_txn_put(struct nhid_txn *txn, const char *key, const uint8_t *val,
                                 size_t len);
/* Delete; NHID_OK even if absent. */
NHID_MUST_CHECK int nhid_txn_delete(struct nhid_txn *txn, const char *key);
/* Delete every key starting with prefix; *deleted (optional) gets the count. */
NHID_MUST_CHECK int nhid_txn_delete_prefix(struct nhid_txn *txn, const char *prefix,
                                           uint64_t *deleted);

/*
 * Ordered scan of keys k with start <= k < end (end NULL: no upper bound),
 * at most limit entries (0: no limit). cb gets each key and value (valid
 * during the call only); return nonzero from cb to stop early (not an error).
 * With keys_only the value is NULL.
 */
typedef int (*nhid_scan_fn)(const char *key, const uint8_t *val, size_t len, void *arg);
NHID_MUST_CHECK int nhid_txn_scan(struct nhid_txn *txn, const char *start, const char *end,
                                  size_t limit, bool keys_only, nhid_scan_fn cb, void *arg);

/* Scan every key with the given prefix (in order), starting after `after` if non-NULL. */
NHID_MUST_CHECK int nhid_txn_scan_prefix(struct nhid_txn *txn, const char *prefix,
                                         const char *after, size_t limit, bool keys_only,
                                         nhid_scan_fn cb, void *arg);

/* Count keys with the prefix (uses the index; O(matches)). */
NHID_MUST_CHECK int nhid_txn_count_prefix(struct nhid_txn *txn, const char *prefix,
                                          uint64_t *count);

#endif /* NHID_STORE_H */
