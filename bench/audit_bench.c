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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"

struct flow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long inflight;
    long window;
    long done;
    long failed;
};

struct worker {
    struct nhid_audit *a;
    struct flow *flow;
    long n;
    int id;
};

static void on_done(int rc, void *arg)
{
    struct flow *f = arg;
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    f->done++;
    if (rc != NHID_OK)
        f->failed++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static json_t *record(int id, long i)
{
    char reqid[64], addr[64];
    snprintf(reqid, sizeof(reqid), "7c1e%04x-5b7d-4c11-9e44-%012lx", id & 0xffff, i);
    snprintf(addr, sizeof(addr), "10.%d.%ld.%ld", id, (i >> 8) & 255, i & 255);
    return json_pack("{s:s, s:s, s:{s:s, s:[s, s]}, s:{s:s, s:s, s:s, s:s, s:{s:s}}, "
                     "s:{s:{s:s}}}",
                     "time", "2026-11-23T10:00:00.123456789Z", "type", "response", "auth",
                     "display_name", "approle-ci", "policies", "default", "ci", "request", "id",
                     reqid, "operation", "read", "path", "secret/data/ci/db", "remote_address",
                     addr, "data", "version", "3", "response", "data", "password",
                     "s3cr3t-value-that-is-hmacd");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct flow *f = w->flow;
    for (long i = 0; i < w->n; i++) {
        pthread_mutex_lock(&f->mu);
        while (f->inflight >= f->window)
            pthread_cond_wait(&f->cv, &f->mu);
        f->inflight++;
        pthread_mutex_unlock(&f->mu);
        if (nhid_audit_submit(w->a, record(w->id, i), on_done, f) != NHID_OK) {
            fprintf(stderr, "submit failed\n");
            exit(2);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    long window = argc > 4 ? atol(argv[4]) : 4096;
    char path[512], err[256];
    uint8_t key[32] = {7};
    struct nhid_audit *a = NULL;

    if (n <= 0 || threads <= 0 || threads > 64 || window <= 0) {
        fprintf(stderr, "usage: audit_bench [records] [threads 1-64] [dir] [window]\n");
        return 2;
    }
    nhid_log_set_level(NHID_LOG_WARN);
    snprintf(path, sizeof(path), "%s/nhid-audit-bench-%d.log", dir, (int)getpid());
    unlink(path);
    if (nhid_audit_new(&a) != NHID_OK ||
        nhid_audit_enable_file(a, "file", path, key, "bench", err, sizeof(err)) != NHID_OK) {
        fprintf(stderr, "audit setup failed: %s\n", err);
        return 2;
    }

    struct flow f = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, window, 0, 0};
    struct worker w[64];
    pthread_t th[64];
    int64_t t0 = nhid_mono_ns();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){a, &f, n / threads + (i < n % threads ? 1 : 0), i};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_lock(&f.mu);
    while (f.done < n)
        pthread_cond_wait(&f.cv, &f.mu);
    pthread_mutex_unlock(&f.mu);
    int64_t t1 = nhid_mono_ns();
    nhid_audit_free(a);

    struct stat st;
    stat(path, &st);
    double secs = (double)(t1 - t0) / 1e9;
    printf("audit_bench: %ld records, %d submitting threads, window %ld per thread, file %s\n", n,
           threads, window, path);
    printf("  average line:  %.0f bytes (%.1f MB written)\n", (double)st.st_size / (double)n,
           (double)st.st_size / 1e6);
    printf("  DURABLE APPEND: %.0f records/s  (%.3f s end-to-end, %ld failed)\n",
           (double)n / secs, secs, f.failed);

    for (int round = 1; round <= 2; round++) {
        struct nhid_audit_verify_result res;
        int64_t v0 = nhid_mono_ns();
        int rc = nhid_audit_verify_file(path, &res);
        int64_t v1 = nhid_mono_ns();
        double vs = (double)(v1 - v0) / 1e9;
        printf("  VERIFY (run %d): %.0f records/s  (%llu records, %.3f s, %.0f MB/s) %s\n", round,
               (double)res.records / vs, (unsigned long long)res.records, vs,
               (double)st.st_size / 1e6 / vs, rc == NHID_OK ? "chain OK" : res.problem);
        if (rc != NHID_OK)
            return 1;
    }
    if (getenv("AUDIT_BENCH_KEEP") == NULL)
        unlink(path);
    return f.failed == 0 ? 0 : 1;
}
