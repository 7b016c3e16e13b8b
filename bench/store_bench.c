/*
 * store_bench — throughput of the SQLite store (durable, synchronous=FULL)
 * and the barrier data path. Prints figures; asserts nothing.
 *
 *   store_bench [dir] [seconds-per-phase]
 *
 * Phases:
 *  (a) durable single-put jobs/s, 64 threads each calling nhid_store_write()
 *  (b) durable single-put jobs/s, async nhid_store_submit() from one thread
 *  (c) point reads/s (read txn + get) from 1 and 4 threads
 *  (d) barrier get (read + AES-256-GCM open) per second, 4 threads
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define NKEYS 100000
#define VALUE_LEN 200

static struct nhid_store *st;
static struct nhid_barrier *bar;
static double phase_seconds = 3.0;
static atomic_long counter;
static atomic_bool stop_flag;
static uint8_t value[VALUE_LEN];

static double now_s(void)
{
    return (double)nhid_mono_ns() / 1e9;
}

struct put_arg {
    char key[32];
};

static int put_one(struct nhid_txn *txn, void *arg)
{
    struct put_arg *p = arg;
    return nhid_txn_put(txn, p->key, value, sizeof(value));
}

static void *writer_thread(void *p)
{
    long id = (long)(intptr_t)p, n = 0;
    struct put_arg a;

    while (!atomic_load(&stop_flag)) {
        snprintf(a.key, sizeof(a.key), "bench/w/%02ld/%08ld", id, n++);
        if (nhid_store_write(st, put_one, &a) != NHID_OK) {
            fprintf(stderr, "write failed\n");
            exit(1);
        }
        atomic_fetch_add(&counter, 1);
    }
    return NULL;
}

static double run_threads(void *(*fn)(void *), int nthreads)
{
    pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
    double t0, t1;

    atomic_store(&counter, 0);
    atomic_store(&stop_flag, false);
    t0 = now_s();
    for (long i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i);
    usleep((useconds_t)(phase_seconds * 1e6));
    atomic_store(&stop_flag, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    t1 = now_s();
    free(th);
    return (double)atomic_load(&counter) / (t1 - t0);
}

/* ---- async submit ---------------------------------------------------------------- */

static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t async_cv = PTHREAD_COND_INITIALIZER;
static long async_done, async_total;

static int async_put(struct nhid_txn *txn, void *arg)
{
    char key[32];
    snprintf(key, sizeof(key), "bench/a/%08ld", (long)(intptr_t)arg);
    return nhid_txn_put(txn, key, value, sizeof(value));
}

static void async_complete(int rc, void *arg)
{
    (void)arg;
    if (rc != NHID_OK) {
        fprintf(stderr, "async job failed: %s\n", nhid_strerror(rc));
        exit(1);
    }
    pthread_mutex_lock(&async_mu);
    if (++async_done % 1024 == 0 || async_done == async_total)
        pthread_cond_signal(&async_cv);
    pthread_mutex_unlock(&async_mu);
}

static double run_async(long total)
{
    double t0 = now_s(), t1;

    async_done = 0;
    async_total = total;
    for (long i = 0; i < total; i++)
        if (nhid_store_submit(st, async_put, async_complete, (void *)(intptr_t)i) != NHID_OK)
            exit(1);
    pthread_mutex_lock(&async_mu);
    while (async_done < total)
        pthread_cond_wait(&async_cv, &async_mu);
    pthread_mutex_unlock(&async_mu);
    t1 = now_s();
    return (double)total / (t1 - t0);
}

/* ---- reads ------------------------------------------------------------------------- */

static int fill_job(struct nhid_txn *txn, void *arg)
{
    char key[32];
    long base = (long)(intptr_t)arg;
    for (long i = base; i < base + 10000 && i < NKEYS; i++) {
        int rc;
        snprintf(key, sizeof(key), "bench/r/%08ld", i);
        if ((rc = nhid_txn_put(txn, key, value, sizeof(value))) < 0)
            return rc;
    }
    return NHID_OK;
}

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void *reader_thread(void *p)
{
    unsigned seed = (unsigned)(uintptr_t)p * 7919u + 1;
    char key[32];
    long n = 0;

    while (!atomic_load(&stop_flag)) {
        struct nhid_txn *txn = NULL;
        uint8_t *v = NULL;
        size_t len = 0;
        snprintf(key, sizeof(key), "bench/r/%08u", rnd(&seed) % NKEYS);
        if (nhid_store_read_begin(st, &txn) != NHID_OK || nhid_txn_get(txn, key, &v, &len) != 0) {
            fprintf(stderr, "read failed\n");
            exit(1);
        }
        nhid_store_read_end(txn);
        free(v);
        n++;
    }
    atomic_fetch_add(&counter, n);
    return NULL;
}

