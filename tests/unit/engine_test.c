/* engine_test — the per-thread cache of decoded entries (entry_cache.c) on a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core_fixture.h"

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "store/store.h"

static struct nhid_store *st;
static struct nhid_barrier *bar;
static struct nhid_core core;
static struct core_fixture fx;
static uint8_t share[NHID_SHARE_LEN];

static int setup(void **s)
{
    (void)s;
    core_fixture_open(&fx, "engine_test");
    st = fx.st;
    bar = fx.bar;
    core = fx.core;
    memcpy(share, fx.share, sizeof(share));
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    return core_fixture_close(&fx);
}

struct put_arg {
    const char *key;
    const char *json; /* NULL: delete */
};

static int put_job(struct nhid_core *c, struct nhid_txn *txn, void *arg)
{
    struct put_arg *p = arg;
    if (p->json == NULL)
        return nhid_txn_delete(txn, p->key);
    json_t *v = json_loads(p->json, 0, NULL);
    int rc = nhid_core_save_json(c, txn, p->key, v);
    json_decref(v);
    return rc;
}

static void put(const char *key, const char *json)
{
    struct put_arg p = {key, json};
    assert_int_equal(nhid_core_write(&core, put_job, &p), NHID_OK);
}

/* Load through the cache in a fresh read txn; *out as returned. */
static int load_shared(const char *key, json_t **out)
{
    struct nhid_txn *txn = NULL;
    assert_int_equal(nhid_store_read_begin(st, &txn), NHID_OK);
    int rc = nhid_core_load_json_shared(&core, txn, key, out);
    nhid_store_read_end(txn);
    return rc;
}

static void test_hit_returns_the_same_value(void **s)
{
    (void)s;
    put("token/id/a", "{\"n\":1}");
    json_t *v1 = NULL, *v2 = NULL;
    assert_int_equal(load_shared("token/id/a", &v1), NHID_OK);
    assert_int_equal(load_shared("token/id/a", &v2), NHID_OK);
    assert_ptr_equal(v1, v2); /* decoded once, shared */
    assert_int_equal(nhid_json_int(v2, "n"), 1);
    json_decref(v1);
    json_decref(v2);
}

static void test_changed_entry_is_seen_at_once(void **s)
{
    (void)s;
    json_t *v = NULL;
    put("token/id/a", "{\"n\":1}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    json_decref(v);
    put("token/id/a", "{\"n\":2}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    assert_int_equal(nhid_json_int(v, "n"), 2);
    json_decref(v);
    /* The same value written again is new ciphertext: decoded again, still equal. */
    put("token/id/a", "{\"n\":2}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    assert_int_equal(nhid_json_int(v, "n"), 2);
    json_decref(v);
    put("token/id/a", NULL);
    v = NULL;
    assert_int_equal(load_shared("token/id/a", &v), NHID_ERR_NOT_FOUND);
    assert_null(v);
}

static void test_colliding_keys_do_not_mix(void **s)
{
    (void)s;
    /* 300 keys over 256 slots: some share a slot; each must read its own value. */
    char key[64], json[64];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "token/id/k%d", i);
        snprintf(json, sizeof(json), "{\"n\":%d}", i);
        put(key, json);
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 300; i++) {
            json_t *v = NULL;
            snprintf(key, sizeof(key), "token/id/k%d", i);
            assert_int_equal(load_shared(key, &v), NHID_OK);
            assert_int_equal(nhid_json_int(v, "n"), i);
            json_decref(v);
        }
    }
}

