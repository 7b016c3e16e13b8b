/*
 * lease_start_bench — what live leases cost at start-up (docs/leases.md).
 *
 *   lease_start_bench [N] [dir]      (default N = 1000000, dir = a new temp dir)
 *
 * Bulk-loads N leases through the store (nhid_lease_create in batches of
 * 10,000 per transaction, barrier-encrypted as the server writes them;
 * the first 1,000 with a 1-second TTL so they are due), then measures,
 * for that store and for an empty one: open the store + unseal the
 * barrier + the first run of the lease expiry job (which revokes the due
 * 1,000 through a registered lease type). The difference is what the
 * leases add to start-up. Target: ≤ 1 s for 1,000,000 live leases.
 * Prints figures; asserts nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "lease/lease.h"
#include "store/store.h"

#define BATCH 10000
#define DUE 1000

static long g_revoked;

static int bench_revoke(struct nhid_core *core, const json_t *lease, char *err, size_t errlen)
{
    (void)core;
    (void)lease;
    (void)err;
    (void)errlen;
    g_revoked++;
    return NHID_OK;
}

static const struct nhid_lease_type bench_type = {.prefix = "bench/creds/",
                                                  .revoke = bench_revoke};

static const struct nhid_engine *const engines[] = {&nhid_lease_engine};

struct load_ctx {
    long from, to;
};

static int load_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct load_ctx *c = arg;
    json_t *data = json_pack("{s:s, s:s}", "db_name", "pg", "username", "v-bench-0123456789");
    int rc = NHID_OK;
    for (long i = c->from; i < c->to && rc == NHID_OK; i++) {
        char id[NHID_LEASE_ID_MAX];
        rc = nhid_lease_id_new("bench/creds/role/", id);
        if (rc < 0)
            break;
        struct nhid_lease_params p = {.id = id,
                                      .engine = "bench",
                                      .ttl = i < DUE ? 1 : 3600 + (i % 86400),
                                      .max_ttl = 7 * 86400,
                                      .renewable = true,
                                      .data = data};
        rc = nhid_lease_create(core, txn, &p, NULL);
    }
    json_decref(data);
    return rc;
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* Open + unseal + first expiry run; returns seconds, or < 0 on failure. */
static double start_once(const char *path, const uint8_t *share, long *revoked)
{
    int64_t t0 = nhid_mono_ns();
    struct nhid_store *st = NULL;
    struct nhid_barrier *b = NULL;
    struct nhid_seal_status ss;
    struct nhid_store_config cfg = {.backend = "sqlite", .path = path, .durable = true};
    if (nhid_store_open(&cfg, &st) < 0 || nhid_barrier_new(st, &b) < 0 ||
        nhid_barrier_unseal(b, share, NHID_SHARE_LEN, &ss) < 0 || ss.sealed) {
        fprintf(stderr, "open/unseal failed\n");
        return -1;
    }
    struct nhid_core core = {.store = st, .barrier = b, .engines = engines, .n_engines = 1};
    int64_t t1 = nhid_mono_ns();
    size_t n = 0;
    if (nhid_lease_expire_due(&core, 64, &n) < 0) {
        fprintf(stderr, "expiry run failed\n");
        return -1;
    }
    int64_t t2 = nhid_mono_ns();
    *revoked = (long)n;
    printf("    open+unseal %.3f s, first expiry run %.3f s (revoked %zu)\n", secs(t1 - t0),
           secs(t2 - t1), n);
    nhid_barrier_free(b);
    nhid_store_close(st);
    return secs(t2 - t0);
}

/* Create a store with N leases; *share gets the unseal key share. */
static int make_store(const char *path, long n, uint8_t share[NHID_SHARE_LEN])
{
    struct nhid_store *st = NULL;
    struct nhid_barrier *b = NULL;
    uint8_t **shares = NULL;
    struct nhid_seal_status ss;
    char err[256];
    struct nhid_store_config cfg = {.backend = "sqlite", .path = path, .durable = false};
    if (nhid_store_open(&cfg, &st) < 0 || nhid_barrier_new(st, &b) < 0 ||
        nhid_barrier_init(b, 1, 1, &shares, err, sizeof(err)) < 0)
        return -1;
    memcpy(share, shares[0], NHID_SHARE_LEN);
    nhid_shamir_free_shares(shares, 1, NHID_SHARE_LEN);
    if (nhid_barrier_unseal(b, share, NHID_SHARE_LEN, &ss) < 0)
        return -1;
    struct nhid_core core = {.store = st, .barrier = b, .engines = engines, .n_engines = 1};
    int64_t t0 = nhid_mono_ns();
    for (long i = 0; i < n; i += BATCH) {
        struct load_ctx c = {i, i + BATCH < n ? i + BATCH : n};
        if (nhid_core_write(&core, load_txn, &c) < 0) {
            fprintf(stderr, "load failed at %ld\n", i);
            return -1;
        }
    }
    if (n)
        printf("  loaded %ld leases in %.1f s\n", n, secs(nhid_mono_ns() - t0));
    nhid_barrier_free(b);
    nhid_store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    char dir[512];
    if (argc > 2) {
        snprintf(dir, sizeof(dir), "%s", argv[2]);
    } else {
        snprintf(dir, sizeof(dir), "/tmp/lease_start_bench.XXXXXX");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
    }
    if (nhid_lease_register_type(&bench_type) < 0)
        return 1;
    char full[600], empty[600];
    snprintf(full, sizeof(full), "%s/full.db", dir);
    snprintf(empty, sizeof(empty), "%s/empty.db", dir);
    uint8_t share_full[NHID_SHARE_LEN], share_empty[NHID_SHARE_LEN];
    printf("lease_start_bench: %ld live leases (%d due) in %s\n", n, n < DUE ? (int)n : DUE, dir);
    if (make_store(full, n, share_full) < 0 || make_store(empty, 0, share_empty) < 0)
        return 1;
    sleep(2); /* the 1-second leases become due */
    long rv_full = 0, rv_empty = 0;
    printf("  empty store:\n");
    double te = start_once(empty, share_empty, &rv_empty);
    printf("  store with %ld leases:\n", n);
    double tf = start_once(full, share_full, &rv_full);
    if (te < 0 || tf < 0)
        return 1;
    printf("start-up (open + unseal + first expiry run): empty %.3f s, with %ld leases %.3f s "
           "-> leases add %.3f s (first run revoked %ld due leases)\n",
           te, n, tf, tf - te, rv_full);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "du -sh %s/full.db | cut -f1", dir);
    printf("  store size: ");
    fflush(stdout);
    if (system(cmd) != 0)
        printf("?\n");
    if (argc <= 2) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}
