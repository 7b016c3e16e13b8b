/*
 * core_fixture.h — for unit tests that need a real engine core: an SQLite
 * store in a fresh temporary directory and a barrier initialised with one
 * share and unsealed. Header-only: each test binary is built on its own.
 * Include after <cmocka.h>.
 */
#ifndef NHID_TESTS_CORE_FIXTURE_H
#define NHID_TESTS_CORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "store/store.h"

struct core_fixture {
    char dir[64];
    struct nhid_store *st;
    struct nhid_barrier *bar;
    struct nhid_core core; /* store and barrier set; the rest zero */
    uint8_t share[NHID_SHARE_LEN];
};

/* name: a short tag for the directory, "/tmp/<name>.XXXXXX". */
static inline void core_fixture_open(struct core_fixture *f, const char *name)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/%s.XXXXXX", name);
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/s.db", f->dir);
    struct nhid_store_config cfg = {.backend = "sqlite", .path = path, .durable = false};
    assert_int_equal(nhid_store_open(&cfg, &f->st), NHID_OK);
    assert_int_equal(nhid_barrier_new(f->st, &f->bar), NHID_OK);
    uint8_t **shares = NULL;
    char err[128];
    struct nhid_seal_status ss;
    assert_int_equal(nhid_barrier_init(f->bar, 1, 1, &shares, err, sizeof(err)), NHID_OK);
    memcpy(f->share, shares[0], NHID_SHARE_LEN);
    assert_int_equal(nhid_barrier_unseal(f->bar, shares[0], NHID_SHARE_LEN, &ss), NHID_OK);
    nhid_shamir_free_shares(shares, 1, NHID_SHARE_LEN);
    f->core.store = f->st;
    f->core.barrier = f->bar;
}

/* 0 when the directory was removed. */
static inline int core_fixture_close(struct core_fixture *f)
{
    nhid_barrier_free(f->bar);
    nhid_store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
