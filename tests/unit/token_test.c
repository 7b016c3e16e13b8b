/*
 * token_test — the token layout (src/auth/token/token.c): time-ordered
 * handles and accessors, authentication by the new and the earlier layout,
 * and tampered tokens refused. Runs the token engine on a real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_fixture.h"

#include "auth/token/token.h"
#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "store/store.h"

static struct nhid_store *st;
static struct nhid_barrier *bar;
static struct nhid_core core;
static const struct nhid_engine *const engines[] = {&nhid_token_engine};
static struct core_fixture fx;

static int setup(void **s)
{
    (void)s;
    core_fixture_open(&fx, "token_test");
    st = fx.st;
    bar = fx.bar;
    core = fx.core;
    core.engines = engines;
    core.n_engines = 1;
    assert_int_equal(nhid_token_engine.on_unseal(&core), NHID_OK);
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    nhid_token_engine.on_seal(&core);
    free(core.engine_state[0]);
    return core_fixture_close(&fx);
}

struct created {
    char token[NHID_TOKEN_MAX];
    char accessor[64];
};

static int create_job(struct nhid_core *c, struct nhid_txn *txn, void *arg)
{
    struct created *out = arg;
    json_t *pol = json_pack("[s]", "default");
    json_t *auth = NULL;
    struct nhid_token_params p = {.policies = pol, .ttl = 600, .display_name = "t"};
    int rc = nhid_token_create(c, txn, &p, out->token, &auth);
    if (rc == NHID_OK)
        snprintf(out->accessor, sizeof(out->accessor), "%s", nhid_json_str(auth, "accessor"));
    json_decref(auth);
    json_decref(pol);
    return rc;
}

static void create(struct created *out)
{
    assert_int_equal(nhid_core_write(&core, create_job, out), NHID_OK);
}

/* Authenticate token as the server does; returns the HTTP status (200 on success). */
static int authenticate(const char *token, char accessor_out[64])
{
    struct nhid_request req;
    struct nhid_response resp;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    char buf[NHID_TOKEN_MAX + 16];
    snprintf(buf, sizeof(buf), "%s", token);
    req.core = &core;
    req.client_token = buf;
    req.remote_addr = "127.0.0.1";
    resp.status = 200;
    resp.data = json_object();
    assert_int_equal(nhid_store_read_begin(st, &req.txn), NHID_OK);
    (void)nhid_token_engine.authenticate(&req, &resp);
    nhid_store_read_end(req.txn);
    int status = req.auth.authenticated ? resp.status : (resp.status == 200 ? 403 : resp.status);
    if (accessor_out)
        snprintf(accessor_out, 64, "%s", req.auth.accessor);
    json_decref(req.auth.policies);
    json_decref(req.auth.metadata);
    json_decref(req.auth.token);
    nhid_response_clear(&resp);
    return status;
}

struct key_list {
    char keys[16][128];
    size_t n;
};

static int collect(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct key_list *l = arg;
    if (l->n < 16)
        snprintf(l->keys[l->n++], sizeof(l->keys[0]), "%s", key);
    return 0;
}

