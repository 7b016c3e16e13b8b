/*
 * audit_bench — end-to-end durable append rate of the audit file device,
 * and the verify rate on the file it produced.
 *
 *   audit_bench [records=1000000] [threads=4] [dir=/tmp] [window=4096]
 *
 * Each submitting thread keeps at most `window` records in flight (like
 * concurrent requests waiting for their audit record); the figure is the
 * number of records whose done(NHID_OK) arrived - i.e. that are on disk
 * after fdatasync - divided by the time from the first submit to the
 * last completion. Records carry secret-bearing fields, so HMAC is
 * included; lines are ~400 bytes.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"

/* Per submitting thread: at most `window` records in flight. */
struct flow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long inflight;
    long window;
    long done;
    long failed;
    bool waiting;
};

struct worker {
    struct nhid_audit *a;
    struct flow flow;
    long n;
    int id;
    bool prebuilt;
    json_t **pool;
    pthread_t th;
};

#define POOL 4096

static void on_done(int rc, void *arg)
{
    struct flow *f = arg;
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    f->done++;
    if (rc != NHID_OK)
        f->failed++;
    /* Wake the submitter when half the window is free (or at the end). */
    if (f->waiting && (f->inflight <= f->window / 2 || f->inflight == 0))
        pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static json_t *record(int id, long i)
{
    char reqid[64], addr[64];
    snprintf(reqid, sizeof(reqid), "7c1e%04x-5b7d-4c11-9e44-%012lx", id & 0xffff, i);
    snprintf(addr, sizeof(addr), "10.%d.%ld.%ld", id, (i >> 8) & 255, i & 255);
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:{s:s}}}", "time",
                     "2026-11-23T10:00:00Z", "type", "response", "request", "id", reqid,
                     "operation", "read", "path", "secret/data/ci/db", "remote_address", addr,
                     "response", "data", "password", "s3cr3t-value-that-is-hmacd");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct flow *f = &w->flow;
    for (long i = 0; i < w->n; i++) {
        pthread_mutex_lock(&f->mu);
        while (f->inflight >= f->window) {
            f->waiting = true;
            pthread_cond_wait(&f->cv, &f->mu);
            f->waiting = false;
        }
        f->inflight++;
        pthread_mutex_unlock(&f->mu);
        json_t *r = w->prebuilt ? json_incref(w->pool[i % POOL]) : record(w->id, i);
        if (nhid_audit_submit(w->a, r, on_done, f) != NHID_OK) {
            fprintf(stderr, "submit failed\n");
            exit(2);
        }
    }
    pthread_mutex_lock(&f->mu);
    while (f->inflight > 0) {
        f->waiting = true;
        pthread_cond_wait(&f->cv, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Append n records from `threads` threads; returns records/s durable, or -1. */
static double run(const char *path, long n, int threads, long window, bool prebuilt,
                  long *failed)
{
    uint8_t key[32] = {7};
    char err[256];
    struct nhid_audit *a = NULL;
    struct worker *w = calloc((size_t)threads, sizeof(*w));

    if (w == NULL || nhid_audit_new(&a) != NHID_OK ||
        nhid_audit_enable_file(a, "file", path, key, "bench", err, sizeof(err)) != NHID_OK) {
        fprintf(stderr, "audit setup failed: %s\n", err);
        exit(2);
    }
    for (int i = 0; i < threads; i++) {
        w[i].a = a;
        w[i].n = n / threads + (i < n % threads ? 1 : 0);
        w[i].id = i;
        w[i].prebuilt = prebuilt;
        pthread_mutex_init(&w[i].flow.mu, NULL);
        pthread_cond_init(&w[i].flow.cv, NULL);
        w[i].flow.window = window;
        if (prebuilt) {
            /* Records as the HTTP pipeline would hand them over, built untimed. */
            w[i].pool = calloc(POOL, sizeof(json_t *));
            for (long j = 0; j < POOL; j++)
                w[i].pool[j] = record(i, j);
        }
    }
    int64_t t0 = nhid_mono_ns();
    for (int i = 0; i < threads; i++)
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(w[i].th, NULL);
    int64_t t1 = nhid_mono_ns();
    *failed = 0;
    for (int i = 0; i < threads; i++) {
        *failed += w[i].flow.failed;
        if (w[i].pool != NULL)
            for (long j = 0; j < POOL; j++)
                json_decref(w[i].pool[j]);
        free(w[i].pool);
    }
    nhid_audit_free(a);
    free(w);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    long window = argc > 4 ? atol(argv[4]) : 4096;
    char path[512];
    long failed = 0;

    if (n <= 0 || threads <= 0 || threads > 64 || window <= 0) {
        fprintf(stderr, "usage: audit_bench [records] [threads 1-64] [dir] [window]\n");
        return 2;
    }
    nhid_log_set_level(NHID_LOG_WARN);
    snprintf(path, sizeof(path), "%s/nhid-audit-bench-%d.log", dir, (int)getpid());
    unlink(path);

    printf("audit_bench: %ld records per run, %d submitting threads, window %ld per thread\n",
           n, threads, window);
    printf("  file %s (fdatasync per batch)\n", path);
    double pre = run(path, n, threads, window, true, &failed);
    struct stat st;
    stat(path, &st);
    printf("  average line:  %.0f bytes\n", (double)st.st_size / (double)n);
    printf("  DURABLE APPEND (records pre-built):       %8.0f records/s  (%ld failed)\n", pre,
           failed);
    if (failed != 0)
        return 1;
    double built = run(path, n, threads, window, false, &failed);
    printf("  DURABLE APPEND (json_pack per submit too): %8.0f records/s  (%ld failed)\n", built,
           failed);
    if (failed != 0)
        return 1;

    stat(path, &st);
    for (int round = 1; round <= 3; round++) {
        struct nhid_audit_verify_result res;
        int64_t v0 = nhid_mono_ns();
        int rc = nhid_audit_verify_file(path, &res);
        int64_t v1 = nhid_mono_ns();
        double vs = (double)(v1 - v0) / 1e9;
        printf("  VERIFY run %d: %10.0f records/s  (%llu records, %.1f MB, %.3f s, %.0f MB/s) %s\n",
               round, (double)res.records / vs, (unsigned long long)res.records,
               (double)st.st_size / 1e6, vs, (double)st.st_size / 1e6 / vs,
               rc == NHID_OK ? "chain OK" : res.problem);
        if (rc != NHID_OK)
            return 1;
    }
    if (getenv("AUDIT_BENCH_KEEP") == NULL)
        unlink(path);
    return 0;
}
