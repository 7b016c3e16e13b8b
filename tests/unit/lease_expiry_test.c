/* lease_test — lease ids, credential-id mapping, and the expiry walk on a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_fixture.h"

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "lease/lease.h"
#include "store/store.h"

static void test_id_valid(void **s)
{
    (void)s;
    assert_true(nhid_lease_id_valid("database/creds/ro/abc", false));
    assert_false(nhid_lease_id_valid("database/creds/ro/", false));
    assert_true(nhid_lease_id_valid("database/creds/ro/", true));
    assert_true(nhid_lease_id_valid("database/creds/r", true));
    assert_false(nhid_lease_id_valid("", true));
    assert_false(nhid_lease_id_valid("a//b", true));
    assert_false(nhid_lease_id_valid("../etc", false));
    assert_false(nhid_lease_id_valid("a/./b", false));
    assert_false(nhid_lease_id_valid("a/b c", false));
    assert_false(nhid_lease_id_valid("a/b\n", false));
    assert_false(nhid_lease_id_valid("/a", false));
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(nhid_lease_id_valid(big, false));
}

static void test_id_new_and_cred_id(void **s)
{
    (void)s;
    char id[NHID_LEASE_ID_MAX], id2[NHID_LEASE_ID_MAX], cid[200], back[NHID_LEASE_ID_MAX];
    assert_int_equal(nhid_lease_id_new("database/creds/ro/", id), NHID_OK);
    assert_int_equal(nhid_lease_id_new("database/creds/ro/", id2), NHID_OK);
    assert_int_equal(strlen(id), strlen("database/creds/ro/") + 24);
    assert_string_not_equal(id, id2);
    assert_true(nhid_lease_id_valid(id, false));
    assert_int_equal(nhid_lease_id_new("no-slash", id), NHID_ERR_INVALID);
    assert_int_equal(nhid_lease_id_new("../x/", id), NHID_ERR_INVALID);
    assert_int_equal(nhid_lease_id_new("database/creds/ro/", id), NHID_OK);
    assert_int_equal(nhid_lease_cred_id(id, cid, sizeof(cid)), NHID_OK);
    assert_null(strchr(cid, '/'));
    assert_int_equal(nhid_lease_from_cred_id(cid, back), NHID_OK);
    assert_string_equal(back, id);
    assert_int_equal(nhid_lease_from_cred_id("not a lease!", back), NHID_ERR_INVALID);
}

/* ---- store-backed ------------------------------------------------------------ */

static struct nhid_store *st;
static struct nhid_barrier *bar;
static struct nhid_core core;
static struct core_fixture fx;
static int revoke_calls, fail_revokes;
static const struct nhid_engine *const engines[] = {&nhid_lease_engine};

static int t_revoke(struct nhid_core *c, const json_t *lease, char *err, size_t errlen)
{
    (void)c;
    (void)lease;
    revoke_calls++;
    if (fail_revokes) {
        snprintf(err, errlen, "database unreachable (test)");
        return NHID_ERR_UPSTREAM;
    }
    return NHID_OK;
}

static const struct nhid_lease_type t_type = {.prefix = "test/creds/", .revoke = t_revoke};

static int setup(void **s)
{
    (void)s;
    core_fixture_open(&fx, "lease_test");
    st = fx.st;
    bar = fx.bar;
    core = fx.core;
    core.engines = engines;
    core.n_engines = 1;
    assert_int_equal(nhid_lease_register_type(&t_type), NHID_OK);
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    return core_fixture_close(&fx);
}

struct mk {
    const char *id;
    int64_t ttl;
};

static int mk_txn(struct nhid_core *c, struct nhid_txn *txn, void *arg)
{
    struct mk *m = arg;
    struct nhid_lease_params p = {.id = m->id, .engine = "test", .ttl = m->ttl, .renewable = true};
    return nhid_lease_create(c, txn, &p, NULL);
}

static int sched_txn(struct nhid_core *c, struct nhid_txn *txn, void *arg)
{
    return nhid_lease_schedule_revoke(c, txn, arg);
}

static bool exists(const char *id)
{
    struct nhid_txn *txn = NULL;
    json_t *l = NULL;
    assert_int_equal(nhid_store_read_begin(st, &txn), NHID_OK);
    int rc = nhid_lease_get(&core, txn, id, &l);
    nhid_store_read_end(txn);
    json_decref(l);
    return rc == NHID_OK;
}

static void test_expiry_walk(void **s)
{
    (void)s;
    struct mk a = {"test/creds/r/due", 1}, b = {"test/creds/r/later", 3600};
    assert_int_equal(nhid_core_write(&core, mk_txn, &a), NHID_OK);
    assert_int_equal(nhid_core_write(&core, mk_txn, &b), NHID_OK);
    size_t n = 99;
    revoke_calls = 0;
    assert_int_equal(nhid_lease_expire_due(&core, 4, &n), NHID_OK);
    assert_int_equal(n, 0); /* nothing due yet */
    sleep(2);
    assert_int_equal(nhid_lease_expire_due(&core, 4, &n), NHID_OK);
    assert_int_equal(n, 1);
    assert_int_equal(revoke_calls, 1);
    assert_false(exists(a.id));
    assert_true(exists(b.id));
}

static void test_failed_revoke_is_retried(void **s)
{
    (void)s;
    struct mk a = {"test/creds/r/flaky", 3600};
    char err[256] = "";
    assert_int_equal(nhid_core_write(&core, mk_txn, &a), NHID_OK);
    fail_revokes = 1;
    assert_int_equal(nhid_lease_revoke(&core, a.id, err, sizeof(err)), NHID_ERR_UPSTREAM);
    assert_non_null(strstr(err, "unreachable"));
    assert_true(exists(a.id)); /* kept, rescheduled with back-off */
    struct nhid_txn *txn = NULL;
    json_t *l = NULL;
    assert_int_equal(nhid_store_read_begin(st, &txn), NHID_OK);
    assert_int_equal(nhid_lease_get(&core, txn, a.id, &l), NHID_OK);
    nhid_store_read_end(txn);
    assert_int_equal(json_integer_value(json_object_get(l, "attempts")), 1);
    assert_true(json_integer_value(json_object_get(l, "due")) <= nhid_now() + 2);
    json_decref(l);
    fail_revokes = 0;
    assert_int_equal(nhid_lease_revoke(&core, a.id, err, sizeof(err)), NHID_OK);
    assert_false(exists(a.id));
    /* Unknown leases revoke as a no-op. */
    assert_int_equal(nhid_lease_revoke(&core, "test/creds/r/none", err, sizeof(err)), NHID_OK);
}

static void test_schedule_revoke(void **s)
{
    (void)s;
    struct mk a = {"test/creds/r/decom", 3600};
    assert_int_equal(nhid_core_write(&core, mk_txn, &a), NHID_OK);
    assert_int_equal(nhid_core_write(&core, sched_txn, (void *)a.id), NHID_OK);
    size_t n = 0;
    revoke_calls = 0;
    assert_int_equal(nhid_lease_expire_due(&core, 4, &n), NHID_OK);
    assert_int_equal(n, 1);
    assert_false(exists(a.id));
    /* Scheduling an unknown lease is a no-op. */
    assert_int_equal(nhid_core_write(&core, sched_txn, (void *)"test/creds/r/gone"), NHID_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_id_new_and_cred_id),
        cmocka_unit_test_setup_teardown(test_expiry_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_revoke_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_revoke, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