static int bfill_job(struct nhid_txn *txn, void *arg)
{
    char key[32];
    (void)arg;
    for (long i = 0; i < 10000; i++) {
        int rc;
        snprintf(key, sizeof(key), "bench/b/%08ld", i);
        if ((rc = nhid_barrier_put(bar, txn, key, value, sizeof(value))) < 0)
            return rc;
    }
    return NHID_OK;
}

static void *barrier_reader(void *p)
{
    unsigned seed = (unsigned)(uintptr_t)p * 31u + 3;
    char key[32];
    long n = 0;

    while (!atomic_load(&stop_flag)) {
        struct nhid_txn *txn = NULL;
        uint8_t *v = NULL;
        size_t len = 0;
        snprintf(key, sizeof(key), "bench/b/%08u", rnd(&seed) % 10000);
        if (nhid_store_read_begin(st, &txn) != NHID_OK ||
            nhid_barrier_get(bar, txn, key, &v, &len) != 0) {
            fprintf(stderr, "barrier read failed\n");
            exit(1);
        }
        nhid_store_read_end(txn);
        nhid_free_secret(v, len);
        n++;
    }
    atomic_fetch_add(&counter, n);
    return NULL;
}

static void cleanup_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    char dir[256], path[300], err[128];
    struct nhid_store_config cfg;
    uint8_t **shares = NULL;
    double r;
    struct nhid_store_stats s0, s1;

    snprintf(dir, sizeof(dir), "%s/nhid-bench-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    if (argc > 2)
        phase_seconds = atof(argv[2]);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    memset(value, 'v', sizeof(value));
    cfg = (struct nhid_store_config){.backend = "sqlite", .path = path, .durable = true};
    if (nhid_store_open(&cfg, &st) != NHID_OK)
        return 1;
    printf("store_bench: %s, durable (synchronous=FULL), %d-byte values, %.1fs per phase\n",
           path, VALUE_LEN, phase_seconds);

    r = run_threads(writer_thread, 1);
    printf("(a0) durable puts, 1 thread, nhid_store_write:    %10.0f jobs/s\n", r);
    nhid_store_get_stats(st, &s0);
    r = run_threads(writer_thread, 64);
    nhid_store_get_stats(st, &s1);
    printf("(a)  durable puts, 64 threads, nhid_store_write:  %10.0f jobs/s  (%.1f jobs/commit)\n",
           r, (double)(s1.jobs - s0.jobs) / (double)(s1.batches - s0.batches));
    r = run_async(100000);
    nhid_store_get_stats(st, &s0);
    printf("(b)  durable puts, async nhid_store_submit x100k: %10.0f jobs/s  (%.1f jobs/commit)\n",
           r, (double)(s0.jobs - s1.jobs) / (double)(s0.batches - s1.batches));

    for (long base = 0; base < NKEYS; base += 10000)
        if (nhid_store_write(st, fill_job, (void *)(intptr_t)base) != NHID_OK)
            return 1;
    r = run_threads(reader_thread, 1);
    printf("(c1) point reads (txn+get), 1 thread:             %10.0f reads/s\n", r);
    r = run_threads(reader_thread, 4);
    printf("(c4) point reads (txn+get), 4 threads:            %10.0f reads/s\n", r);

    if (nhid_barrier_new(st, &bar) != NHID_OK ||
        nhid_barrier_init(bar, 1, 1, &shares, err, sizeof(err)) != NHID_OK ||
        nhid_barrier_unseal_with_root_key(bar, shares[0] + 1) != NHID_OK)
        return 1;
    nhid_shamir_free_shares(shares, 1, NHID_SHARE_LEN);
    if (nhid_store_write(st, bfill_job, NULL) != NHID_OK)
        return 1;
    r = run_threads(barrier_reader, 1);
    printf("(d1) barrier get (txn+get+GCM open), 1 thread:    %10.0f reads/s\n", r);
    r = run_threads(barrier_reader, 4);
    printf("(d4) barrier get (txn+get+GCM open), 4 threads:   %10.0f reads/s\n", r);

    nhid_barrier_free(bar);
    nhid_store_close(st);
    cleanup_dir(dir);
    return 0;
}