static void test_sealed_returns_nothing(void **s)
{
    (void)s;
    json_t *v = NULL;
    put("token/id/a", "{\"n\":1}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    json_decref(v);
    nhid_barrier_seal(bar);
    v = NULL;
    assert_int_equal(load_shared("token/id/a", &v), NHID_ERR_SEALED);
    assert_null(v);
    struct nhid_seal_status ss;
    assert_int_equal(nhid_barrier_unseal(bar, share, NHID_SHARE_LEN, &ss), NHID_OK);
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    assert_int_equal(nhid_json_int(v, "n"), 1);
    json_decref(v);
}

struct raw_put {
    const char *key;
    const uint8_t *val;
    size_t len;
};

static int raw_put_job(struct nhid_txn *txn, void *arg)
{
    struct raw_put *r = arg;
    return nhid_txn_put(txn, r->key, r->val, r->len);
}

static void test_tampered_entry_is_refused(void **s)
{
    (void)s;
    json_t *v = NULL;
    put("token/id/a", "{\"n\":1}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    json_decref(v);
    /* Another key's ciphertext moved under this key fails authentication (AAD = key). */
    put("token/id/b", "{\"n\":9}");
    struct nhid_txn *txn = NULL;
    uint8_t *raw = NULL;
    size_t len = 0;
    assert_int_equal(nhid_store_read_begin(st, &txn), NHID_OK);
    assert_int_equal(nhid_txn_get(txn, "token/id/b", &raw, &len), NHID_OK);
    nhid_store_read_end(txn);
    struct raw_put rp = {"token/id/a", raw, len};
    assert_int_equal(nhid_store_write(st, raw_put_job, &rp), NHID_OK);
    free(raw);
    v = NULL;
    assert_int_equal(load_shared("token/id/a", &v), NHID_ERR_TAMPERED);
    assert_null(v);
}

/*
 * Unwritten since it was read, an entry is served without reading the
 * store at all: a row changed behind the store's back (a second SQLite
 * connection, which nhid never has) is not seen; the store's own write of
 * the key, or of any other key of its hash slot, is seen at once.
 */
static void test_unwritten_entry_is_not_read_again(void **s)
{
    (void)s;
    json_t *v1 = NULL, *v2 = NULL;
    put("token/id/a", "{\"n\":1}");
    put("token/id/b", "{\"n\":9}");
    assert_int_equal(load_shared("token/id/a", &v1), NHID_OK);
    char path[128];
    snprintf(path, sizeof(path), "%s/s.db", fx.dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM kv WHERE key = 'token/id/a'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    put("token/id/b", "{\"n\":10}"); /* another key: the entry stays valid */
    assert_int_equal(load_shared("token/id/a", &v2), NHID_OK);
    assert_ptr_equal(v1, v2);
    json_decref(v2);
    put("token/id/a", "{\"n\":2}"); /* the key itself: read again */
    v2 = NULL;
    assert_int_equal(load_shared("token/id/a", &v2), NHID_OK);
    assert_int_equal(nhid_json_int(v2, "n"), 2);
    json_decref(v1);
    json_decref(v2);
}

/*
 * A store closed and another opened in its place (its barrier and store
 * may reuse the old addresses, its batch counter starts again): entries
 * cached from the first are never taken for the second's.
 */
static void test_entries_do_not_outlive_their_store(void **s)
{
    (void)s;
    json_t *v = NULL;
    for (int i = 0; i < 5; i++)
        put("token/id/other", "{\"n\":0}");
    put("token/id/a", "{\"n\":1}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    json_decref(v);
    assert_int_equal(core_fixture_close(&fx), 0);
    core_fixture_open(&fx, "engine_test");
    st = fx.st;
    bar = fx.bar;
    core = fx.core;
    memcpy(share, fx.share, sizeof(share));
    put("token/id/a", "{\"n\":2}");
    for (int i = 0; i < 10; i++) /* the new store's counter passes the old stamp */
        put("token/id/other", "{\"n\":0}");
    v = NULL;
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    assert_int_equal(nhid_json_int(v, "n"), 2);
    json_decref(v);
}

struct stage_job {
    struct nhid_txn *staged;
};

static int apply_job(struct nhid_txn *txn, void *arg)
{
    struct stage_job *j = arg;
    return nhid_store_stage_apply(j->staged, txn);
}

/*
 * Staged txns: a value served from the cache is still a recorded read (a
 * later change of it is a conflict), and the staged txn's own write is
 * never cached (it is not in the store until the writer applies it).
 */
static void test_staged_reads_through_the_cache(void **s)
{
    (void)s;
    json_t *v = NULL;
    put("token/id/a", "{\"n\":1}");
    assert_int_equal(load_shared("token/id/a", &v), NHID_OK);
    json_decref(v);

    struct nhid_txn *snap = NULL, *stx = NULL;
    assert_int_equal(nhid_store_read_begin(st, &snap), NHID_OK);
    assert_int_equal(nhid_store_stage_begin(snap, &stx), NHID_OK);
    assert_int_equal(nhid_core_load_json_shared(&core, stx, "token/id/a", &v), NHID_OK);
    assert_int_equal(nhid_json_int(v, "n"), 1);
    json_decref(v);
    json_t *mine = json_loads("{\"n\":5}", 0, NULL);
    assert_int_equal(nhid_core_save_json(&core, stx, "token/id/c", mine), NHID_OK);
    json_decref(mine);
    v = NULL;
    assert_int_equal(nhid_core_load_json_shared(&core, stx, "token/id/c", &v), NHID_OK);
    assert_int_equal(nhid_json_int(v, "n"), 5);
    json_decref(v);
    nhid_store_read_end(snap);
    /* Not applied: nobody else sees the staged entry, cached or not. */
    v = NULL;
    assert_int_equal(load_shared("token/id/c", &v), NHID_ERR_NOT_FOUND);
    /* The cached read was recorded: a change since makes the apply a conflict. */
    put("token/id/a", "{\"n\":3}");
    struct stage_job j = {stx};
    assert_int_equal(nhid_store_write(st, apply_job, &j), NHID_ERR_CONFLICT);
    nhid_store_stage_free(stx);
    assert_int_equal(load_shared("token/id/c", &v), NHID_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_returns_the_same_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_entry_is_seen_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_colliding_keys_do_not_mix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_returns_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_entry_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritten_entry_is_not_read_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staged_reads_through_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_do_not_outlive_their_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