static void scan(const char *prefix, struct key_list *l)
{
    struct nhid_txn *txn = NULL;
    memset(l, 0, sizeof(*l));
    assert_int_equal(nhid_store_read_begin(st, &txn), NHID_OK);
    assert_int_equal(nhid_txn_scan_prefix(txn, prefix, NULL, 0, true, collect, l), NHID_OK);
    nhid_store_read_end(txn);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_layout_and_order(void **s)
{
    (void)s;
    struct created t[3];
    int64_t before = nhid_now_ns() / 1000000;
    for (int i = 0; i < 3; i++) {
        create(&t[i]);
        sleep_ms(3);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(strncmp(t[i].token, "nhs.", 4), 0);
        assert_int_equal(strlen(t[i].token), 4 + 48); /* base64url of 36 bytes */
        assert_int_equal(strlen(t[i].accessor), 36);  /* 6 time bytes + 12 random, hex */
        char tp[13];
        memcpy(tp, t[i].accessor, 12);
        tp[12] = '\0';
        long long ms = strtoll(tp, NULL, 16);
        assert_true(ms >= before && ms <= before + 10000);
    }
    /* Handles sort in creation order, and carry the accessor's time prefix. */
    struct key_list ids, accs;
    scan("token/id/", &ids);
    scan("token/accessor/", &accs);
    assert_int_equal(ids.n, 3);
    assert_int_equal(accs.n, 3);
    for (int i = 0; i < 3; i++) {
        const char *handle = ids.keys[i] + strlen("token/id/");
        assert_int_equal(strlen(handle), 64);
        assert_memory_equal(handle, t[i].accessor, 12);
        assert_string_equal(accs.keys[i] + strlen("token/accessor/"), t[i].accessor);
    }
}

static void test_authenticate_and_tampering(void **s)
{
    (void)s;
    struct created t;
    char acc[64];
    create(&t);
    assert_int_equal(authenticate(t.token, acc), 200);
    assert_string_equal(acc, t.accessor);

    char bad[NHID_TOKEN_MAX + 8];
    /* A changed random character. */
    memcpy(bad, t.token, sizeof(t.token));
    bad[40] = bad[40] == 'A' ? 'B' : 'A';
    assert_int_equal(authenticate(bad, NULL), 403);
    /* A changed time character: another handle, and the keyed hash differs too. */
    memcpy(bad, t.token, sizeof(t.token));
    bad[6] = bad[6] == 'A' ? 'B' : 'A';
    assert_int_equal(authenticate(bad, NULL), 403);
    /* Truncated, extended, foreign characters in the time part. */
    memcpy(bad, t.token, sizeof(t.token));
    bad[strlen(bad) - 1] = '\0';
    assert_int_equal(authenticate(bad, NULL), 403);
    snprintf(bad, sizeof(bad), "%sA", t.token);
    assert_int_equal(authenticate(bad, NULL), 403);
    memcpy(bad, t.token, sizeof(t.token));
    bad[5] = '*';
    assert_int_equal(authenticate(bad, NULL), 403);
}

struct legacy {
    const char *token;
    const char *hash;
};

static int legacy_job(struct nhid_core *c, struct nhid_txn *txn, void *arg)
{
    const struct legacy *l = arg;
    char key[128];
    snprintf(key, sizeof(key), "token/id/%s", l->hash);
    json_t *e = json_pack("{s:s, s:[s], s:{}, s:I, s:I, s:s, s:s, s:s}", "accessor",
                          "0123456789abcdef0123456789abcdef", "policies", "default", "meta",
                          "creation_time", (json_int_t)nhid_now(), "expire_time",
                          (json_int_t)(nhid_now() + 600), "parent", "", "entity_id", "",
                          "display_name", "legacy");
    int rc = nhid_core_save_json(c, txn, key, e);
    json_decref(e);
    return rc;
}

/* A token of the earlier layout (43 characters, handle = the full keyed hash) still works. */
static void test_earlier_layout_still_authenticates(void **s)
{
    (void)s;
    char tok[NHID_TOKEN_MAX];
    assert_int_equal(nhid_random_token("nhs.", tok), NHID_OK);
    assert_int_equal(strlen(tok), 4 + 43);
    uint8_t key[32];
    assert_int_equal(nhid_barrier_derive_key(bar, "token-hash", key), NHID_OK);
    char hash[65];
    nhid_secret_hash_hex(key, tok, hash);
    struct legacy l = {tok, hash};
    assert_int_equal(nhid_core_write(&core, legacy_job, &l), NHID_OK);
    char acc[64];
    assert_int_equal(authenticate(tok, acc), 200);
    assert_string_equal(acc, "0123456789abcdef0123456789abcdef");
    tok[10] = tok[10] == 'A' ? 'B' : 'A';
    assert_int_equal(authenticate(tok, NULL), 403);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_and_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_earlier_layout_still_authenticates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
